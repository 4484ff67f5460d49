"""The ``Examples`` sections of mv.pp, mv.datasets and mv.tl.tsne run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

import multiviz as mv
from multiviz.datasets._pbmc import pbmc10k_cite_200

MODULES = [
    "multiviz.pp._prepare_paired",
    "multiviz.pp._gene_selection",
    "multiviz.pp._zscore",
    "multiviz.pp._targets",
    "multiviz.datasets._read",
    "multiviz.datasets._pbmc",
    "multiviz.datasets._simulate_patchseq",
    "multiviz.datasets._simulate_gene_network",
    "multiviz.tl._tsne",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples(name, monkeypatch):
    # the loader's public name is exported by mv.datasets' namespace file
    monkeypatch.setattr(mv.datasets, "pbmc10k_cite_200", pbmc10k_cite_200, raising=False)
    monkeypatch.setattr(mv.settings, "verbosity", 0)
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0
    assert result.failed == 0
