"""Golden outputs (issue 19): every public tool and model ``train`` gives the recorded results.

Each case of ``tests/golden/cases.py`` runs one public function (``mv.tl.*``,
``mv.pp.prepare_paired``, ``mv.models.*.train``) on small fixed-seed data — the Patch-seq
and gene-network simulators, the planted coupled-AE data, the shipped PBMC CITE-seq cells
and a slice of the shared M1 Patch-seq file — and its outputs (everything written to
``obs``/``var``/``obsm``/``varm``/``layers``/``obsp``/``varp``/``uns``, return values,
model predictions and latents) are compared with ``tests/golden/outputs_<stack>.json``:

* a recording of this stack exists (``golden.stack.stack_key()``: Python, torch and
  numpy major.minor, machine, torch's CPU instruction set): every output must be
  **bitwise** equal (SHA-256 of its canonical bytes; labels and indices exactly). No
  output is exempt today: all cases are bitwise reproducible run to run, on one thread.
  An output that cannot be (a threaded reduction, say) goes into its case's
  ``tolerances`` (glob -> reason) and is compared by fingerprint at ``rtol=1e-4``;
* no recording of this stack (another CPU, other library builds): the fingerprints
  (shape, dtype, sum, sum of squares, first 5 values) are compared with the nearest
  recorded stack's at ``rtol=1e-4`` (labels exactly), and a warning says so;
* the case is *stale* in this stack's recording (its outputs changed on purpose and could
  only be re-recorded on another CPU kind; ``record.py`` moves it to the ``stale`` list of
  the other recordings): compared by fingerprint with the nearest recording holding it,
  with a warning, until it is re-recorded on this stack.

Left out of the recording: run timings (``seconds`` columns of the CV tables).

**When this test fails** after a change meant to leave outputs alone, the message names
the case, the output and the recorded vs recomputed fingerprint: find what changed the
arithmetic. When outputs changed **on purpose** (a fix, a new default), re-record both
stacks from the commit with the change and say so in its message::

    .venv/bin/python tests/golden/record.py
    .venv312/bin/python tests/golden/record.py
    # or only the affected cases: ... record.py --cases sbnn_project,srrr

(``record.py --check`` runs the same comparison as a script.) A new public ``mv.tl``
function needs a case in ``tests/golden/cases.py`` (see ``test_every_public_function_has_a_case``).
"""

from __future__ import annotations

import json
import warnings

import pytest
from golden.cases import CASES, NOT_COVERED, public_names, run_case, shared_data_dir
from golden.digest import RTOL, compare
from golden.stack import nearest, recordings, stack_key

KEY = stack_key()
RECORDINGS = recordings()


@pytest.fixture(scope="module")
def loaded() -> dict[str, dict]:
    """Every committed recording, by stack key."""
    if not RECORDINGS:
        pytest.fail("no tests/golden/outputs_*.json: run tests/golden/record.py")
    return {key: json.loads(path.read_text()) for key, path in RECORDINGS.items()}


def reference_for(name: str, loaded: dict[str, dict]) -> tuple[str | None, str]:
    """(stack key, why): this stack's recording of case ``name``, else the nearest one's.

    ``why`` is ``""`` for this stack's own recording (compared bitwise), otherwise the reason
    for the fallback: no recording of this stack, or the case is stale in it (its outputs
    changed on purpose and were re-recorded on another CPU kind only).
    """
    own = loaded.get(KEY)
    if own is not None and name in own["cases"]:
        return KEY, ""
    holders = [k for k, rec in loaded.items() if name in rec["cases"]]
    if own is None:
        why = f"no recording for stack {KEY}"
    elif name in own.get("stale", {}):
        since = own["stale"][name]["since"][:12]
        why = f"{name} is stale in {RECORDINGS[KEY].name} (outputs changed at {since})"
    else:
        why = f"{name} is missing from {RECORDINGS[KEY].name}"
    return nearest(KEY, holders), why


def _params():
    for name, case in CASES.items():
        marks = [pytest.mark.slow] if case.slow else []
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", _params())
def test_golden_outputs(name, loaded):
    case = CASES[name]
    if case.needs and not (shared_data_dir() / case.needs).exists():
        pytest.skip(
            f"{case.needs} not found in {shared_data_dir()}: this case needs the project's "
            "shared data folder beside the checkout (or MULTIVIZ_SHARED_DATA pointing at it)."
        )
    key, why = reference_for(name, loaded)
    if key is None:
        pytest.fail(
            f"case {name!r} is in no recording: record it with "
            f"`python tests/golden/record.py --cases {name}` on each stack."
        )
    exact = not why
    recording = loaded[key]
    problems = compare(
        recording["cases"][name], run_case(case), exact=exact, tolerances=case.tolerances
    )
    if not exact:
        warnings.warn(
            f"golden outputs: {why}; {name} compared by fingerprint "
            f"(rtol={RTOL}) with {key} ({len(problems)} differences)",
            stacklevel=1,
        )
    if problems:
        how = (
            "bitwise" if exact else f"by fingerprint at rtol={RTOL} with another stack's recording"
        )
        shown = "\n".join(problems[:20]) + (
            f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        )
        pytest.fail(
            f"golden case {name!r} ({', '.join(case.covers)}) differs from {RECORDINGS[key].name} "
            f"(recorded at {recording['commit'][:12]}), compared {how}; "
            f"{len(problems)} outputs:\n{shown}\n"
            "If the change of outputs is intended, re-record: "
            f"`python tests/golden/record.py --cases {name}` with .venv and .venv312.",
            pytrace=False,
        )


def test_every_public_function_has_a_case():
    covered = {name for case in CASES.values() for name in case.covers}
    missing = [n for n in public_names() if n not in covered and n not in NOT_COVERED]
    assert not missing, (
        f"public functions without a golden case in tests/golden/cases.py: {missing}"
    )


def test_recordings_are_complete():
    """Each committed recording holds every case (a case added and recorded on one stack only
    would be compared against nothing on the other)."""
    for key, path in RECORDINGS.items():
        recording = json.loads(path.read_text())
        assert recording["stack"] == key
        required = {name for name, case in CASES.items() if not case.needs}
        # a stale case (outputs changed on purpose, re-recorded on another CPU kind) is held
        # by some other recording, compared against that one by fingerprint
        stale = set(recording.get("stale", {}))
        missing = sorted(required - set(recording["cases"]) - stale)
        unknown = sorted(set(recording["cases"]) - set(CASES))
        assert not missing and not unknown, f"{path.name}: missing {missing}, unknown {unknown}"
        held = {
            name
            for rec in map(json.loads, (p.read_text() for p in RECORDINGS.values()))
            for name in rec["cases"]
        }
        orphans = sorted(stale - held)
        assert not orphans, f"{path.name}: stale cases no recording holds: {orphans}"
