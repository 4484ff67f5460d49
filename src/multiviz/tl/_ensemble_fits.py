"""Fit many sBNN / sRRR members (folds, seeds) for ``cross_validate``/``selection_stability``.

Members are trained either one after another (``ensemble=False``: each one is exactly
:func:`multiviz.tl.sbnn`'s fit) or, for the sBNN, as one stacked network
(:func:`multiviz.models.sbnn._ensemble_plan.train_ensemble`) with the same schedule,
the same seeds, the same k-means labels and hold-out splits.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._validate import InputError
from ..models.sbnn._train_args import TRAIN_ARGS
from ._paired_data import PairedArrays

SBNN_MODEL_ARGS = ("bottleneck", "n_genes", "lasso", "pretrain", "random_state")
# sBNN.train's keywords less the model's own, the gene decoder (not run in CV) and the
# progress bar (one bar for the whole call).
SBNN_TRAIN_ARGS = tuple(
    name
    for name in TRAIN_ARGS
    if name not in (*SBNN_MODEL_ARGS, "gene_decoder_epochs", "enable_progress_bar")
)
SRRR_ARGS = ("rank", "n_genes", "lam", "alpha", "relaxed")


@dataclass
class Fitted:
    """One trained member: its genes (by decreasing weight norm) and a forward function."""

    genes: list[str]
    forward: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    seconds: float
    weight_norms: np.ndarray | None = None
    history: object | None = None


def _module_forward(module) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    import torch

    @torch.inference_mode()
    def forward(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        module.eval()
        dev = module.first.weight.device
        zs, ys = [], []
        for start in range(0, X.shape[0], 4096):
            xb = torch.as_tensor(X[start : start + 4096], dtype=torch.float32, device=dev)
            z, y = module.forward_targets(module.select_input(xb))
            zs.append(z.cpu().numpy())
            ys.append(y.cpu().numpy())
        return np.concatenate(zs), np.concatenate(ys)

    return forward


def _ordered(gene_names, index: np.ndarray, norms: np.ndarray) -> list[str]:
    order = np.argsort(-norms[index], kind="stable")
    return [str(g) for g in np.asarray(gene_names)[index[order]]]


def fit_srrr_member(train: PairedArrays, params: dict) -> Fitted:
    """One sRRR fit (the paper's 25-gene budget by default)."""
    from ._srrr import fit_srrr

    kw = {"rank": 2, "n_genes": 25, "lam": None, "alpha": 1.0, "relaxed": True}
    kw.update(params)
    if kw["lam"] is not None:
        kw["n_genes"] = None
    t0 = time.process_time()
    res, _ = fit_srrr(train, **kw)
    sel = np.flatnonzero(res.selected)
    norms = np.linalg.norm(res.W, axis=1)
    return Fitted(
        genes=_ordered(train.gene_names, sel, norms),
        forward=lambda X: (res.transform(X), res.predict(X)),
        seconds=time.process_time() - t0,
        weight_norms=norms,
    )


def _split_sbnn(params: dict) -> tuple[dict, dict]:
    model = {"bottleneck": 2, "n_genes": 25, "lasso": 0.1, "pretrain": True, "random_state": 0}
    model.update({k: v for k, v in params.items() if k in SBNN_MODEL_ARGS})
    train = {k: v for k, v in params.items() if k not in SBNN_MODEL_ARGS}
    return model, train


def fit_sbnn_members(
    trains: list[PairedArrays],
    seeds: list[int],
    params: dict,
    *,
    ensemble: bool,
    progress: bool,
    on_member_done: Callable[[int, Fitted], None] | None = None,
) -> list[Fitted]:
    """Train one sBNN per ``(training set, seed)``: stacked (``ensemble``) or sequentially.

    ``on_member_done(k, fitted)`` is called as each sequential member finishes.
    """
    model_kw, train_kw = _split_sbnn(params)
    if not ensemble:
        from ._sbnn import fit_sbnn

        out = []
        for k, (tr, seed) in enumerate(zip(trains, seeds)):
            t0 = time.process_time()
            m = fit_sbnn(tr, **{**model_kw, "random_state": seed}, **train_kw)
            idx = m.module.gene_index.cpu().numpy()
            out.append(
                Fitted(
                    genes=_ordered(tr.gene_names, idx, m.weight_norms_),
                    forward=_module_forward(m.module),
                    seconds=time.process_time() - t0,
                    weight_norms=m.weight_norms_,
                    history=m.phase_history_,
                )
            )
            if on_member_done is not None:
                on_member_done(k, out[-1])
        return out
    return _fit_ensemble(trains, seeds, model_kw, train_kw, progress)


def _fit_ensemble(trains, seeds, model_kw, train_kw, progress) -> list[Fitted]:
    import torch

    from ..models.sbnn import paper_schedule
    from ..models.sbnn._ensemble_plan import EnsembleMember, train_ensemble

    for name, ok in (("accelerator", ("auto", "cpu")), ("devices", ("auto", 1))):
        if train_kw.get(name, "auto") not in ok:
            raise InputError(
                f"The batched sBNN ensemble trains on the CPU; `{name}={train_kw[name]!r}` "
                "needs `ensemble=False` (members then train one after another on the device)."
            )
    for name, default in (
        ("max_epochs", None),
        ("early_stopping", False),
        ("precision", None),
        ("strategy", None),
    ):
        if train_kw.get(name, default) not in (default, "auto"):
            raise InputError(
                f"`{name}` is not supported by the batched sBNN ensemble (the paper's fixed "
                "schedule); set the phase lengths (`pretrain_epochs`, ...) instead, or pass "
                "`ensemble=False`."
            )
    from ..models.sbnn._schedule import BATCH_SIZE, default_epochs

    sched_args = set(inspect.signature(paper_schedule).parameters)
    # phase lengths not given: the paper's, bounded in steps for the members' size
    n_cells = int(np.median([tr.X.shape[0] for tr in trains]))
    sched = default_epochs(n_cells, int(train_kw.get("batch_size", BATCH_SIZE)))
    sched.update({k: v for k, v in train_kw.items() if k in sched_args and v is not None})
    sched.update(pretrain=model_kw["pretrain"], lasso=model_kw["lasso"], gene_decoder_epochs=0)
    phases = paper_schedule(**sched)
    members, cache = [], {}
    for tr, seed in zip(trains, seeds):
        key = id(tr.X)
        if key not in cache:  # seeds on the same cells share one tensor
            cache[key] = (
                torch.from_numpy(np.ascontiguousarray(tr.X, dtype=np.float32)),
                torch.from_numpy(np.ascontiguousarray(tr.Y, dtype=np.float32)),
            )
        members.append(EnsembleMember(*cache[key], seed=int(seed)))
    extra = {
        k: train_kw[k] for k in ("batch_size", "ridge", "val_fraction", "handover") if k in train_kw
    }
    t0 = time.process_time()
    fits = train_ensemble(
        members,
        phases,
        n_latent=model_kw["bottleneck"],
        n_genes=model_kw["n_genes"],
        enable_progress_bar=progress,
        **extra,
    )
    seconds = (time.process_time() - t0) / len(fits)
    out = []
    for tr, f in zip(trains, fits):
        idx = f.module.gene_index.cpu().numpy()
        out.append(
            Fitted(
                genes=_ordered(tr.gene_names, idx, f.weight_norms_),
                forward=_module_forward(f.module),
                seconds=seconds,
                weight_norms=f.weight_norms_,
                history=f.phase_history_,
            )
        )
    return out
