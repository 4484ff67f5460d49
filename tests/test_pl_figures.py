"""Figures assert on what is drawn: panels, points, lines, labels, colour limits."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

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


def test_training_history_marks_phases():
    history = pd.DataFrame(
        {
            "phase": ["pretrain"] * 3 + ["frozen"] * 2 + ["finetune"] * 4,
            "loss": np.linspace(2, 1, 9),
        }
    )
    fig, ax = plt.subplots()
    out = mv.pl.training_history(history, ax=ax)
    assert out is fig
    assert len(ax.lines) == 1 and len(ax.lines[0].get_xdata()) == 9
    assert [t.get_text() for t in ax.texts] == ["pretrain", "frozen", "finetune"]
    plt.close(fig)


def test_training_history_from_uns_dict_with_unequal_lengths():
    mdata = mv.datasets.simulate_patchseq(n_cells=50, n_genes=30, n_drivers=3)
    mdata.uns["cae"] = {
        "history": {"train_loss": np.arange(5.0), "validation_loss": np.arange(3.0)}
    }
    fig = mv.pl.training_history(mdata, key="cae", logy=True)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["train_loss", "validation_loss"]
    assert np.isnan(ax.lines[1].get_ydata()[-1])
    assert ax.get_yscale() == "log"
    plt.close(fig)
    with pytest.raises(InputError, match="must name an `uns` entry"):
        mv.pl.training_history(mdata, key="sbnn")


def test_palettes_come_from_uns_and_hubs_are_labelled():
    from anndata import AnnData
    from matplotlib.colors import to_rgba

    mdata = mv.datasets.simulate_patchseq(n_cells=60, n_genes=30, n_drivers=3, n_types=3)
    mdata.uns["cell_type_colors"] = ["#ff0000", "#00ff00", "#0000ff"]
    z = np.random.default_rng(0).normal(size=(mdata.n_obs, 3))
    mdata.obsm["X_cae_rna"] = z
    mdata.obsm["X_cae_ephys"] = z + 0.1
    fig = mv.pl.coupled_latents(mdata, key="cae", modalities=["rna", "ephys"], color="cell_type")
    codes = mdata.obs["cell_type"].cat.codes.to_numpy()
    expected = np.array([to_rgba(c) for c in mdata.uns["cell_type_colors"]])[codes]
    np.testing.assert_allclose(fig.axes[0].collections[0].get_facecolors(), expected)
    plt.close(fig)

    genes = AnnData(np.zeros((2, 5), dtype=np.float32))
    genes.var_names = ["g0", "g1", "hub", "g3", "g4"]
    genes.varm["sivae_loadings"] = np.array([[3.0, 3], [2, 2], [0.1, 0.1], [1, 1], [0.5, 0]])
    genes.var["sivae_centrality"] = [0.1, 0.2, 0.9, 0.3, 0.0]
    genes.var["group"] = pd.Categorical(["a", "a", "b", "b", "b"])
    genes.uns["group_colors"] = ["#123456", "#abcdef"]
    ax = mv.pl.loadings(genes, color="group", label_top=1)
    assert [t.get_text() for t in ax.texts] == [
        "hub"
    ]  # the most central gene, not the largest norm
    assert to_rgba("#abcdef") == tuple(ax.collections[1].get_facecolors()[0])
    plt.close(ax.figure)
