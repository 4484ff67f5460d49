"""``mv.tl.compare_methods`` / ``mv.pl.compare_methods``: paired CV differences with a CI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _sbnn_helpers import TINY, one_torch_thread  # noqa: F401
from matplotlib.figure import Figure
from scipy import stats

import multiviz as mv
from multiviz import InputError
from multiviz.tl._compare_methods import paired_ci

K = 5
RANKS = (("srrr", {"rank": 1}), ("srrr", {"rank": 2}))  # planted signal: 2-d latent
KEY = "compare_srrr_rank_1_srrr_rank_2"


@pytest.fixture(scope="module")
def sim():
    m = mv.datasets.simulate_patchseq(n_cells=300, n_genes=150, n_latent=2, random_state=0)
    mv.pp.prepare_paired(m, x="rna", y="ephys", gene_selection="none")
    return m


@pytest.fixture(scope="module")
def ranks(sim):
    m = sim.copy()
    df = mv.tl.compare_methods(m, RANKS, n_folds=K, n_genes=10)
    return m, df


def _per_fold(m, key, feature):
    t = m.uns[key]
    return t[t["feature"] == feature].set_index("fold")["r2"].sort_index()


def test_rank_2_is_better_than_rank_1_on_a_2d_signal(ranks):
    m, df = ranks
    columns = "feature diff ci_low ci_high p_value wins n_folds r2_first r2_second"
    assert list(df.columns) == columns.split()
    assert list(df["feature"]) == [*map(str, m["ephys"].var_names), "all"]
    overall = df.iloc[-1]
    assert overall["ci_low"] > 0 and overall["diff"] > 0.03 and overall["n_folds"] == K
    verdict = df.attrs["verdict"]
    assert verdict.startswith("sRRR (rank=2) is better than sRRR (rank=1): +0.")
    assert "95 % CI +0." in verdict and f"of {K} folds)" in verdict
    assert m.uns[KEY] is df and m.uns[f"{KEY}_verdict"] == verdict
    params = m.uns[f"{KEY}_params"]
    assert params["first"] == "sRRR (rank=1)" and params["second"] == "sRRR (rank=2)"
    assert params["cv_keys"] == ["cv_srrr_rank_1", "cv_srrr_rank_2"]
    assert params["n_folds"] == K and params["level"] == 0.95
    assert m.uns["cv_srrr_rank_2"]["params"].iloc[0] == "n_genes=10, rank=2"


def test_interval_is_the_nadeau_bengio_corrected_t(ranks):
    m, df = ranks
    for feature in ("all", "feature_3"):
        d = _per_fold(m, "cv_srrr_rank_2", feature) - _per_fold(m, "cv_srrr_rank_1", feature)
        d = d.to_numpy()
        mean, s2 = d.mean(), d.var(ddof=1)
        se = np.sqrt((1 / K + 1 / (K - 1)) * s2)  # n_test / n_train = 1 / (K - 1)
        q = stats.t.ppf(0.975, K - 1)
        row = df.set_index("feature").loc[feature]
        assert row["diff"] == pytest.approx(mean)
        assert row["ci_low"] == pytest.approx(mean - q * se)
        assert row["ci_high"] == pytest.approx(mean + q * se)
        assert row["p_value"] == pytest.approx(2 * stats.t.sf(abs(mean) / se, K - 1))
        assert row["wins"] == int((d > 0).sum())
        assert row["ci_high"] - row["ci_low"] > 2 * q * np.sqrt(s2 / K)  # wider than naive
    # another level: the interval scales with the t quantile
    low, high = paired_ci(d, 1 / (K - 1), level=0.8)[1:3]
    assert (high - low) / (row["ci_high"] - row["ci_low"]) == pytest.approx(
        stats.t.ppf(0.9, K - 1) / stats.t.ppf(0.975, K - 1)
    )


def test_worse_when_the_order_is_reversed(ranks):
    m, _ = ranks
    df = mv.tl.compare_methods(m, RANKS[::-1], n_folds=K, n_genes=10)
    assert df.iloc[-1]["ci_high"] < 0
    assert df.attrs["verdict"].startswith("sRRR (rank=1) is worse than sRRR (rank=2): −0.")
    assert "compare_srrr_rank_2_srrr_rank_1" in m.uns


def test_identical_models_are_not_better(sim):
    m = sim.copy()
    same = (("srrr", {"rank": 2}), ("srrr", {"rank": 2, "relaxed": True}))  # relaxed: default
    df = mv.tl.compare_methods(m, same, n_folds=K, n_genes=10, labels=("A", "B"))
    np.testing.assert_allclose(df["diff"], 0.0, atol=1e-12)
    assert ((df["ci_low"] <= 0) & (df["ci_high"] >= 0)).all() and (df["wins"] == 0).all()
    assert df.attrs["verdict"] == (
        "B is not better than A here: +0.000, 95 % CI +0.000 to +0.000 (better in 0 of 5 folds)"
    )
    assert "compare_a_b" in m.uns and {"cv_a", "cv_b"} <= set(m.uns)


def test_reuse_only_tables_of_the_same_folds(ranks):
    m, _ = ranks
    m = m.copy()
    before = m.uns["cv_srrr_rank_1"]
    mv.tl.compare_methods(m, RANKS, n_folds=K, n_genes=10)
    assert m.uns["cv_srrr_rank_1"] is before  # same folds and parameters: reused
    mv.tl.compare_methods(m, RANKS, n_folds=K, n_genes=10, reuse=False)
    assert m.uns["cv_srrr_rank_1"] is not before
    before = m.uns["cv_srrr_rank_1"]
    mv.tl.compare_methods(m, RANKS, n_folds=K, n_genes=10, random_state=1)
    assert m.uns["cv_srrr_rank_1"] is not before  # another split: recomputed
    assert m.uns[f"{KEY}_params"]["random_state"] == 1
    key = "cv_srrr_rank_1"
    plain = mv.tl.cross_validate(m, "srrr", n_folds=K, rank=1, n_genes=10, key_added=key)
    mv.tl.compare_methods(m, RANKS, n_folds=K, n_genes=10)
    assert m.uns["cv_srrr_rank_1"] is not plain  # an sRRR table does not record its seed


def test_srrr_vs_sbnn_reuses_an_sbnn_table_with_its_seed(ranks):
    """An sBNN table (its params record the seed) is reused; the default key and labels."""
    m, expected = ranks
    m = m.copy()
    fake = m.uns["cv_srrr_rank_2"].copy()
    fake["method"], fake["params"] = "sbnn", "n_genes=10, random_state=0"
    m.uns["cv_sbnn"] = fake
    df = mv.tl.compare_methods(m, n_folds=K, n_genes=10, method_kwargs={"srrr": {"rank": 1}})
    assert m.uns["cv_sbnn"] is fake and "compare_srrr_sbnn" in m.uns
    pd.testing.assert_frame_equal(df, expected)
    assert df.attrs["verdict"].startswith("sBNN is better than sRRR: +0.")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"methods": ("srrr", "xgboost")}, r"methods\[1\]"),
        ({"methods": ("srrr",)}, "`methods` must be two models"),
        ({"methods": "srrr"}, "`methods` must be two models"),
        ({"methods": ("srrr", "srrr")}, "same model twice"),
        ({"level": 1.0}, "`level`"),
        ({"level": 0}, "`level`"),
        ({"n_folds": 2}, "`n_folds` must be at least 3 for a confidence interval"),
        ({"random_state": -1}, "`random_state=-1`"),
        ({"reuse": "yes"}, "`reuse`"),
        ({"methods": ("srrr", "srrr"), "method_kwargs": {"srrr": {"rank": 1}}}, "method_kwargs"),
        ({"method_kwargs": {"xgboost": {}}}, "method_kwargs"),
        ({"method_kwargs": [{"rank": 1}]}, "method_kwargs"),
        ({"rank": 2}, r"methods\[1\]='sbnn'.*unknown keyword.*`rank`"),
        ({"method_kwargs": {"srrr": {"bottleneck": 2}}}, "unknown keyword.*`bottleneck`"),
        ({"folds": [0]}, "`folds`"),
        ({"method_kwargs": {"sbnn": {"random_state": 3}}}, "`random_state`"),
        ({"methods": RANKS, "labels": ("a", "A")}, "two distinct names"),
        ({"methods": RANKS, "y": "protein"}, "`y='protein'`"),
        ({"methods": RANKS, "key_added": ""}, "`key_added`"),
    ],
)
def test_bad_input_is_an_input_error_and_writes_nothing(sim, kwargs, match):
    m = sim.copy()
    keys = sorted(m.uns)
    with pytest.raises(InputError, match=match):
        mv.tl.compare_methods(m, **{"n_folds": K, **kwargs})
    assert sorted(m.uns) == keys
    with pytest.raises(InputError, match="`mdata`"):
        mv.tl.compare_methods(m["rna"])


def test_forest_plot(ranks, tmp_path):
    m, df = ranks
    fig = mv.pl.compare_methods(m, KEY, show=False, save=tmp_path / "compare.png")
    assert isinstance(fig, Figure) and (tmp_path / "compare.png").stat().st_size > 0
    ax = fig.axes[0]
    labels = ax.get_yticklabels()
    assert len(labels) == len(df) == m["ephys"].n_vars + 1
    assert labels[-1].get_text().startswith("overall") and labels[-1].get_fontweight() == "bold"
    assert ax.get_title().replace("\n", " ") == df.attrs["verdict"]
    assert "sRRR (rank=2) − sRRR (rank=1)" in ax.get_xlabel()
    assert isinstance(mv.pl.compare_methods(df, return_fig=True), Figure)  # the table itself
    with pytest.raises(InputError, match="compare_srrr_rank_1_srrr_rank_2"):
        mv.pl.compare_methods(m, "compare_srrr_sbnn", show=False)
    with pytest.raises(InputError, match="not a `mv.tl.compare_methods` table"):
        mv.pl.compare_methods(m, "cv_srrr_rank_1", show=False)


def test_written_results_survive_h5mu(ranks, tmp_path):
    import mudata as md

    m, df = ranks
    m.write(tmp_path / "m.h5mu")
    back = md.read_h5mu(tmp_path / "m.h5mu")
    assert back.uns[f"{KEY}_verdict"] == df.attrs["verdict"]
    assert isinstance(mv.pl.compare_methods(back, KEY, show=False), Figure)


@pytest.mark.slow
def test_srrr_vs_sbnn_in_one_call(sim):
    m = sim.copy()
    df = mv.tl.compare_methods(
        m, n_folds=3, n_genes=10, method_kwargs={"sbnn": TINY}, enable_progress_bar=False
    )
    assert {"cv_srrr", "cv_sbnn", "compare_srrr_sbnn"} <= set(m.uns)
    assert (
        df.iloc[-1]["n_folds"] == 3
        and np.isfinite(df.iloc[-1][["ci_low", "ci_high"]].astype(float)).all()
    )
    assert df.attrs["verdict"].startswith("sBNN is ")
