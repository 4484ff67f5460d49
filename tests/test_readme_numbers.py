"""The README's headline numbers are those of the committed benchmark results (issue 23, item 5)."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = {"sRRR-2": "srrr_rank2", "sRRR-full": "srrr_full", "sBNN-2": "sbnn2", "sBNN-64": "sbnn64"}


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end > 0 else None]


def test_what_we_measured_matches_sbnn_table1():
    readme = _section((REPO / "README.md").read_text(), "## What we measured")
    table = json.loads((REPO / "benchmarks" / "results" / "sbnn_table1.json").read_text())
    found = {
        name: (float(mean), float(sd))
        for name, mean, sd in re.findall(
            r"(sRRR-2|sRRR-full|sBNN-2|sBNN-64) R² ([\d.]+) ± ([\d.]+)", readme
        )
    }
    assert set(found) == set(MODELS), f"README names {sorted(found)}; expected {sorted(MODELS)}"
    for name, (mean, sd) in found.items():
        model = table["models"][MODELS[name]]
        assert mean == round(model["r2_mean"], 3), (name, mean, model["r2_mean"])
        assert sd == round(model["r2_sd"], 3), (name, sd, model["r2_sd"])


def _shown(seconds: float) -> str:
    """How the README's timing table writes a CPU time."""
    if seconds < 1:
        return "< 1 s"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def test_quickstart_timings_match_the_benchmark():
    readme = (REPO / "README.md").read_text()
    start = readme.index("<!-- quickstart-timings:")
    block = readme[start : readme.index("<!-- /quickstart-timings -->", start)]
    steps = json.loads((REPO / "benchmarks" / "results" / "quickstart_timings.json").read_text())[
        "steps"
    ]
    rows = re.findall(r"^\| (`mv\.[^|]+) \| ([^|]+) \|$", block, flags=re.M)
    labels = {
        "`mv.pp.prepare_paired`": "prepare_paired",
        "`mv.tl.srrr`": "srrr",
        "`mv.tl.sbnn` (bottleneck 2)": "sbnn",
        "`mv.tl.sbnn` (bottleneck 64)": "sbnn64",
        "`mv.tl.tsne`": "tsne",
        "`mv.tl.cross_validate` sRRR, 10 folds": "cross_validate_srrr",
        "`mv.tl.cross_validate` sBNN, 10 folds": "cross_validate_sbnn",
        "`mv.tl.selection_stability` sBNN, 10 seeds": "selection_stability_sbnn",
        "`mv.tl.coupled_autoencoder`": "coupled_autoencoder",
        "`mv.tl.sivae`": "sivae",
    }
    assert [label for label, _ in rows] == list(labels)
    for label, shown in rows:
        assert shown == _shown(steps[labels[label]]["cpu_s"]), (label, shown)
    assert "~" not in readme[readme.index("## Quick start") : start]  # no hand-typed times
