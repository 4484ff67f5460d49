"""Paper-ready defaults of ``mv.pl.latent_overlay`` (issue 23 item 7), without model fits."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from matplotlib.colors import to_rgba
from matplotlib.path import Path
from mudata import MuData
from scipy.spatial import ConvexHull

import multiviz as mv
from multiviz.pl._latent_overlay import masked_triangulation

matplotlib.use("Agg")

GENES = ["Pvalb", "Sst", "Vip"]
FEATURES = ["AP width", "Tau", "Sag"]


def _mdata(n: int = 240, n_types: int = 5, reconstructed: bool = False, seed: int = 0) -> MuData:
    """What ``mv.tl.srrr``/``sbnn`` leave behind, built by hand (obsm, layers, uns)."""
    rng = np.random.default_rng(seed)
    xy = rng.normal(size=(n, 2))
    rna = AnnData(rng.normal(size=(n, len(GENES))).astype(np.float32))
    rna.var_names = GENES
    ephys = AnnData(rng.normal(size=(n, len(FEATURES))).astype(np.float32))
    ephys.var_names = FEATURES
    ephys.layers["sbnn_pred"] = xy @ rng.normal(size=(2, len(FEATURES)))
    if reconstructed:
        pred = pd.DataFrame(xy @ rng.normal(size=(2, len(GENES))), columns=GENES)
        pred.index = rna.obs_names
        rna.obsm["sbnn_genes_pred"] = pred
    m = MuData({"rna": rna, "ephys": ephys})
    m.obsm["X_sbnn"] = xy
    m.obs["family"] = pd.Categorical([f"type {i % n_types}" for i in range(n)])
    m.uns["sbnn"] = {
        "params": {"x": "rna", "y": "ephys", "bottleneck": 2},
        "selected_genes": np.asarray(GENES, dtype=object),
        "r2_train": 0.6,
        "r2_heldout": 0.45,
        "r2_train_per_feature": dict(zip(FEATURES, [0.9, 0.8, 0.7])),
        "r2_heldout_per_feature": dict(zip(FEATURES, [0.3, 0.6, 0.5])),
    }
    return m


def _main(fig):
    return next(a for a in fig.axes if a.get_title().startswith("sBNN"))


def test_titles_name_the_model_and_the_held_out_r2():
    fig = mv.pl.latent_overlay(_mdata(), genes=2, features=3, color="family")
    assert _main(fig).get_title() == "sBNN-2 latent\nheld-out R² 0.45"
    titles = [a.get_title() for a in fig.axes]
    # features best first by held-out R² (not training R²), gene panels by their names
    assert titles.count("Tau\nheld-out R² 0.60") == 1
    feats = [t.split("\n")[0] for t in titles if "R²" in t and not t.startswith("sBNN")]
    assert feats == ["Tau", "Sag", "AP width"]
    assert {"Pvalb", "Sst"} <= set(titles)
    plt.close(fig)


def test_palette_from_uns_of_mudata_or_modality_in_category_order():
    m = _mdata()
    # one category unused: colours still follow the column's category order (scanpy)
    m.obs["family"] = (
        m.obs["family"]
        .cat.add_categories(["unused"])
        .cat.reorder_categories(["unused", "type 0", "type 1", "type 2", "type 3", "type 4"])
    )
    colors = ["#000000", "#ff0000", "#00ff00", "#0000ff", "#ffff00", "#00ffff"]
    for where in (m.uns, m["rna"].uns):
        m.uns.pop("family_colors", None)
        where["family_colors"] = colors
        fig = mv.pl.latent_overlay(m, genes=0, features=0, color="family")
        drawn = {c.get_label(): c for c in _main(fig).collections}
        for cat, col in zip(["type 0", "type 1", "type 4"], ["#ff0000", "#00ff00", "#00ffff"]):
            assert tuple(drawn[cat].get_facecolors()[0]) == to_rgba(col)
        plt.close(fig)


def test_default_palette_has_no_repeats_for_77_categories():
    m = _mdata(n=400, n_types=77)
    fig = mv.pl.latent_overlay(m, genes=0, features=1, color="family")
    faces = {tuple(c.get_facecolors()[0]) for c in _main(fig).collections}
    assert len(faces) == 77
    plt.close(fig)


@pytest.mark.parametrize(
    ("reconstructed", "genes", "features", "labels"),
    [
        (False, 2, 2, ["observed expression (z-score)", "predicted (z-score)"]),
        (True, 2, 2, ["reconstructed expression (z-score)", "predicted (z-score)"]),
        (False, 0, 2, ["predicted (z-score)"]),
        (True, 2, 0, ["reconstructed expression (z-score)"]),
    ],
)
def test_colour_bar_says_what_is_shown(reconstructed, genes, features, labels):
    m = _mdata(reconstructed=reconstructed)
    fig = mv.pl.latent_overlay(m, genes=genes, features=features, color="family")
    bars = [a.get_ylabel() for a in fig.axes if a.get_ylabel()]
    assert sorted(bars) == sorted(labels)
    plt.close(fig)


@pytest.mark.parametrize("n_types", [10, 77])
def test_legend_never_wider_than_the_figure(n_types):
    m = _mdata(n=400, n_types=n_types)
    m.obs["family"] = pd.Categorical([f"L5/6 NP type {i % n_types}" for i in range(m.n_obs)])
    fig = mv.pl.latent_overlay(m, color="family")
    fig.draw_without_rendering()
    legend = fig.legends[0]
    assert len(legend.get_texts()) == n_types
    box, frame = legend.get_window_extent(), fig.bbox
    assert box.width <= frame.width and box.x0 >= frame.x0 - 1 and box.x1 <= frame.x1 + 1
    assert box.y0 >= frame.y0 - 1 and box.y1 <= frame.y1 + 1
    panels = [a for a in fig.axes if a.get_title()]
    assert not any(box.overlaps(a.get_window_extent()) for a in panels)
    if n_types > 20:  # below the panels, no wider than the latent and overlays together
        left = min(a.get_window_extent().x0 for a in panels)
        right = max(a.get_window_extent().x1 for a in panels)
        assert box.width <= right - left
        assert box.y1 <= min(a.get_window_extent().y0 for a in panels)
    plt.close(fig)


def _hull_mask(xy: np.ndarray, tri) -> np.ndarray:
    """Triangles whose centroid lies inside the convex hull of ``xy``."""
    centroids = tri.x[tri.triangles].mean(axis=1), tri.y[tri.triangles].mean(axis=1)
    hull = Path(xy[ConvexHull(xy).vertices])
    return hull.contains_points(np.column_stack(centroids))


def test_no_holes_inside_dense_blobs_but_gap_between_them_masked():
    rng = np.random.default_rng(1)
    blobs = []
    for centre, n, scale in (((0, 0), 500, 1.0), ((12, 0), 150, 0.6), ((0, 12), 300, 2.0)):
        r = scale * np.sqrt(rng.uniform(size=n))
        phi = rng.uniform(0, 2 * np.pi, size=n)
        blobs.append(np.column_stack([r * np.cos(phi), r * np.sin(phi)]) + centre)
    xy = np.vstack(blobs)
    tri = masked_triangulation(xy)
    for blob in blobs:
        inside = _hull_mask(blob, tri)
        assert inside.sum() > 0.8 * len(blob)
        assert tri.mask[inside].mean() <= 0.002  # no holes inside any blob
    owner = np.repeat(np.arange(len(blobs)), [len(b) for b in blobs])[tri.triangles]
    bridging = (owner != owner[:, :1]).any(axis=1)
    assert bridging.any() and tri.mask[bridging].all()  # the gaps stay empty


def test_no_holes_in_a_gaussian_blob_where_the_median_edge_rule_had_some():
    xy = np.random.default_rng(2).normal(size=(800, 2))
    tri = masked_triangulation(xy)
    dense = _hull_mask(xy[np.linalg.norm(xy, axis=1) < 1.5], tri)
    assert tri.mask[dense].mean() == 0.0
    pts = xy[tri.triangles]
    edges = np.linalg.norm(pts - np.roll(pts, 1, axis=1), axis=2)
    old = masked_triangulation(xy, max_edge=3 * float(np.median(edges)))  # the old default
    assert old.mask.sum() > tri.mask.sum()


def test_plotting_before_fitting_names_the_fit_not_muons_masks():
    m = MuData({"rna": AnnData(np.ones((4, 3))), "ephys": AnnData(np.ones((4, 2)))})
    assert set(m.obsm) >= {"rna", "ephys"}  # muon's per-modality masks
    with pytest.raises(mv.InputError, match=r"no embedding yet: fit one first, e.g. `mv.tl.sbnn"):
        mv.pl.latent_overlay(m, basis="sbnn")
