"""The docs' measured numbers come from ``benchmarks/results/*.json`` (issue 23, item 5).

Pages write them with the ``{bench}`` role (``docs/_scripts/bench_role.py``), which the docs
build resolves; these tests resolve every role without Sphinx, so a renamed or removed
result fails here too, and they keep hand-typed decimals out of the methods pages.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
_spec = importlib.util.spec_from_file_location("bench_role", DOCS / "_scripts" / "bench_role.py")
bench_role = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_role)

ROLE = re.compile(r"\{(bench|bench-machine)\}`([^`]+)`")
PAGES = sorted(DOCS.glob("*.md")) + sorted((DOCS / "methods").glob("*.md"))
CHECKED = sorted((DOCS / "methods").glob("*.md")) + [DOCS / "which_model.md"]

# Decimals that stay as text on the checked pages: not measurements of ours.
ALLOWED = [
    (r"[Tt]he paper's\s+0\.40", "sBNN paper, Table 1 (its own figure)"),
    (r"\| (0\.35 ± 0\.02|0\.40|0\.41) \|", "sBNN paper, Table 1: the table's 'paper' column"),
    (r"\| 0\.1 \(the paper also tried", "sBNN paper's group-lasso strength (hyper-parameter)"),
    (r"paper's 0\.73 / 0\.98", "siVAE paper's reported correlations"),
    (r"γ = 0\.\d+", "siVAE interpretability weight γ (a setting)"),
    (r"\| 0\.05 \(multiviz default 0\.5,", "siVAE paper's γ and our default (settings)"),
    (r"λ = 0\.1", "coupling weight λ (a setting)"),
    (r"dropout 0\.[15]", "coupled AE paper's dropout rates (hyper-parameters)"),
    (r"floored at 0\.01|0\.01 floor", "the msv coupling's floor (a constant of the method)"),
    (r"below -0\.5", "mv.FitError's training-R² threshold (a library constant)"),
    (r"within 0\.02 of", "an issue target, not a result"),
]

# Timings: a value in seconds or a throughput. Each needs a {bench-machine} nearby.
TIMING = re.compile(r"(cpu_s|wall_s|seconds|_s\b|ms_per_step|cells_per_s|cpu_s_per_epoch)")


def _blank(match: re.Match) -> str:
    """The match replaced by spaces, newlines kept (line numbers stay right)."""
    return re.sub(r"[^\n]", " ", match.group())


def _prose(text: str) -> str:
    """``text`` without fenced code, roles, inline code, math and the allowed constants."""
    for pattern in (r"```.*?```", r"\$\$.*?\$\$", ROLE.pattern, r"`[^`\n]+`", r"\$[^$\n]+\$"):
        text = re.sub(pattern, _blank, text, flags=re.S)
    for pattern, _reason in ALLOWED:
        text = re.sub(pattern, _blank, text)
    return text


def _roles():
    for page in PAGES:
        for match in ROLE.finditer(page.read_text()):
            yield page, match


def test_pages_use_the_role():
    assert sum(1 for _ in _roles()) > 100


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_every_bench_role_resolves(page):
    failures = []
    for match in ROLE.finditer(page.read_text()):
        kind, text = match.groups()
        try:
            (bench_role.resolve if kind == "bench" else bench_role.machine)(text)
        except bench_role.BenchError as err:
            failures.append(str(err))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("page", CHECKED, ids=lambda p: str(p.relative_to(DOCS)))
def test_no_hand_typed_decimals(page):
    prose = _prose(page.read_text())
    found = [
        f"{page.relative_to(REPO)}:{prose.count(chr(10), 0, m.start()) + 1}: {m.group()}"
        for m in re.finditer(r"(?<![\w.])\d+\.\d+", prose)
    ]
    assert not found, "write these with {bench} (or add a paper constant to ALLOWED):\n" + (
        "\n".join(found)
    )


@pytest.mark.parametrize("page", CHECKED, ids=lambda p: str(p.relative_to(DOCS)))
def test_timings_state_the_machine(page):
    """A timing's paragraph (or table), or one of the two before it, names the machine."""
    blocks = re.split(r"\n\s*\n", page.read_text())
    missing = [
        match.group()
        for i, block in enumerate(blocks)
        for match in ROLE.finditer(block)
        if match.group(1) == "bench"
        and TIMING.search(match.group(2))
        and "{bench-machine}" not in "".join(blocks[max(i - 2, 0) : i + 1])
    ]
    assert not missing, "timings without {bench-machine} nearby:\n" + "\n".join(missing)


def test_roles_fail_clearly():
    with pytest.raises(bench_role.BenchError, match="does not exist"):
        bench_role.resolve("no_such_file.json:a.b:.2f")
    with pytest.raises(bench_role.BenchError, match="has no 'models.nope'"):
        bench_role.resolve("sbnn_table1.json:models.nope:.2f")
    with pytest.raises(bench_role.BenchError, match="not a number"):
        bench_role.resolve("sbnn_table1.json:dataset")
    results = REPO / "benchmarks" / "results" / "coupled_ae_m1.json"
    folds = json.loads(results.read_text())["lam"]["0.1"]["n_folds"]
    assert bench_role.resolve("coupled_ae_m1.json:lam.0.1.n_folds:d") == str(folds)  # key "0.1"
    assert bench_role.resolve("sbnn_table1.json:{models.sbnn2.seeds.2} * 2 - 1:d") == "3"
