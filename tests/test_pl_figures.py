"""Figures assert on what is drawn: panels, points, lines, labels, colour limits."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

import multiviz as mv
from multiviz import InputError


def _cv_table(method, params, r2_by_feature, overall, n_folds=3):
    rows = []
    for fold in range(n_folds):
        rows.append(
            {
                "method": method,
                "params": params,
                "fold": fold,
                "feature": "all",
                "r2": overall[fold],
            }
        )
        for feature, values in r2_by_feature.items():
            rows.append(
                {
                    "method": method,
                    "params": params,
                    "fold": fold,
                    "feature": feature,
                    "r2": values[fold],
                }
            )
    return pd.DataFrame(rows)


def test_cv_r2_draws_mean_sd_and_multivariate_line():
    a = _cv_table(
        "srrr", "rank=2", {"tau": [0.1, 0.2, 0.3], "sag": [0.5, 0.5, 0.5]}, [0.3, 0.3, 0.4]
    )
    b = _cv_table(
        "sbnn", "bottleneck=2", {"tau": [0.4, 0.4, 0.4], "sag": [0.6, 0.7, 0.8]}, [0.5, 0.5, 0.5]
    )
    fig = mv.pl.cv_r2([a, b], labels={"srrr (rank=2)": "sRRR-2"})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["tau", "sag"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["sRRR-2", "sbnn (bottleneck=2)"]
    markers = [line for line in ax.lines if line.get_marker() == "o"]
    np.testing.assert_allclose(
        np.asarray(markers[0].get_ydata(), dtype=float), [0.2, 0.5]
    )  # means over folds
    np.testing.assert_allclose(np.asarray(markers[1].get_ydata(), dtype=float), [0.4, 0.7])
    dashed = sorted(line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == "--")
    np.testing.assert_allclose(dashed, [1 / 3, 0.5])
    plt.close(fig)


def test_cv_r2_reads_uns_and_rejects_unknown_keys():
    mdata = mv.datasets.simulate_patchseq(n_cells=50, n_genes=30, n_drivers=3)
    mdata.uns["cv_srrr"] = _cv_table("srrr", "", {"f": [0.1, 0.2, 0.3]}, [0.2, 0.2, 0.2])
    fig = mv.pl.cv_r2(mdata)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["srrr"]
    plt.close(fig)
    with pytest.raises(InputError, match="not in `mdata.uns`"):
        mv.pl.cv_r2(mdata, key="cv_missing")


def test_selection_stability_counts_and_jaccard(tmp_path):
    mdata = mv.datasets.simulate_patchseq(n_cells=50, n_genes=30, n_drivers=3)
    sets = ["a;b;c", "a;b;d", "a;e;f"]
    mdata.uns["sbnn_stability"] = {"over": "seeds", "gene_sets": np.array(sets, dtype=object)}
    fig = mv.pl.selection_stability(mdata, key="sbnn", save=tmp_path / "stab.png")
    ax_counts, ax_matrix = fig.axes[:2]
    heights = [p.get_height() for p in ax_counts.patches]
    assert heights == [4, 1, 1]  # c,d,e,f once; b twice; a three times
    matrix = ax_matrix.images[0].get_array()
    assert matrix[0, 1] == pytest.approx(2 / 4) and matrix[0, 2] == pytest.approx(1 / 5)
    assert ax_matrix.images[0].get_clim() == (0, 1)
    assert "mean 0.30" in ax_matrix.get_title()  # (0.5 + 0.2 + 0.2) / 3
    assert (tmp_path / "stab.png").exists()
    plt.close(fig)


def test_training_history_draws_phases_side_by_side():
    history = pd.DataFrame(
        {
            "phase": ["pretrain"] * 3 + ["frozen"] * 2 + ["finetune"] * 4,
            "loss": np.linspace(2, 1, 9),
        }
    )
    fig, ax = plt.subplots()
    out = mv.pl.training_history(history, ax=ax)
    assert out is fig
    panels = [a for a in fig.axes if a.lines]
    assert [a.get_title() for a in panels] == ["pretrain", "frozen", "finetune"]
    assert [len(a.lines[0].get_xdata()) for a in panels] == [3, 2, 4]
    # each phase starts at epoch 1 on its own axis: no phase is drawn over another
    assert [a.lines[0].get_xdata()[0] for a in panels] == [1, 1, 1]
    fig.draw_without_rendering()
    xs = [a.get_position().x0 for a in panels]
    assert xs == sorted(xs) and len(set(xs)) == 3
    np.testing.assert_allclose(panels[1].lines[0].get_ydata(), np.linspace(2, 1, 9)[3:5])
    plt.close(fig)


def test_training_history_splits_sivae_steps():
    n = {"cell_pretrain": 4, "feature_pretrain": 3, "joint": 5}
    flat = {
        "cell_pretrain_train_loss_epoch": np.linspace(5, 4, 4),
        "feature_pretrain_train_loss_epoch": np.linspace(3, 2, 3),
        "train_loss_epoch": np.linspace(9, 8, 5),
        "validation_loss": np.linspace(9.5, 8.5, 5),
    }
    adata = AnnData(np.zeros((3, 2), dtype=np.float32))
    adata.uns["sivae"] = {"history": flat}
    fig = mv.pl.training_history(adata, key="sivae", return_fig=True)
    panels = [a for a in fig.axes if a.lines]
    assert [a.get_title() for a in panels] == list(n)
    assert [len(a.lines[0].get_xdata()) for a in panels] == list(n.values())
    assert len(panels[2].lines) == 2  # train and validation loss of the joint step
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["train_loss_epoch", "validation_loss"]
    plt.close(fig)
    nested = {"cell_pretrain": {"loss": [3.0, 2.0]}, "joint": {"loss": [1.0, 0.5, 0.2]}}
    fig = mv.pl.training_history(nested, return_fig=True)
    assert [a.get_title() for a in fig.axes] == ["cell_pretrain", "joint"]
    plt.close(fig)


def test_training_history_from_uns_dict_with_unequal_lengths():
    mdata = mv.datasets.simulate_patchseq(n_cells=50, n_genes=30, n_drivers=3)
    mdata.uns["cae"] = {
        "history": {"train_loss": np.arange(5.0), "validation_loss": np.arange(3.0)}
    }
    fig = mv.pl.training_history(mdata, key="cae", logy=True)
    ax = fig.axes[0]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["train_loss", "validation_loss"]
    assert np.isnan(ax.lines[1].get_ydata()[-1])
    assert ax.get_yscale() == "log"
    plt.close(fig)
    with pytest.raises(InputError, match="must name an `uns` entry"):
        mv.pl.training_history(mdata, key="sbnn")


def test_palettes_come_from_uns_and_hubs_are_labelled():
    from matplotlib.colors import to_rgba

    mdata = mv.datasets.simulate_patchseq(n_cells=60, n_genes=30, n_drivers=3, n_types=3)
    mdata.uns["cell_type_colors"] = ["#ff0000", "#00ff00", "#0000ff"]
    z = np.random.default_rng(0).normal(size=(mdata.n_obs, 3))
    mdata.obsm["X_cae_rna"] = z
    mdata.obsm["X_cae_ephys"] = z + 0.1
    fig = mv.pl.coupled_latents(mdata, key="cae", modalities=["rna", "ephys"], color="cell_type")
    cats = list(mdata.obs["cell_type"].cat.categories)
    for collection in fig.axes[0].collections:
        i = cats.index(collection.get_label())
        assert tuple(collection.get_facecolors()[0]) == to_rgba(mdata.uns["cell_type_colors"][i])
        assert collection.get_offsets().shape[0] == (mdata.obs["cell_type"] == cats[i]).sum()
    plt.close(fig)

    genes = AnnData(np.zeros((2, 5), dtype=np.float32))
    genes.var_names = ["g0", "g1", "hub", "g3", "g4"]
    genes.varm["sivae_loadings"] = np.array([[3.0, 3], [2, 2], [0.1, 0.1], [1, 1], [0.5, 0]])
    genes.var["sivae_centrality"] = [0.1, 0.2, 0.9, 0.3, 0.0]
    genes.var["group"] = pd.Categorical(["a", "a", "b", "b", "b"])
    genes.uns["group_colors"] = ["#123456", "#abcdef"]
    fig = mv.pl.loadings(genes, color="group", label_top=1)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == [
        "hub"
    ]  # the most central gene, not the largest norm
    assert to_rgba("#abcdef") == tuple(ax.collections[1].get_facecolors()[0])
    plt.close(fig)


def _crowded_loadings(n=40):
    rng = np.random.default_rng(1)
    genes = AnnData(np.zeros((2, n), dtype=np.float32))
    genes.var_names = [f"GENE{i:02d}" for i in range(n)]
    genes.varm["sivae_loadings"] = rng.normal(scale=0.05, size=(n, 2))  # one tight clump
    genes.var["sivae_centrality"] = rng.uniform(size=n)
    groups = pd.Categorical(rng.choice(["x", "y"], n))
    genes.var["group"] = groups
    genes.var.loc[genes.var_names[:5], "group"] = np.nan
    return genes


def test_loadings_labels_do_not_overlap_and_nan_group_is_na():
    from matplotlib.colors import to_rgba

    from multiviz.pl._repel import label_boxes

    genes = _crowded_loadings()
    fig = mv.pl.loadings(genes, color="group", label_top=20)
    ax = fig.axes[0]
    assert len(ax.texts) == 20
    fig.draw_without_rendering()
    boxes = label_boxes(ax.texts)
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            overlap_x = min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0])
            overlap_y = min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1])
            assert overlap_x <= 0 or overlap_y <= 0, (
                ax.texts[i].get_text(),
                ax.texts[j].get_text(),
            )
    drawn = {c.get_label(): c for c in ax.collections}
    assert drawn["NA"].get_offsets().shape[0] == 5
    assert tuple(drawn["NA"].get_facecolors()[0]) == to_rgba("lightgray")
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["x", "y", "NA"]
    plt.close(fig)


def test_show_and_return_fig_follow_scanpy(monkeypatch):
    shown = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: shown.append(1))
    history = {"loss": [3.0, 2.0, 1.0]}
    assert isinstance(mv.pl.training_history(history), plt.Figure)  # non-interactive: returned
    assert shown == []
    plt.close("all")
    with plt.ion():
        assert mv.pl.training_history(history) is None  # interactive: shown once, not returned
        assert shown == [1]
        fig = mv.pl.training_history(history, return_fig=True)
        assert isinstance(fig, plt.Figure) and shown == [1]
        assert isinstance(mv.pl.training_history(history, show=False), plt.Figure)
        assert shown == [1]
        fig, ax = plt.subplots()  # the caller's figure: not shown, returned to keep drawing
        assert mv.pl.training_history(history, ax=ax) is fig and shown == [1]
    plt.close("all")
    genes = _crowded_loadings(6)
    for out in (
        mv.pl.loadings(genes, show=False),
        mv.pl.network_similarity(
            {"embedding": pd.DataFrame(np.eye(3)[:, :2], index=["a", "b", "c"])}, show=False
        ),
    ):
        assert isinstance(out, plt.Figure)  # one return type: a Figure, never an Axes
    plt.close("all")
