"""Fit and write steps of :func:`multiviz.tl.sivae` (arguments already checked).

``args`` is the call's arguments by name, as passed; ``checked`` what
:func:`multiviz.tl._sivae._check_arguments` made of them (``adata``: the copy with
``copy=True``; ``opts``, ``hidden``, ``sched``, ``obs_keys``, ``x``, ``constant``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from multiviz import _logging as logg
from multiviz._validate import check_fit_finite
from multiviz.train._fit_context import trainer_settings

from . import _sivae_checks as chk
from ._sivae_report import (
    _history,
    _loadings_vs_lstsq,
    _pca_r2,
    _warn_if_loadings_unfaithful,
    _warn_if_not_better_than_pca,
)

if TYPE_CHECKING:
    from multiviz.models.sivae import SIVAE


def is_global_zero() -> bool:
    """Whether this process writes (no DDP, or global rank 0)."""
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()) or (
        torch.distributed.get_rank() == 0
    )


def h5_safe(params: dict) -> dict:
    """Parameters as h5-writable values (None -> "none", tuples -> lists)."""
    out = {}
    for key, value in params.items():
        if value is None:
            out[key] = "none"
        elif isinstance(value, tuple | list):
            out[key] = list(value)
        else:
            out[key] = value
    return out


def work_adata(adata: AnnData, layer: str | None, obs_keys: Sequence[str]) -> AnnData:
    """A light AnnData over the same matrix, registered as the user's object would be.

    The modelled matrix sits where it sits in ``adata`` (``X`` or ``layers[layer]``), so
    that ``SIVAE.load(path, adata=adata)`` registers the user's own object identically.
    For a backed ``adata`` see :func:`~multiviz.tl._sivae_checks.on_disk_work_adata`.
    """
    x = adata.layers[layer] if layer is not None else adata.X
    obs = adata.obs[list(obs_keys)].copy() if obs_keys else pd.DataFrame(index=adata.obs_names)
    var = pd.DataFrame(index=adata.var_names.copy())
    if layer is None and adata.isbacked:
        return chk.on_disk_work_adata(adata, obs, var)
    if layer is None:
        return AnnData(X=x, obs=obs, var=var)
    return AnnData(obs=obs, var=var, layers={layer: x})


def registered_work_adata(args: dict[str, Any], checked: dict[str, Any]) -> AnnData:
    """The light AnnData the model trains on, registered with siVAE's covariates."""
    from multiviz.models.sivae import SIVAE

    work = work_adata(checked["adata"], args["layer"], checked["obs_keys"])
    SIVAE.setup_anndata(
        work,
        layer=args["layer"],
        batch_key=args["batch_key"],
        labels_key=args["labels_key"],
        categorical_covariate_keys=list(args["categorical_covariate_keys"] or []) or None,
        continuous_covariate_keys=list(args["continuous_covariate_keys"] or []) or None,
    )
    return work


def train_model(work: AnnData, args: dict[str, Any], checked: dict[str, Any]) -> SIVAE:
    """Build siVAE on ``work`` and run its steps."""
    from multiviz.models.sivae import SIVAE

    opts, sched = checked["opts"], checked["sched"]
    model = SIVAE(
        work,
        n_latent=opts["n_latent"],
        design=opts["design"],
        variance=args["variance"],
        n_hidden=checked["hidden"],
        likelihood=args["likelihood"],
        linear=args["linear"],
        gamma=opts["gamma"],
        interp_pretrain=opts["interp_pretrain"],
        feature_input=args["feature_input"],
        n_feature_input=opts["n_feature_input"],
        gene_batch_size=opts["gene_batch_size"],
        train_size=opts["train_size"],
        dropout_rate=opts["dropout_rate"],
        random_state=opts["random_state"],
    )
    model.train(
        max_epochs=sched["max_epochs"],
        pretrain_epochs=sched["pretrain_epochs"],
        feature_pretrain_epochs=sched["feature_pretrain_epochs"],
        batch_size=sched["batch_size"],
        joint_batch_size=sched["joint_batch_size"],
        gene_batch_size_pretrain=args["gene_batch_size_pretrain"],
        lr=sched["lr"],
        weight_decay=sched["weight_decay"],
        **trainer_settings(args),
        **args["kwargs"],
    )
    return model


def fit_outputs(model: SIVAE, args: dict[str, Any], checked: dict[str, Any]) -> dict:
    """Every result array and number, checked finite, with the PCA and least-squares checks."""
    opts, x, linear = checked["opts"], checked["x"], args["linear"]
    outputs = _outputs(model, checked["constant"], checked["sched"]["lr"], chk.output_batch_size(x))
    pca = (
        _pca_r2(
            x,
            outputs["used"],
            opts["n_latent"],
            opts["random_state"],
            split=(model.train_indices, model.validation_indices),
        )
        if args["likelihood"] == "gaussian" and not linear
        else {}
    )
    _warn_if_not_better_than_pca(outputs, pca, opts["n_latent"])
    if not linear:
        outputs["rho_lstsq"] = _loadings_vs_lstsq(
            x, outputs["scores"], outputs["loadings"], outputs["used"]
        )
        _warn_if_loadings_unfaithful(outputs)
    outputs["steps"] = {k: h5_safe(v) for k, v in model.steps_.items()}
    outputs.update(pca)
    return outputs


