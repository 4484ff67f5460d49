"""Record the golden outputs of this Python stack (run by hand, never by pytest).

    .venv/bin/python tests/golden/record.py        # Python 3.11 stack
    .venv312/bin/python tests/golden/record.py     # Python 3.12 stack

Runs every case of ``tests/golden/cases.py`` (the slow ones and, when the shared data
folder is there, the real-data slice too) and writes ``tests/golden/outputs_<stack>.json``
with the leaves of each case, the library versions and the commit of the working tree.
Record from a clean tree at the commit whose outputs are the reference: re-record (both
stacks) only when outputs changed on purpose, and say so in the commit message.

Options: ``--cases a,b`` re-records only those cases (keeping the others); ``--check``
recomputes and compares with the recording instead of writing (the test, as a script);
``--times`` prints each case's seconds.

Cases whose outputs changed are moved into the ``stale`` list of the other stacks'
recordings (:func:`mark_stale`): each machine can only record its own CPU kind.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/, so that `golden` imports as a package

from golden.cases import CASES, run_case, shared_data_dir  # noqa: E402
from golden.digest import compare  # noqa: E402
from golden.stack import (  # noqa: E402
    dumps,
    recording_path,
    recordings,
    stack_info,
    stack_key,
)


def _commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=HERE, capture_output=True, text=True, check=True
        ).stdout.strip()

    src = str(HERE.parents[1] / "src")
    try:
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--", src)
        if dirty:
            dirty += git("diff", "HEAD", "--", src)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    if not dirty:
        return head
    return f"{head} + uncommitted src/ changes {hashlib.sha256(dirty.encode()).hexdigest()[:12]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--times", action="store_true", help="print each case's seconds")
    args = parser.parse_args(argv)
    names = [n for n in args.cases.split(",") if n] or list(CASES)
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; known: {sorted(CASES)}")
    commit = _commit()
    path = recording_path()
    old = json.loads(path.read_text()) if path.exists() else {"cases": {}}
    results, seconds, failed = {}, {}, 0
    for name in names:
        case = CASES[name]
        if case.needs and not (shared_data_dir() / case.needs).exists():
            print(f"{name}: skipped, {case.needs} not in {shared_data_dir()}")
            if name in old["cases"]:
                results[name] = old["cases"][name]
            continue
        t0 = time.perf_counter()
        results[name] = run_case(case)
        seconds[name] = time.perf_counter() - t0
        line = f"{name}: {len(results[name])} leaves, {seconds[name]:.1f} s"
        if args.check:
            ref = old["cases"].get(name)
            problems = (
                ["no recording"]
                if ref is None
                else compare(ref, results[name], exact=True, tolerances=case.tolerances)
            )
            failed += bool(problems)
            line += " OK" if not problems else " DIFFERS\n  " + "\n  ".join(problems[:10])
        if args.times or args.check:
            print(line, flush=True)
    if args.check:
        return int(failed > 0)
    if _commit() != commit:
        print(f"the commit or src/ changed while recording ({commit} -> {_commit()}): run again")
        return 1
    cases = {**old["cases"], **results} if args.cases else results
    stale = {k: v for k, v in old.get("stale", {}).items() if k not in results and k in CASES}
    out = {
        "stack": stack_key(),
        "versions": stack_info(),
        "commit": commit,
        "recorded": time.strftime("%Y-%m-%d"),
        "command": f"python tests/golden/record.py{' --cases ' + args.cases if args.cases else ''}",
        "tolerances": {k: c.tolerances for k, c in CASES.items() if c.tolerances},
        "cases": {k: cases[k] for k in CASES if k in cases},
        "stale": stale,
    }
    path.write_text(dumps(out))
    json.loads(path.read_text())  # well-formed
    print(f"wrote {path.name}: {len(out['cases'])} cases, {sum(seconds.values()):.0f} s")
    changed_cases = sorted(n for n, leaves in results.items() if old["cases"].get(n) != leaves)
    mark_stale(changed_cases, commit)
    return 0


def mark_stale(names: list[str], commit: str) -> None:
    """Move ``names`` out of the other stacks' recordings into their ``stale`` list.

    A change of outputs recorded on this stack cannot be recorded on a CPU or library build
    this machine does not have. Those recordings keep every other case; the moved ones are
    compared by fingerprint with a recording that holds them until someone re-records them
    there (``record.py --cases ...`` on that stack removes them from ``stale``).
    """
    if not names:
        return
    for key, other in recordings().items():
        if key == stack_key():
            continue
        rec = json.loads(other.read_text())
        if rec["commit"] == commit:  # recorded from this very tree (the other Python, say)
            continue
        moved = [n for n in names if n in rec["cases"]]
        if not moved:
            continue
        for name in moved:
            del rec["cases"][name]
            rec.setdefault("stale", {})[name] = {"since": commit, "recorded_on": stack_key()}
        other.write_text(dumps(rec))
        print(f"{other.name}: {', '.join(moved)} marked stale (re-record them on that stack)")


if __name__ == "__main__":
    sys.exit(main())
