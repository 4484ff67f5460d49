"""``mv.tl.sivae``: scores, gene loadings and gene centrality from siVAE."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from multiviz import _logging as logg
from multiviz._validate import (
    InputError,
    check_anndata,
    check_counts,
    check_finite,
    check_option,
    check_positive_int,
    check_random_state,
    get_layer,
)

__all__ = ["sivae"]


def _is_global_zero() -> bool:
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()) or (
        torch.distributed.get_rank() == 0
    )


def _h5_safe(params: dict) -> dict:
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


def _work_adata(adata: AnnData, layer: str | None, obs_keys: Sequence[str]) -> AnnData:
    """A light AnnData over the same matrix, so setup never touches the user's object."""
    x = get_layer(adata, layer, "layer")
    obs = adata.obs[list(obs_keys)].copy() if obs_keys else pd.DataFrame(index=adata.obs_names)
    return AnnData(X=x, obs=obs, var=pd.DataFrame(index=adata.var_names.copy()))


def sivae(
    adata: AnnData,
    *,
    n_latent: int = 2,
    gamma: float = 0.05,
    layer: str | None = None,
    likelihood: Literal["gaussian", "nb"] = "gaussian",
    linear: bool = False,
    batch_key: str | None = None,
    labels_key: str | None = None,
    categorical_covariate_keys: Sequence[str] | None = None,
    continuous_covariate_keys: Sequence[str] | None = None,
    n_hidden: Sequence[int] = (1024, 512, 128),
    feature_input: Literal["pca", "downsample", "full"] = "pca",
    n_feature_input: int = 256,
    gene_batch_size: int | Literal["auto"] | None = "auto",
    max_epochs: int | None = None,
    pretrain_epochs: int | None = None,
    feature_pretrain_epochs: int | None = None,
    batch_size: int = 128,
    lr: float = 1e-3,
    train_size: float = 0.9,
    accelerator: str = "auto",
    devices: int | list[int] | str = "auto",
    random_state: int = 0,
    key_added: str = "sivae",
    return_model: bool = False,
    copy: bool = False,
    **trainer_kwargs,
):
    """Fit siVAE and store its cell scores, gene loadings and gene centrality.

    siVAE (Choi & Quon, Genome Biology 24:29, 2023) is a VAE whose gene embeddings
    (loadings) explain its cell embeddings (scores) as PCA loadings explain PCA scores.

    Parameters
    ----------
    adata
        Cells x genes. For ``likelihood="gaussian"`` the values should be centred and
        scaled per gene (paper Methods), e.g. z-scored log-normalised counts (such as
        ``mdata["rna"].X`` after ``mv.pp.prepare_paired``); for ``"nb"`` raw counts.
    n_latent
        Size of the cell and gene embeddings: 2 for pictures, 64 for network analyses
        (paper Methods).
    gamma
        Weight of the interpretability term (paper: 0.05).
    layer
        Layer to model (``None``: ``X``).
    likelihood
        ``"gaussian"`` or ``"nb"`` (siVAE (NB), raw counts).
    linear
        siVAE (linear), paper eq. 19.
    batch_key, categorical_covariate_keys, continuous_covariate_keys
        Covariates removed from the embedding (published eqs. 21-23).
    labels_key
        Cell types, used to stratify ``feature_input="downsample"``.
    n_hidden
        Encoder hidden sizes, decoders mirrored (paper: 1024-512-128).
    feature_input, n_feature_input, gene_batch_size
        Reduction of the feature-wise input and gene minibatching; see
        :class:`multiviz.models.SIVAE`.
    max_epochs, pretrain_epochs, feature_pretrain_epochs, batch_size, lr
        Training schedule; see :meth:`multiviz.models.SIVAE.train`.
    train_size
        Fraction of cells used for training (the rest validates).
    accelerator, devices
        Lightning devices; ``strategy="ddp"`` etc. go in ``trainer_kwargs``.
    random_state
        Seed.
    key_added
        Prefix of the stored results.
    return_model
        Also return the trained :class:`~multiviz.models.SIVAE`.
    copy
        Return a modified copy instead of writing into ``adata``.
    **trainer_kwargs
        Passed to the Lightning trainer.

    Returns
    -------
    ``None``, the copy (``copy=True``), the model (``return_model=True``) or
    ``(copy, model)``. Writes

    * ``obsm[f"X_{key_added}"]``: siVAE scores (posterior means of ``z_{c,1}``);
    * ``varm[f"{key_added}_loadings"]``: siVAE loadings (posterior means of ``v_{f,1}``);
    * ``var[f"{key_added}_centrality"]``: degree centrality, the per-gene reconstruction
      R² (paper: negative reconstruction error; **higher = more central**);
    * ``uns[key_added]``: ``params``, ``history`` (per-epoch losses of the three steps),
      ``linear_r2`` (mean R² of the interpretability reconstruction ``v_{f,1} · z_{c,1}``).

    Under Lightning DDP only global rank 0 writes.
    """
    from multiviz.models.sivae import SIVAE

    check_anndata(adata)
    check_positive_int(n_latent, "n_latent")
    check_option(likelihood, ["gaussian", "nb"], "likelihood")
    check_option(feature_input, ["pca", "downsample", "full"], "feature_input")
    random_state = check_random_state(random_state)
    if not isinstance(key_added, str) or not key_added:
        raise InputError(f"`key_added` must be a non-empty string, got {key_added!r}.")
    x = get_layer(adata, layer, "layer")
    if likelihood == "nb":
        check_counts(x, f"layer {layer!r}" if layer else "adata.X")
    else:
        check_finite(x, f"layer {layer!r}" if layer else "adata.X")
    obs_keys = [k for k in [batch_key, labels_key] if k is not None]
    obs_keys += list(categorical_covariate_keys or []) + list(continuous_covariate_keys or [])
    missing = [k for k in obs_keys if k not in adata.obs]
    if missing:
        raise InputError(
            f"obs columns {missing} are not in `adata.obs` (available: {list(adata.obs)})."
        )

    work = _work_adata(adata, layer, obs_keys)
    SIVAE.setup_anndata(
        work,
        batch_key=batch_key,
        labels_key=labels_key,
        categorical_covariate_keys=list(categorical_covariate_keys)
        if categorical_covariate_keys
        else None,
        continuous_covariate_keys=list(continuous_covariate_keys)
        if continuous_covariate_keys
        else None,
    )
    model = SIVAE(
        work,
        n_latent=n_latent,
        n_hidden=tuple(n_hidden),
        likelihood=likelihood,
        linear=linear,
        gamma=gamma,
        feature_input=feature_input,
        n_feature_input=n_feature_input,
        gene_batch_size=gene_batch_size,
        train_size=train_size,
        random_state=random_state,
    )
    with logg.timed(f"running siVAE (n_latent={n_latent}, gamma={gamma})"):
        model.train(
            max_epochs=max_epochs,
            pretrain_epochs=pretrain_epochs,
            feature_pretrain_epochs=feature_pretrain_epochs,
            batch_size=batch_size,
            lr=lr,
            accelerator=accelerator,
            devices=devices,
            **trainer_kwargs,
        )
    scores = model.get_latent_representation()
    loadings = model.get_loadings().to_numpy()
    centrality = model.get_gene_centrality().to_numpy()
    linear_r2 = (
        float(np.mean(model.get_gene_r2(linear=True).to_numpy())) if not linear else float("nan")
    )
    history = {
        k: np.asarray(v.to_numpy(), dtype=float).ravel() for k, v in (model.history_ or {}).items()
    }
    params = _h5_safe(
        {
            "n_latent": n_latent,
            "gamma": gamma,
            "layer": layer,
            "likelihood": likelihood,
            "linear": linear,
            "batch_key": batch_key,
            "labels_key": labels_key,
            "n_hidden": list(n_hidden),
            "feature_input": feature_input,
            "n_feature_input": int(model.module.n_feature_input),
            "epochs": [int(v) for v in model.epochs_per_phase_.values()],
            "batch_size": batch_size,
            "lr": lr,
            "train_size": train_size,
            "random_state": random_state,
        }
    )

    if not _is_global_zero():
        return model if return_model else None
    target = adata.copy() if copy else adata
    target.obsm[f"X_{key_added}"] = scores
    target.varm[f"{key_added}_loadings"] = loadings
    target.var[f"{key_added}_centrality"] = centrality
    target.uns[key_added] = {
        "params": params,
        "history": history,
        "linear_r2": linear_r2,
        "centrality": "per-gene reconstruction R2; higher = more central",
    }
    logg.info(
        f"    added obsm['X_{key_added}'], varm['{key_added}_loadings'], "
        f"var['{key_added}_centrality'], uns['{key_added}']"
    )
    if copy and return_model:
        return target, model
    if copy:
        return target
    return model if return_model else None