def params_record(model: SIVAE, args: dict[str, Any], checked: dict[str, Any]) -> dict:
    """``uns[key_added]["params"]``: the settings used, h5-writable."""
    opts, sched = checked["opts"], checked["sched"]
    return h5_safe(
        {
            "n_latent": opts["n_latent"],
            "gamma": opts["gamma"],
            "design": opts["design"],
            "variance": model.module.variance,
            "interp_pretrain": opts["interp_pretrain"],
            "layer": args["layer"],
            "likelihood": args["likelihood"],
            "linear": args["linear"],
            "batch_key": args["batch_key"],
            "labels_key": args["labels_key"],
            "n_hidden": list(checked["hidden"]),
            "feature_input": args["feature_input"],
            "n_feature_input": int(model.module.n_feature_input),
            "epochs": [int(v) for v in model.epochs_per_phase_.values()],
            "batch_size": sched["batch_size"],
            "joint_batch_size": int(model.joint_batch_size_),
            "gene_batch_size_pretrain": int(model.gene_batch_size_pretrain_),
            "lr": sched["lr"],
            "train_size": opts["train_size"],
            "random_state": opts["random_state"],
        }
    )


def _outputs(model, constant: np.ndarray, lr: float, batch_size: int | None = None) -> dict:
    """Every array written, checked finite (a diverged fit raises before any write).

    ``batch_size``: cells per inference minibatch (``None``: the model's default).
    """
    used = ~constant
    scores = model.get_latent_representation(batch_size=batch_size)
    loadings = model.get_loadings().to_numpy(copy=True)
    r2 = model.get_gene_r2(batch_size=batch_size).to_numpy()
    r2_lin = (
        model.get_gene_r2(batch_size=batch_size, linear=True).to_numpy()
        if not model.module.linear
        else r2.copy()
    )
    used &= np.isfinite(r2)  # NaN R²: constant over cells in float32 too
    loadings[~used] = 0.0
    centrality = np.where(used, r2, 0.0)
    history, per_phase = _history(model)
    out = _heldout_r2(model, used, batch_size)
    out |= {
        "scores": scores,
        "loadings": loadings,
        "centrality": centrality,
        "used": used,
        "r2_gene": float(np.mean(r2[used])),
        "r2_linear": float(np.mean(r2_lin[used])),
        "history": history,
        "history_phases": per_phase,
    }
    check_fit_finite(
        {k: v for k, v in out.items() if k != "used"},
        model="siVAE",
        phase="training",
        hint=f"Lower the learning rate `lr` (now {lr:g}) or check the input scaling",
    )
    return out


def _heldout_r2(model, used: np.ndarray, batch_size: int | None) -> dict:
    """R² of the decoder and of the linear term on the validation cells, genes pooled.

    No step trains on those cells (``train_size < 1``). Pooled (``1 - sum SSE / sum SST``
    over the used genes): on a few cells many genes are nearly constant, and their per-gene
    R² would swamp a mean. Empty without at least two validation cells.
    """
    val = getattr(model, "validation_indices", None)
    val = np.asarray([] if val is None else val, dtype=int)
    if val.size < 2:
        return {}
    r2 = model._pooled_r2(val, used, batch_size)
    r2_lin = r2 if model.module.linear else model._pooled_r2(val, used, batch_size, linear=True)
    return {"r2_gene_heldout": r2, "r2_linear_heldout": r2_lin, "n_heldout": int(val.size)}


def write_results(target: AnnData, key_added: str, out: dict, params: dict) -> None:
    """Write scores, loadings, centrality and ``uns[key_added]``; log the keys."""
    target.obsm[f"X_{key_added}"] = out["scores"]
    target.varm[f"{key_added}_loadings"] = out["loadings"]
    target.var[f"{key_added}_centrality"] = out["centrality"]
    target.var[f"{key_added}_used"] = out["used"]
    target.uns[key_added] = {
        "params": params,
        "r2_gene": out["r2_gene"],
        "r2_linear": out["r2_linear"],
        "n_genes_used": int(out["used"].sum()),
        **{k: out[k] for k in ("r2_gene_heldout", "r2_linear_heldout", "n_heldout") if k in out},
        **{k: out[k] for k in ("r2_pca", "r2_pca_heldout") if k in out},
        **({"rho_lstsq": out["rho_lstsq"]} if out.get("rho_lstsq") is not None else {}),
        "steps": out["steps"],
        "history": out["history"],
        "history_phases": out["history_phases"],
        "centrality": "per-gene reconstruction R2; higher = more central",
    }
    if "r2_gene_heldout" in out:
        logg.info(
            f"    siVAE on the {out['n_heldout']} held-out cells (R², genes pooled): decoder "
            f"{out['r2_gene_heldout']:.3f}, linear term {out['r2_linear_heldout']:.3f}; mean "
            f"per-gene R² over all cells {out['r2_gene']:.3f} / {out['r2_linear']:.3f}"
        )
    logg.info(
        f"    added obsm['X_{key_added}'], varm['{key_added}_loadings'], "
        f"var['{key_added}_centrality'], var['{key_added}_used'], uns['{key_added}']"
    )
