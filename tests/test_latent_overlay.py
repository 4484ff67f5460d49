from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from _sbnn_helpers import one_torch_thread, simulated  # noqa: F401

import multiviz as mv
from multiviz import InputError
from multiviz.pl._latent_overlay import masked_triangulation

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def fitted():
    m = simulated(n_cells=200, n_genes=100)
    mv.tl.srrr(m, rank=2, n_genes=10)
    mv.tl.srrr(m, rank=4, n_genes=10, key_added="srrr4")
    return m


def test_masked_triangulation_keeps_gaps_empty():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(100, 2))
    b = rng.normal(size=(100, 2)) + [20, 0]
    tri = masked_triangulation(np.vstack([a, b]))
    t = tri.triangles[~tri.mask]
    # no unmasked triangle joins the two clusters
    assert not np.any((t < 100).any(axis=1) & (t >= 100).any(axis=1))
    assert tri.mask.any()


def test_overlay_figure(fitted, tmp_path):
    m = fitted
    path = tmp_path / "overlay.png"
    fig = mv.pl.latent_overlay(m, basis="srrr", genes=3, features=4, color="cell_type", save=path)
    assert path.exists() and path.stat().st_size > 0
    contour_axes = [ax for ax in fig.axes if ax.collections and ax.get_title() not in ("srrr", "")]
    titles = [ax.get_title() for ax in fig.axes]
    assert "srrr" in titles
    feats = list(map(str, m["ephys"].var_names[:4]))
    assert all(f in titles for f in feats)
    # one shared symmetric colour scale over every overlay
    levels = {
        tuple(np.round(c.levels, 8))
        for ax in contour_axes
        for c in ax.collections
        if hasattr(c, "levels")
    }
    assert len(levels) == 1
    lv = np.array(next(iter(levels)))
    assert lv[0] == pytest.approx(-lv[-1])
    # scatter uses one colour per category
    main = fig.axes[titles.index("srrr")]
    assert len(main.collections) == m.obs["cell_type"].nunique()


def test_overlay_into_ax_and_errors(fitted):
    import matplotlib.pyplot as plt

    m = fitted
    fig, ax = plt.subplots()
    out = mv.pl.latent_overlay(m, basis="srrr", genes=0, features=2, color=None, ax=ax)
    assert out is fig
    with pytest.raises(InputError, match="tsne"):
        mv.pl.latent_overlay(m, basis="srrr4")
    mv.tl.tsne(m, use_rep="X_srrr4")
    assert m.obsm["X_srrr4_tsne"].shape == (m.n_obs, 2)
    fig = mv.pl.latent_overlay(m, basis="srrr4", genes=2, features=2, color="cell_type")
    assert "srrr4_tsne" in [a.get_title() for a in fig.axes]
    with pytest.raises(InputError, match="not found"):
        mv.pl.latent_overlay(m, basis="umap")
    with pytest.raises(InputError, match="color"):
        mv.pl.latent_overlay(m, basis="srrr", color="nope")
    plt.close("all")
