"""The batched sBNN ensemble: same results as sequential fits, consensus finds the drivers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _sbnn_helpers import one_torch_thread, simulated  # noqa: F401

import multiviz as mv
from multiviz.metrics import r2_score
from multiviz.models.sbnn import paper_schedule
from multiviz.models.sbnn._ensemble import StackedAdam
from multiviz.models.sbnn._ensemble_plan import EnsembleMember, train_ensemble
from multiviz.tl._ensemble_fits import fit_sbnn_members
from multiviz.tl._paired_data import fold_arrays, full_arrays

# a short schedule at a raised learning rate: long enough for the planted signal to be
# learnt (held-out R² well above 0), short enough for the default suite
SHORT = {"pretrain_epochs": 6, "frozen_epochs": 4, "unfrozen_epochs": 12, "pruned_epochs": 6}


@pytest.fixture(scope="module")
def sim():
    return simulated(n_cells=240, n_genes=120)


def _fold_r2(m, ensemble: bool, seed: int):
    fold_of = mv.tl.cv_folds(m.n_obs, 3, 0)
    arrays = [
        fold_arrays(m, np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(3)
    ]
    fits = fit_sbnn_members(
        [tr for tr, _ in arrays],
        [seed] * 3,
        {"n_genes": 10, "lr": 1e-3, **SHORT},
        ensemble=ensemble,
        progress=False,
    )
    r2 = np.array([r2_score(te.Y, f.forward(te.X)[1]) for (_, te), f in zip(arrays, fits)])
    return r2, [f.genes for f in fits]


def test_ensemble_equals_sequential(sim):
    """Same folds and seed: per-fold R² agree far within the seed-to-seed spread."""
    ens, ens_genes = _fold_r2(sim, True, 0)
    seq, seq_genes = _fold_r2(sim, False, 0)
    other, _ = _fold_r2(sim, False, 1)
    spread = float(np.abs(seq - other).max())
    assert (seq > 0.3).all() and (ens > 0.3).all()  # the planted signal, on held-out cells
    assert float(np.abs(ens - seq).max()) <= spread
    overlap = [len(set(a) & set(b)) for a, b in zip(ens_genes, seq_genes)]
    assert min(overlap) >= 8  # of 10: screening leaves the selection (nearly) as it was


def test_ensemble_without_screening_is_the_sequential_fit():
    """Same seed, labels, hold-out and batches: the stacked member is the sequential model."""
    m = simulated(n_cells=160, n_genes=60, random_state=4)
    d = full_arrays(m)
    seq = fit_sbnn_members(
        [d], [3], {"n_genes": 8, "lr": 1e-3, **SHORT}, ensemble=False, progress=False
    )[0]
    phases = paper_schedule(lr=1e-3, **SHORT)
    member = EnsembleMember(torch.from_numpy(d.X), torch.from_numpy(d.Y), 3)
    ens = train_ensemble([member], phases, n_genes=8, screen=False)[0]
    names = [str(g) for g in d.gene_names[ens.module.gene_index.numpy()]]
    assert sorted(names) == sorted(seq.genes)
    with torch.no_grad():
        pred = ens.module.forward_targets(ens.module.select_input(torch.from_numpy(d.X)))[1]
    np.testing.assert_allclose(pred.numpy(), seq.forward(d.X)[1], atol=1e-3)


def test_screening_drops_dead_genes_without_changing_the_fit():
    """Genes without signal are zeroed by the lasso and dropped; every other number is unchanged.

    Every non-driver gene is set to 0 in every cell: their rows get no data
    gradient, so the lasso alone drives them to zero and the KKT check lets them go.
    Dropping them must leave the selection and the predictions exactly as without the
    screen (their inputs contribute nothing to the forward pass).
    """
    m = simulated(n_cells=200, n_genes=100, random_state=2)
    d = full_arrays(m)
    X = d.X.copy()
    drivers = np.flatnonzero(m["rna"].var["driver"].to_numpy())
    silent = np.setdiff1d(np.arange(100), drivers)
    X[:, silent] = 0.0
    X, Y = torch.from_numpy(X), torch.from_numpy(d.Y)
    phases = paper_schedule(lr=1e-3, lr_finetune=1e-3, **{**SHORT, "unfrozen_epochs": 18})
    kw = {"n_genes": 5, "screen_after": 4, "screen_every": 4, "screen_tol": 0.2}
    on = train_ensemble([EnsembleMember(X, Y, s) for s in (0, 1)], phases, screen=True, **kw)
    off = train_ensemble([EnsembleMember(X, Y, s) for s in (0, 1)], phases, screen=False, **kw)
    for a, b in zip(on, off):
        dropped = np.flatnonzero(a.weight_norms_ == 0)
        assert len(dropped) >= 45 and set(dropped) <= set(silent)  # work removed, dead genes only
        assert a.module.gene_index.tolist() == b.module.gene_index.tolist()
        with torch.no_grad():
            pa = a.module.forward_targets(a.module.select_input(X))[1]
            pb = b.module.forward_targets(b.module.select_input(X))[1]
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-5)


def test_stacked_adam_matches_torch_adam():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(3, 4, 5, generator=gen)
    ref = [w[k].clone().requires_grad_(True) for k in range(3)]
    opts = [torch.optim.Adam([r], lr=1e-2, eps=1e-7, weight_decay=1e-3) for r in ref]
    stacked = {"w": w.clone().requires_grad_(True)}
    opt = StackedAdam(stacked, ["w"], lr=1e-2, weight_decay=1e-3)
    for step in range(4):
        g = torch.randn(3, 4, 5, generator=gen)
        active = torch.tensor([True, step % 2 == 0, True])  # member 1 skips odd steps
        for k in range(3):
            if active[k]:
                ref[k].grad = g[k].clone()
                opts[k].step()
        stacked["w"].grad = g.clone()
        opt.step(active)
    for k in range(3):
        torch.testing.assert_close(stacked["w"][k], ref[k].detach(), rtol=1e-5, atol=1e-6)


def test_dropped_genes_stay_exactly_zero_as_with_a_masked_forward():
    """Zeroed rows + zeroed gradients + reset Adam state == multiplying by the mask."""
    from multiviz.models.sbnn import SBNNModule
    from multiviz.models.sbnn._ensemble import StackedSBNN

    gen = torch.Generator().manual_seed(1)
    mods = [SBNNModule(12, 3, n_latent=2, n_hidden=(8, 4), n_clusters=3, seed=s) for s in (0, 1)]
    net = StackedSBNN(mods)
    ref = {k: v.detach().clone().requires_grad_(True) for k, v in net.params.items()}
    alive = torch.ones(2, 12, 1)
    alive[0, [1, 5]] = 0.0
    alive[1, [7]] = 0.0
    net.alive = alive
    opt = StackedAdam(net.params, list(net.params), lr=1e-2, weight_decay=1e-3)
    ref_opt = StackedAdam(ref, list(ref), lr=1e-2, weight_decay=1e-3)
    for _ in range(5):
        x = torch.randn(2, 6, 12, generator=gen)
        opt.zero_grad()
        net.forward(x)[1].pow(2).sum().backward()
        net.mask_dead_gradients_()
        opt.step()
        # the reference multiplies the weights by the mask in the forward pass
        ref_opt.zero_grad()
        h = torch.nn.functional.elu(
            torch.baddbmm(ref["first.bias"], x, ref["first.weight"] * alive)
        )
        for name in net.encoder[1:-1]:
            h = torch.nn.functional.elu(
                torch.baddbmm(ref[f"{name}.bias"], h, ref[f"{name}.weight"])
            )
        h = torch.baddbmm(ref[f"{net.encoder[-1]}.bias"], h, ref[f"{net.encoder[-1]}.weight"])
        for name in net.decoder:
            h = torch.nn.functional.elu(
                torch.baddbmm(ref[f"{name}.bias"], h, ref[f"{name}.weight"])
            )
        torch.baddbmm(ref["head.bias"], h, ref["head.weight"]).pow(2).sum().backward()
        ref_opt.step()
    w = net.first_weight().detach()
    assert torch.all(w[0, [1, 5]] == 0) and torch.all(w[1, 7] == 0)
    torch.testing.assert_close(w, (ref["first.weight"] * alive).detach(), rtol=0, atol=0)
    torch.testing.assert_close(net.params["head.weight"], ref["head.weight"], rtol=0, atol=0)


def test_consensus_recovers_planted_drivers(sim):
    m = sim.copy()
    out = mv.tl.selection_stability(
        m, n_seeds=4, n_genes=10, consensus=True, lr=1e-3, gene_decoder_epochs=0, **SHORT
    )
    drivers = set(m["rna"].var_names[m["rna"].var["driver"]])
    chosen = set(out["consensus_genes"])
    per_fit = [len(set(g) & drivers) for g in out["gene_sets"]]
    # 10 of 120 genes are drivers (chance: < 1 of 10); the consensus is no worse than a fit
    assert len(chosen) == 10 and len(chosen & drivers) >= max(6, np.mean(per_fit))
    freq = m["rna"].var["sbnn_selection_frequency"]
    assert freq[list(drivers)].mean() > 3 * freq.drop(list(drivers)).mean()
    assert set(m.uns["sbnn_consensus"]["selected_genes"]) == chosen
    assert m.obsm["X_sbnn_consensus"].shape == (m.n_obs, 2)
    assert m.uns["sbnn_stability"]["n_fits"] == 4


def test_out_of_fold_predictions_written(sim):
    m = sim.copy()
    df, pred, lat = mv.tl.cross_validate(
        m, method="srrr", n_folds=3, rank=2, n_genes=10, return_predictions=True
    )
    layer = m["ephys"].layers["cv_srrr_pred"]
    assert layer.shape == m["ephys"].shape and np.isfinite(layer).all()
    assert m.obsm["X_cv_srrr"].shape == (m.n_obs, 2)
    raw = m["ephys"].layers["unscaled"] if "unscaled" in m["ephys"].layers else m["ephys"].X
    raw = np.asarray(raw, dtype=np.float64)
    fold = m.obs["cv_srrr_fold"].astype(int).to_numpy()
    for k in range(3):  # each fold's R² from the written predictions, in raw units
        t = fold == k
        mu, sd = raw[fold != k].mean(0), raw[fold != k].std(0)
        yz, pz = (raw[t] - mu) / sd, (pred.to_numpy()[t] - mu) / sd
        r2 = 1 - ((yz - pz) ** 2).sum() / (yz**2).sum()
        assert r2 == pytest.approx(df[(df.fold == k) & (df.feature == "all")]["r2"].item(), 1e-5)
