from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from _sbnn_helpers import one_torch_thread, simulated  # noqa: F401
from matplotlib.colors import to_rgba

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


MAIN = ("sRRR-2 latent", "")  # the latent's title (first line) and colour bars


def _first_lines(fig):
    axes = fig if isinstance(fig, list) else fig.axes
    return [ax.get_title().split("\n")[0] for ax in axes]


def test_overlay_figure(fitted, tmp_path):
    m = fitted
    path = tmp_path / "overlay.png"
    fig = mv.pl.latent_overlay(m, basis="srrr", genes=3, features=4, color="cell_type", save=path)
    assert path.exists() and path.stat().st_size > 0
    titles = _first_lines(fig)
    contour_axes = [
        ax for ax in fig.axes if ax.collections and titles[fig.axes.index(ax)] not in MAIN
    ]
    assert "sRRR-2 latent" in titles
    # default features: the best predicted, by the fit's held-out R² without a CV table
    r2 = pd.Series(m.uns["srrr"]["r2_heldout_per_feature"]).sort_values(ascending=False)
    assert [t for t in titles if t in list(r2.index)] == list(r2.index[:4])
    feature_titles = [ax.get_title() for ax in fig.axes if _first_lines([ax])[0] in r2.index]
    assert feature_titles and all("held-out R²" in t for t in feature_titles)
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
    # scatter uses one colour per category; the legend is outside every panel
    main = fig.axes[titles.index("sRRR-2 latent")]
    assert len(main.collections) == m.obs["cell_type"].nunique()
    fig.draw_without_rendering()
    legend_box = fig.legends[0].get_window_extent()
    for ax in fig.axes:
        assert not legend_box.overlaps(ax.get_window_extent())
    plt.close(fig)


def test_overlay_ranks_features_by_held_out_r2(fitted):
    m = fitted.copy()
    names = list(map(str, m["ephys"].var_names))
    held_out = dict(zip(names, np.linspace(-0.5, 0.9, len(names))))  # last feature best
    rows = [
        {"method": "srrr", "params": "n_genes=10, rank=2", "fold": k, "feature": f, "r2": r}
        for k in range(3)
        for f, r in held_out.items()
    ]
    m.uns["cv_srrr"] = pd.DataFrame(rows)
    fig = mv.pl.latent_overlay(m, basis="srrr", genes=0, features=3, color=None)
    titles = [
        ax.get_title()
        for ax in fig.axes
        if "R²" in ax.get_title() and not ax.get_title().startswith("sRRR")
    ]
    assert [t.split("\n")[0] for t in titles] == names[::-1][:3]
    assert titles[0].endswith(f"CV R² {held_out[names[-1]]:.2f}")
    plt.close(fig)


def test_overlay_nan_category_is_grey_na_and_palette_from_uns(fitted):
    m = fitted.copy()
    cats = list(m.obs["cell_type"].cat.categories)
    m.uns["cell_type_colors"] = ["#ff0000"] + [f"#0000{i:02x}" for i in range(len(cats) - 1)]
    cell_type = m.obs["cell_type"].copy()
    cell_type.iloc[:15] = np.nan  # missing annotations stay categorical, as in scanpy
    m.obs["cell_type"] = cell_type
    fig = mv.pl.latent_overlay(m, basis="srrr", genes=0, features=0, color="cell_type")
    main = fig.axes[0]
    drawn = {c.get_label(): c for c in main.collections}
    assert drawn["NA"].get_offsets().shape[0] == 15
    assert tuple(drawn["NA"].get_facecolors()[0]) == to_rgba("lightgray")
    assert tuple(drawn[cats[0]].get_facecolors()[0]) == to_rgba("#ff0000")
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[-1] == "NA" and labels[:-1] == [c for c in cats if c in drawn]
    assert sum(c.get_offsets().shape[0] for c in main.collections) == m.n_obs
    plt.close(fig)


def test_overlay_many_categories_on_data_and_mod_feature_colour(fitted):
    m = fitted.copy()
    m.obs["type77"] = pd.Categorical([f"t{i % 77}" for i in range(m.n_obs)])
    fig = mv.pl.latent_overlay(
        m, basis="srrr", genes=0, features=2, color="type77", legend_loc="on data"
    )
    main = fig.axes[_first_lines(fig).index("sRRR-2 latent")]
    assert not fig.legends and main.get_legend() is None
    assert sorted(t.get_text() for t in main.texts) == sorted(f"t{i}" for i in range(77))
    plt.close(fig)
    fig = mv.pl.latent_overlay(m, basis="srrr", genes=0, features=2, color="type77")
    legend = fig.legends[0]
    assert len(legend.get_texts()) == 77 and legend._ncols >= 3
    fig.draw_without_rendering()
    box, frame = legend.get_window_extent(), fig.bbox
    assert box.y0 >= frame.y0 and box.y1 <= frame.y1  # every entry fits on the figure
    for ax in fig.axes:
        assert not box.overlaps(ax.get_window_extent())  # and covers no panel
    plt.close(fig)
    gene = str(m["rna"].var_names[0])
    feature = str(m["ephys"].var_names[1])
    fig = mv.pl.latent_overlay(
        m, basis="srrr", genes=[f"rna:{gene}"], features=[f"ephys:{feature}"], color=f"rna:{gene}"
    )
    main = fig.axes[_first_lines(fig).index("sRRR-2 latent")]
    expr = np.asarray(m["rna"][:, gene].X).ravel()
    np.testing.assert_allclose(np.sort(main.collections[0].get_array()), np.sort(expr), rtol=1e-5)
    assert f"rna:{gene}" in [a.get_xlabel() for a in fig.axes]  # its colour bar
    assert feature in _first_lines(fig) and gene in [a.get_title() for a in fig.axes]
    assert "observed expression (z-score)" in [a.get_ylabel() for a in fig.axes]
    plt.close(fig)
    with pytest.raises(InputError, match="legend_loc"):
        mv.pl.latent_overlay(m, basis="srrr", legend_loc="best")


def test_overlay_into_ax_and_errors(fitted):
    m = fitted
    fig, ax = plt.subplots()
    out = mv.pl.latent_overlay(m, basis="srrr", genes=0, features=2, color=None, ax=ax)
    assert out is fig
    with pytest.raises(InputError, match="tsne"):
        mv.pl.latent_overlay(m, basis="srrr4")
    mv.tl.tsne(m, use_rep="X_srrr4")
    assert m.obsm["X_srrr4_tsne"].shape == (m.n_obs, 2)
    fig = mv.pl.latent_overlay(m, basis="srrr4", genes=2, features=2, color="cell_type")
    assert "sRRR-4 latent (t-SNE)" in _first_lines(fig)
    with pytest.raises(InputError, match="not found"):
        mv.pl.latent_overlay(m, basis="umap")
    with pytest.raises(InputError, match="color"):
        mv.pl.latent_overlay(m, basis="srrr", color="nope")
    plt.close("all")
