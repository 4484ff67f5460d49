"""Coupled autoencoders on M1 Patch-seq under the paper's protocol (Gala et al. 2019, Fig. 3).

k-fold CV (k = 10: each model trains on 90 % of the cells). Per fold, with the same
z-scoring (training-fold statistics) and the same rare-class filter for every method:
coupled autoencoders at λ ∈ {0, 0.1, 1, 10} (fixed schedule, no early stopping: the
library default of 10k steps, latents also taken at 1k / 2.5k / 5k steps of the same run
for the length curve) and PC-CCA; at every taxonomy level in ``obs`` (M1: ``rna_family``,
``rna_type``; the file has no subclass column): within-modality QDA from z_t and z_e,
cross-modal QDA (fit on z_t, predict from z_e, and the reverse), QDA with equal priors;
GMM-AMI with separate mixtures on z_t and z_e; reconstruction R² within / across
modalities; a supervised 3-d LDA reference; steps trained.

Compute: 2 CPU cores shared by ~7 people. The jobs (fold x λ, fold-major; the λ = 0 job
also runs PC-CCA and the LDA reference) run in shards (``--shard i --n-shards n`` takes jobs
i, i+n, ...; with n = 4, shard i trains λ = LAMS[i] on every fold), each writing one JSON
and the latents per finished job to ``--work``; ``--summarise`` adds the mixtures
(``--gmm-n-init``) and writes ``benchmarks/results/coupled_ae_m1.json`` from the folds
whose four λ jobs have finished.

Usage::

    for i in 0 1 2 3; do python benchmarks/paper/coupled_ae_m1.py --shard $i --n-shards 4 & done
    python benchmarks/paper/coupled_ae_m1.py --summarise

Folds can also be run one process (or session) at a time and merged:
``--only-folds 2 3`` trains just those folds; ``--summarise`` keeps the per-fold results
of the folds already in ``benchmarks/results/coupled_ae_m1.json`` that the work folder
lacks (``--no-keep-previous`` to start afresh), so the JSON grows fold by fold
(``setup.folds_evaluated``). The model is the paper's (``--cross-modal off``, input
dropout 0.5 on the RNA arm), the library default's cross-modal terms one flag away.

Data: ../shared/data/m1_patchseq_scala2021.h5mu (override with MULTIVIZ_SHARED_DATA).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)
warnings.filterwarnings("ignore")

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
import mudata as md  # noqa: E402
from _common import DATA, RESULTS  # noqa: E402
from _coupled_m1_summary import summarise  # noqa: E402
from anndata import AnnData  # noqa: E402
from lightning.pytorch.callbacks import Callback  # noqa: E402
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis  # noqa: E402
from sklearn.linear_model import LinearRegression  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402

import multiviz as mv  # noqa: E402
from multiviz.metrics import celltype_consistency  # noqa: E402
from multiviz.models import CoupledAutoencoder  # noqa: E402
from multiviz.tl._cca import PCCCA  # noqa: E402

LAMS = [0.0, 0.1, 1.0, 10.0]
LEVELS = ["rna_family", "rna_type"]
CHECKPOINT_FRACTIONS = (0.1, 0.25, 0.5)  # of --steps: 1k, 2.5k, 5k at the default 10k


def log2norm(counts: np.ndarray) -> np.ndarray:
    """log2(counts / library size x median library size + 1), as the sBNN/Gala pipelines."""
    lib = counts.sum(axis=1, keepdims=True)
    return np.log2(counts / lib * np.median(lib) + 1.0)


def load():
    mdata = md.read_h5mu(DATA / "m1_patchseq_scala2021.h5mu")
    xt = log2norm(mdata["rna"].X.toarray().astype(np.float64))
    xe = np.asarray(mdata["ephys"].X, dtype=np.float64)
    names = mdata.obs_names.to_numpy().astype(str)
    labels = {lv: mdata.obs[lv].astype(str).to_numpy() for lv in LEVELS}
    return xt, xe, names, labels


def fold_blocks(xt, xe, train, test):
    """z-score both modalities with training-fold statistics only."""
    out = []
    for X in (xt, xe):
        mean, std = mv.pp.fit_zscore(X[train])
        out.append(
            (mv.pp.apply_zscore(X[train], mean, std), mv.pp.apply_zscore(X[test], mean, std))
        )
    return out


def make_mdata(xt, xe, names):
    rna, eph = AnnData(xt.astype(np.float32)), AnnData(xe.astype(np.float32))
    rna.obs_names = eph.obs_names = names
    return md.MuData({"rna": rna, "ephys": eph})


def scores(z_tr, z_te, lab_tr, lab_te) -> dict:
    return celltype_consistency(
        {"t": z_tr[0], "e": z_tr[1]},
        {"t": z_te[0], "e": z_te[1]},
        lab_tr,
        lab_te,
        exclude=("low quality",),
        n_init=None,
    )


class Checkpoints(Callback):
    """Latents of training and test cells at given steps (eval mode; RNG untouched)."""

    def __init__(self, model, test_stack, steps):
        self.model, self.test_stack, self.steps, self.out = model, test_stack, set(steps), {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if step in self.steps and step not in self.out:
            m = self.model
            self.out[step] = (m._encode(m.adata, 1024), m._encode(self.test_stack, 1024))


def r2(y, yhat):
    return float(mv.metrics.r2_score(y, yhat))


def run_cae(lam, blocks, names_tr, names_te, seed, steps, cross_modal="off"):
    (xt_tr, xt_te), (xe_tr, xe_te) = blocks
    mtr, mte = make_mdata(xt_tr, xe_tr, names_tr), make_mdata(xt_te, xe_te, names_te)
    model = CoupledAutoencoder(mtr, lam=lam, random_state=seed, cross_modal=cross_modal)
    cb = Checkpoints(model, model._stack_for(mte), [int(steps * q) for q in CHECKPOINT_FRACTIONS])
    t0, c0 = time.perf_counter(), time.process_time()
    model.train(max_epochs=steps // 100, enable_progress_bar=False, callbacks=[cb])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    lat = {model.n_steps_: (model._encode(model.adata, 1024), model._encode(cb.test_stack, 1024))}
    lat.update(cb.out)
    pred = {
        (s, t): model.predict(mte, source=s, target=t)
        for s in ("rna", "ephys")
        for t in ("rna", "ephys")
    }
    recon = {
        "r2_within_rna": r2(xt_te, pred["rna", "rna"]),
        "r2_within_ephys": r2(xe_te, pred["ephys", "ephys"]),
        "r2_cross_rna": r2(xt_te, pred["ephys", "rna"]),
        "r2_cross_ephys": r2(xe_te, pred["rna", "ephys"]),
    }
    info = {
        "steps": model.n_steps_,
        "wall_s": wall,
        "cpu_s": cpu,
        "ms_per_step_cpu": 1000 * cpu / model.n_steps_,
    }
    return lat, recon, info


def run_cca(blocks):
    (xt_tr, xt_te), (xe_tr, xe_te) = blocks
    cca = PCCCA(3, (20, 16)).fit(xt_tr, xe_tr)
    ztr = [cca.transform(xt_tr, 0), cca.transform(xe_tr, 1)]
    zte = [cca.transform(xt_te, 0), cca.transform(xe_te, 1)]
    dec = [LinearRegression().fit(ztr[k], X) for k, X in enumerate((xt_tr, xe_tr))]
    recon = {
        "r2_within_rna": r2(xt_te, dec[0].predict(zte[0])),
        "r2_within_ephys": r2(xe_te, dec[1].predict(zte[1])),
        "r2_cross_rna": r2(xt_te, dec[0].predict(zte[1])),
        "r2_cross_ephys": r2(xe_te, dec[1].predict(zte[0])),
    }
    return ztr, zte, recon


def lda_reference(blocks, lab_tr, lab_te):
    """Supervised 3-d LDA per modality, then the same QDA: what 3 dims can hold on M1."""
    out = {}
    for level in LEVELS:
        kept = mv.metrics._consistency.kept_classes(lab_tr[level], exclude=("low quality",))
        tr = np.isin(lab_tr[level], kept)
        z_tr, z_te = [], []
        for X_tr, X_te in blocks:
            lda = LinearDiscriminantAnalysis(n_components=3).fit(X_tr[tr], lab_tr[level][tr])
            z_tr.append(lda.transform(X_tr))
            z_te.append(lda.transform(X_te))
        s = celltype_consistency(
            {"t": z_tr[0], "e": z_tr[1]},
            {"t": z_te[0], "e": z_te[1]},
            {level: lab_tr[level]},
            {level: lab_te[level]},
            exclude=("low quality",),
            n_init=None,
        )[level]
        out[level] = {"qda_t": s["qda_t"], "qda_e": s["qda_e"]}
    return out


def run_job(f, lam, train, test, data, args):
    """One fold x one λ (the λ = 0 job also runs PC-CCA and the LDA reference)."""
    xt, xe, names, labels = data
    blocks = fold_blocks(xt, xe, train, test)
    lab_tr = {k: v[train] for k, v in labels.items()}
    lab_te = {k: v[test] for k, v in labels.items()}
    res = {"fold": f, "n_train": int(len(train)), "n_test": int(len(test)), "methods": {}}
    lat_store = {}
    if lam == LAMS[0]:
        ztr, zte, recon = run_cca(blocks)
        res["methods"]["cca"] = {"levels": scores(ztr, zte, lab_tr, lab_te), **recon, "steps": 0}
        lat_store["cca"] = (ztr, zte)
        res["lda3_reference"] = lda_reference(blocks, lab_tr, lab_te)
    lat, recon, info = run_cae(
        lam, blocks, names[train], names[test], args.seed + f, args.steps, args.cross_modal
    )
    info["cross_modal"] = args.cross_modal
    curve = {str(s): scores(*lat[s], lab_tr, lab_te) for s in sorted(lat)}
    final = max(lat)
    res["methods"][f"{lam:g}"] = {"levels": curve[str(final)], "curve": curve, **recon, **info}
    lat_store[f"{lam:g}"] = lat[final]
    print(
        f"fold {f} lam {lam:g}: {json.dumps(res['methods'][f'{lam:g}']['levels'])} {info}",
        flush=True,
    )
    res["loadavg_end"] = os.getloadavg()
    np.savez_compressed(
        args.work / f"latents_fold{f}_lam{lam:g}.npz",
        **{
            f"{m}_{s}_{k}": z[i][k]
            for m, z in lat_store.items()
            for i, s in enumerate(("train", "test"))
            for k in (0, 1)
        },
        train=train,
        test=test,
    )
    (args.work / f"fold{f}_lam{lam:g}.json").write_text(json.dumps(res, indent=1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--first-fold", type=int, default=0, help="skip the folds before this one")
    ap.add_argument("--shard", type=int, default=0)
    ap.add_argument("--n-shards", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/coupled_bench"))
    ap.add_argument("--summarise", action="store_true")
    ap.add_argument("--work-short", type=Path, default=None, help="shorter runs on more folds")
    ap.add_argument("--gmm-n-init", type=int, default=100)
    ap.add_argument("--gmm-n-init-leaf", type=int, default=None)
    ap.add_argument("--only-folds", type=int, nargs="+", default=None, help="run just these")
    ap.add_argument("--cross-modal", default="off", choices=("off", "decoder", "full"))
    ap.add_argument("--no-keep-previous", dest="keep_previous", action="store_false")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = load()
    if args.summarise:
        summarise(args, data, LEVELS, LAMS, RESULTS / "coupled_ae_m1.json")
        return
    folds = list(KFold(args.folds, shuffle=True, random_state=args.seed).split(data[0]))
    fold_ids = args.only_folds or range(args.first_fold, args.folds)
    jobs = [(f, lam) for f in fold_ids for lam in LAMS]  # fold-major
    for f, lam in jobs[args.shard :: args.n_shards]:
        if (args.work / f"fold{f}_lam{lam:g}.json").exists():
            continue
        t0 = time.perf_counter()
        run_job(f, lam, *folds[f], data, args)
        print(
            f"fold {f} lam {lam:g} done in {time.perf_counter() - t0:.0f} s, load {os.getloadavg()}",
            flush=True,
        )


if __name__ == "__main__":
    main()
