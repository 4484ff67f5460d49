import numpy as np

import multiviz as mv


def test_gene_network_correlations_match_design():
    adata = mv.datasets.simulate_gene_network(random_state=0)
    assert adata.shape == (5000, 300)
    assert adata.var["hub"].sum() == 5
    assert (adata.var["community"] == "isolated").sum() == 50
    corr = np.corrcoef(adata.X.T)
    hubs = np.flatnonzero(adata.var["hub"])
    for hub in hubs:
        community = adata.var["community"].iloc[hub]
        spokes = np.flatnonzero((adata.var["community"] == community).to_numpy())
        spokes = spokes[spokes != hub]
        hub_spoke = corr[hub, spokes]
        assert abs(hub_spoke.mean() - 0.6) < 0.05
        assert np.all(np.abs(hub_spoke - 0.6) < 0.05)
        spoke_spoke = corr[np.ix_(spokes, spokes)][np.triu_indices(spokes.size, 1)]
        assert abs(spoke_spoke.mean() - 0.36) < 0.05  # conditionally independent given the hub
    isolated = np.flatnonzero((adata.var["community"] == "isolated").to_numpy())
    not_self = ~np.eye(300, dtype=bool)[isolated]
    off_diag = corr[isolated][not_self]
    assert np.abs(off_diag).max() < 0.08
    assert abs(off_diag.mean()) < 0.01
    # the stored network matches the design: hub degree 49, spoke degree 1, isolated 0
    assert (adata.var["degree"][adata.var["hub"]] == 49).all()
    assert (adata.var["degree"].iloc[isolated] == 0).all()


def test_gene_network_is_deterministic():
    a = mv.datasets.simulate_gene_network(n_cells=100, random_state=4)
    b = mv.datasets.simulate_gene_network(n_cells=100, random_state=4)
    np.testing.assert_array_equal(a.X, b.X)


def test_simulate_patchseq_ground_truth():
    mdata = mv.datasets.simulate_patchseq(
        n_cells=500, n_genes=300, n_features=6, n_drivers=8, random_state=0
    )
    rna, ephys = mdata["rna"], mdata["ephys"]
    assert rna.shape == (500, 300) and ephys.shape == (500, 6)
    assert rna.X.dtype == np.int32 and rna.X.min() >= 0
    assert rna.var["driver"].sum() == 8
    assert sorted(mdata.uns["simulation"]["drivers"]) == sorted(rna.var_names[rna.var["driver"]])
    assert mdata.obs["cell_type"].nunique() == 6
    # the ephys depends on the drivers: drivers explain it better than the same number of other genes
    from sklearn.linear_model import RidgeCV

    logged = np.log1p(rna.X.toarray())
    y = (ephys.X - ephys.X.mean(0)) / ephys.X.std(0)
    drivers = rna.var["driver"].to_numpy()
    others = np.flatnonzero(~drivers)[:8]
    score_drivers = (
        RidgeCV().fit(logged[:400, drivers], y[:400]).score(logged[400:, drivers], y[400:])
    )
    score_others = RidgeCV().fit(logged[:400, others], y[:400]).score(logged[400:, others], y[400:])
    assert score_drivers > 0.4
    assert score_drivers > score_others + 0.2


def test_read_paired_and_m1(m1_path):
    mdata = mv.datasets.m1_patchseq(m1_path)
    assert mdata.shape[0] == 1213
    assert set(mdata.mod) == {"rna", "ephys"}


def test_shipped_pbmc_cite_fixture():
    from multiviz.datasets._pbmc import PBMC_ATTRIBUTION, pbmc10k_cite_200

    a, b = pbmc10k_cite_200(), pbmc10k_cite_200()
    assert a["rna"].shape == (200, 16727) and a["protein"].shape == (200, 14)
    assert a["rna"].X.dtype == np.int32 and a["rna"].X.min() >= 0
    assert list(a["protein"].var_names[:3]) == ["CD3_TotalSeqB", "CD4_TotalSeqB", "CD8a_TotalSeqB"]
    assert "CC BY 4.0" in str(a.uns["provenance"]["sources"]["scvi_tools"]["licence"])
    assert "CC BY 4.0" in PBMC_ATTRIBUTION and "BSD-3" in PBMC_ATTRIBUTION
    a["protein"].X[0, 0] = -1.0  # each call returns an independent object
    assert b["protein"].X[0, 0] >= 0


def test_shipped_data_has_licence_readme():
    from importlib.resources import files

    readme = (files("multiviz.datasets") / "data" / "README.md").read_text()
    assert "CC BY 4.0" in readme and "BSD-3-Clause" in readme and "10x Genomics" in readme
    size = files("multiviz.datasets") / "data" / "pbmc_10k_protein_v3_200cells_fixture.h5mu"
    assert size.stat().st_size < 2_500_000  # small enough for the wheel


def test_m1_loader_refuses_other_files(pbmc10k_path):
    import pytest

    with pytest.raises(mv.InputError, match=r"y='ephys'` is not a modality"):
        mv.datasets.m1_patchseq(pbmc10k_path)


def test_m1_by_name_from_the_shared_data_folder(m1_path, monkeypatch, tmp_path):
    """The README's first line works as written: the bare file name is found in
    MULTIVIZ_SHARED_DATA, or in ../shared/data beside the working directory."""
    import pytest

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("MULTIVIZ_SHARED_DATA", str(m1_path.parent))
    assert mv.datasets.m1_patchseq().n_obs == 1213  # default name, via the variable
    monkeypatch.delenv("MULTIVIZ_SHARED_DATA")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(m1_path.parent)  # the project's layout
    assert mv.datasets.m1_patchseq("m1_patchseq_scala2021.h5mu").n_obs == 1213
    with pytest.raises(mv.InputError, match=r"'nope.h5mu' was not found; looked in: .*MULTIVIZ"):
        mv.datasets.m1_patchseq("nope.h5mu")
