"""mv.pl.coupled_latents and mv.pl.cross_modal draw what mv.tl wrote."""

from __future__ import annotations

import matplotlib.pyplot as plt
import mudata as md
import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

import multiviz as mv
from multiviz import InputError


@pytest.fixture
def fake():
    rng = np.random.default_rng(0)
    n = 30
    names = [f"c{i}" for i in range(n)]
    rna, eph = AnnData(rng.normal(size=(n, 5))), AnnData(rng.normal(size=(n - 10, 3)))
    rna.obs_names, eph.obs_names = names, names[:20]
    mdata = md.MuData({"rna": rna, "ephys": eph})
    mdata.obs["type"] = pd.Categorical(rng.choice(list("abc"), n))
    z = rng.normal(size=(n, 3)).astype(np.float32)
    ze = z.copy()
    ze[20:] = np.nan
    mdata.obsm["X_cae_rna"], mdata.obsm["X_cae_ephys"] = z, ze
    rna.layers["cae_from_ephys"] = np.asarray(rna.X) + 0.1 * rng.normal(size=rna.shape)
    return mdata


def test_coupled_latents_panels(fake, tmp_path):
    fig = mv.pl.coupled_latents(fake, color="type", save=tmp_path / "lat.png")
    axes = [a for a in fig.axes if a.collections]
    assert len(axes) == 2 and (tmp_path / "lat.png").exists()
    n_points = sorted(sum(c.get_offsets().shape[0] for c in a.collections) for a in axes)
    assert n_points == [20, 30]  # cells without ephys are not drawn in the ephys panel
    assert axes[0].get_xlim() == axes[1].get_xlim()
    plt.close(fig)
    with pytest.raises(InputError, match="run `mv.tl.coupled_autoencoder`"):
        mv.pl.coupled_latents(fake, key="nope")


def test_cross_modal_panels(fake):
    fig, ax = plt.subplots()
    out = mv.pl.cross_modal(fake, features=["0", "3"], ax=ax)
    axes = [a for a in out.axes if a.collections]
    assert [a.get_title().split(" ")[0] for a in axes] == ["0", "3"]
    x = np.asarray(fake["rna"].X)[:, 0]
    r = np.corrcoef(x, fake["rna"].layers["cae_from_ephys"][:, 0])[0, 1]
    assert f"r={r:.2f}" in axes[0].get_title()
    plt.close(out)
    with pytest.raises(InputError, match="cross_modal_predict"):
        mv.pl.cross_modal(fake, source="rna", target="ephys")
