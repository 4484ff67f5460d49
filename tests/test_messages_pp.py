"""Issue 23, item 2: each bad input of ``mv.pp.prepare_paired`` names the problem and the fix.

Every case asserts the exception type, that the message names the argument and the fix,
and that the user's object is left deep-unchanged.
"""

from __future__ import annotations

import re

import mudata as md
import numpy as np
import pytest
from _objects import assert_unchanged, snapshot
from anndata import AnnData

import multiviz as mv
from multiviz import InputError
from multiviz.pp._args import RIBOSOMAL_GENES, TECHNICAL_GENES


@pytest.fixture
def mdata() -> md.MuData:
    return mv.datasets.simulate_patchseq(n_cells=60, n_genes=40, random_state=0)


def _raises(m, match: str, **kwargs) -> str:
    snap = snapshot(m)
    with pytest.raises(InputError, match=match) as info:
        mv.pp.prepare_paired(m, **kwargs)
    assert_unchanged(m, snap)
    return str(info.value)


def test_exclude_ribosomal_removing_every_gene_names_that_option(mdata):
    mdata["rna"].var_names = [f"RPL{i}" for i in range(mdata["rna"].n_vars)]
    msg = _raises(
        mdata,
        r"`exclude_ribosomal=True` removes 40 ribosomal genes",
        exclude_ribosomal=True,
        n_top_genes=10,
    )
    assert "Pass `exclude_ribosomal=False`" in msg
    assert "`exclude_genes=" not in msg  # the default pattern removed none of them


def test_exclude_genes_removing_every_gene_names_that_option(mdata):
    msg = _raises(
        mdata, r"`exclude_genes='.'` excludes all 40 genes", exclude_genes=".", n_top_genes=10
    )
    assert "`exclude_genes=None`" in msg and "exclude_ribosomal" not in msg


def test_both_exclusions_together_name_both(mdata):
    names = [f"RPS{i}" for i in range(20)] + [f"MT-X{i}" for i in range(20)]
    mdata["rna"].var_names = names
    msg = _raises(
        mdata,
        r"`exclude_ribosomal=True` removes 20.*`exclude_genes=.*removes 20",
        exclude_ribosomal=True,
        n_top_genes=10,
    )
    assert "`exclude_ribosomal=False` or a narrower `exclude_genes`" in msg


def _with_text_target(m: md.MuData) -> md.MuData:
    e = m["ephys"]
    values = e.X.astype(object)
    values[:, [1, 4]] = "n/a"
    return md.MuData({"rna": m["rna"].copy(), "ephys": AnnData(values, obs=e.obs, var=e.var)})


def test_text_targets_name_the_non_numeric_features(mdata):
    m = _with_text_target(mdata)
    msg = _raises(m, r"`mdata\['ephys'\]\.X` must be numeric", n_top_genes=10)
    assert "['feature_1', 'feature_4']" in msg and "pd.to_numeric" in msg
    assert "'>='" not in msg


def test_numbers_stored_as_text_say_so(mdata):
    e = mdata["ephys"]
    m = md.MuData(
        {"rna": mdata["rna"].copy(), "ephys": AnnData(e.X.astype(str), obs=e.obs, var=e.var)}
    )
    _raises(m, r"must be numeric, got dtype <U\d+ \(numbers stored as text\)", n_top_genes=10)


def test_every_target_feature_constant(mdata):
    mdata["ephys"].X[:] = 1.0
    msg = _raises(mdata, r"Every target feature of mdata\['ephys'\] is constant", n_top_genes=10)
    assert "`y`" in msg


def test_some_constant_target_features_still_only_warn(mdata):
    mdata["ephys"].X[:, 0] = 1.0
    with pytest.warns(mv.DataWarning, match=r"1 ephys features are constant"):
        mv.pp.prepare_paired(mdata, n_top_genes=10)


@pytest.mark.parametrize(
    "gene",
    ["RNA28S5", "RNA18S5", "RNA45SN1", "RNA45SN3", "RNA5-8SN2", "RNA5-8S5", "Rn45s", "Rn18s"],
)
def test_ribosomal_rna_genes_are_technical(gene):
    assert re.search(TECHNICAL_GENES, gene)


@pytest.mark.parametrize("gene", ["RNASE1", "RNASEH2A", "RNF1", "RNU1-1", "RPL10A", "ACTB"])
def test_other_genes_are_not_technical(gene):
    assert not re.search(TECHNICAL_GENES, gene)


def test_ribosomal_protein_pattern_unchanged():
    assert re.search(RIBOSOMAL_GENES, "RPL10A") and not re.search(RIBOSOMAL_GENES, "RNA28S5")


def test_rrna_gene_excluded_on_human_cite_seq():
    m = mv.datasets.pbmc10k_cite_200()
    rna = m["rna"]
    top = int(np.argmax(np.asarray(rna.X.sum(axis=0)).ravel()))
    names = list(rna.var_names)
    names[top] = "RNA28S5"  # the most abundant gene, as rRNA often is
    rna.var_names = names
    mv.pp.prepare_paired(m, y="protein", n_top_genes=200)
    assert "RNA28S5" not in m["rna"].var_names
    assert "RNA28S5" in m.uns["prepare_paired"]["excluded_genes"]
