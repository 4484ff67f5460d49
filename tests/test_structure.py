"""Issue 19's structure: no import cycle in ``multiviz``; one public name per capability.

The import graph is built by ``benchmarks/structure/structure.py`` (loaded here by path), the script
that writes ``benchmarks/results/structure.json``.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from pathlib import Path

import numpy as np
import pytest
from _sbnn_helpers import TINY, one_torch_thread, simulated  # noqa: F401

import multiviz as mv

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "structure" / "structure.py"


@pytest.fixture(scope="module")
def structure():
    spec = importlib.util.spec_from_file_location("_structure_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def graph(structure):
    src = Path(mv.__file__).resolve().parents[1]
    modules = structure.package_modules(src, "multiviz")
    return modules, structure.import_edges(modules, "multiviz")


def test_every_module_imports_and_is_in_the_graph(graph):
    modules, _ = graph
    names = {"multiviz"} | {
        m.name for m in pkgutil.walk_packages(mv.__path__, "multiviz.") if m.name in modules
    }
    for name in sorted(names):
        importlib.import_module(name)
    assert names == set(modules)


def test_no_module_level_import_cycle(structure, graph):
    _, edges = graph
    cycles = structure.import_cycles(edges)
    assert cycles == [], [" -> ".join(c["cycle"]) for c in cycles]


def test_consensus_and_selection_stability_are_not_tied(structure, graph):
    """The former cycle ``_consensus`` <-> ``_selection_stability``, deferred edges too."""
    _, edges = graph
    pure = "multiviz.tl._ranking"
    assert not [e for e in edges if e["from"] == pure]  # the ranking imports nothing of ours
    tied = [
        c
        for c in structure.deferred_import_cycles(edges)
        if {"multiviz.tl._consensus", "multiviz.tl._selection_stability"} & set(c["modules"])
    ]
    assert tied == []


def test_cycle_finder_sees_a_planted_cycle(structure):
    edges = [
        {"from": a, "to": b, "level": level, "line": 1}
        for a, b, level in [
            ("p.a", "p.b", "module"),
            ("p.b", "p.c", "module"),
            ("p.c", "p.a", "module"),
            ("p.d", "p.e", "function"),
            ("p.e", "p.d", "module"),
        ]
    ]
    (cycle,) = structure.import_cycles(edges)
    assert cycle["modules"] == ["p.a", "p.b", "p.c"] and cycle["cycle"] == [
        "p.a",
        "p.b",
        "p.c",
        "p.a",
    ]
    (deferred,) = structure.deferred_import_cycles(edges)
    assert deferred["cycle"] == ["p.d", "p.e", "p.d"]


def test_ranking_functions_stay_importable_from_consensus():
    from multiviz.tl._consensus import consensus_genes, consensus_ranking
    from multiviz.tl._ranking import consensus_genes as genes
    from multiviz.tl._ranking import consensus_ranking as ranking

    assert consensus_genes is genes and consensus_ranking is ranking


@pytest.mark.filterwarnings("ignore::multiviz.FitQualityWarning")  # a 2-epoch fit is weak
def test_sbnn_consensus_is_a_deprecated_alias():
    kw = {"n_seeds": 2, "n_genes": 5, "gene_decoder_epochs": 0, "random_state": 0, **TINY}
    a, b = simulated(n_cells=80, n_genes=30), simulated(n_cells=80, n_genes=30)
    with pytest.warns(FutureWarning, match=r"selection_stability\(.*consensus=True"):
        old = mv.tl.sbnn_consensus(a, **kw)
    new = mv.tl.selection_stability(b, "sbnn", consensus=True, **kw)
    assert old.keys() == new.keys()
    assert old["gene_sets"] == new["gene_sets"]
    assert old["consensus_genes"] == new["consensus_genes"]
    assert old["mean_jaccard"] == new["mean_jaccard"]
    assert list(a.uns["sbnn_consensus"]["selected_genes"]) == list(
        b.uns["sbnn_consensus"]["selected_genes"]
    )
    np.testing.assert_array_equal(
        a["rna"].var["sbnn_selection_frequency"], b["rna"].var["sbnn_selection_frequency"]
    )
