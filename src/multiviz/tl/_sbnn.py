"""``mv.tl.sbnn``: fit a sparse bottleneck neural network and write its results."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import torch

from .. import _logging as logg
from .._mudata import quiet_update
from .._validate import check_min_obs, check_option, check_random_state
from ..metrics._r2 import r2_per_feature, r2_score
from ._paired_data import PairedArrays, check_n_genes, full_arrays


def _internal_mudata(X: np.ndarray, Y: np.ndarray, genes, features) -> md.MuData:
    rna = ad.AnnData(
        np.asarray(X, dtype=np.float32), var=pd.DataFrame(index=pd.Index(genes, dtype=str))
    )
    tgt = ad.AnnData(
        np.asarray(Y, dtype=np.float32), var=pd.DataFrame(index=pd.Index(features, dtype=str))
    )
    tgt.obs_names = rna.obs_names
    with quiet_update():
        return md.MuData({"rna": rna, "y": tgt})


def fit_sbnn(
    data: PairedArrays,
    *,
    bottleneck: int = 2,
    n_genes: int = 25,
    lasso: float = 0.1,
    pretrain: bool = True,
    random_state: int = 0,
    enable_progress_bar: bool = False,
    **train_kwargs,
):
    """Train an :class:`~multiviz.models.SBNN` on arrays (no user object is touched)."""
    from ..models.sbnn import SBNN

    inner = _internal_mudata(data.X, data.Y, data.gene_names, data.feature_names)
    SBNN.setup_mudata(inner, x="rna", y="y")
    model = SBNN(inner, n_latent=bottleneck, random_state=random_state)
    model.train(
        n_genes=n_genes,
        lasso=lasso,
        pretrain=pretrain,
        enable_progress_bar=enable_progress_bar,
        **train_kwargs,
    )
    return model


@torch.inference_mode()
def sbnn_forward(model, X: np.ndarray, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Latent and target predictions of a trained SBNN for a full-gene array ``X``."""
    module = model.module
    module.eval()
    dev = module.first.weight.device
    zs, ys = [], []
    for start in range(0, X.shape[0], batch_size):
        xb = torch.as_tensor(X[start : start + batch_size], dtype=torch.float32, device=dev)
        z, y = module.forward_targets(module.select_input(xb))
        zs.append(z.cpu().numpy())
        ys.append(y.cpu().numpy())
    return np.concatenate(zs), np.concatenate(ys)


def sbnn(
    mdata: md.MuData,
    *,
    x: str = "rna",
    y: str | None = None,
    bottleneck: int = 2,
    n_genes: int = 25,
    lasso: float = 0.1,
    pretrain: bool = True,
    genes=None,
    gene_decoder_epochs: int = 100,
    random_state: int = 0,
    key_added: str = "sbnn",
    accelerator: str = "auto",
    devices: int | str = "auto",
    enable_progress_bar: bool = False,
    return_model: bool = False,
    copy: bool = False,
    **train_kwargs,
):
    """Sparse bottleneck neural network (Bernaerts, Berens & Kobak; sBNN paper).

    Predicts the target modality ``y`` from the genes of ``x`` through a ``bottleneck``
    -dimensional linear bottleneck, selecting ``n_genes`` genes with a group lasso on
    the first layer, with the paper's full training schedule (see
    :meth:`multiviz.models.SBNN.train`). Inputs are the modalities' ``.X`` (z-scored
    after :func:`multiviz.pp.prepare_paired`).

    Parameters
    ----------
    mdata
        Paired MuData.
    x, y
        Gene modality and target modality (default ``"ephys"``, else ``"protein"``).
    bottleneck
        Bottleneck width; 2 (sBNN-2) or 64 (sBNN-64) in the paper.
    n_genes
        Genes kept after pruning (25 in the paper).
    lasso
        Group-lasso strength (0.1, the paper's model).
    pretrain
        k-means classification pre-training + freezing (paper's default model).
    genes
        Restrict the input genes: a boolean ``var`` column, boolean mask or list of
        names (e.g. ion-channel genes, GO:0005216, as in the paper's Fig. S5).
    gene_decoder_epochs
        Epochs of the bottleneck → selected-genes decoder used for gene overlays
        (the paper's "autoencoder" head; its length is not given in the paper); 0 skips it.
    random_state
        Seed (weights, k-means, hold-out split, shuffling).
    key_added
        Prefix of every key written.
    accelerator, devices, enable_progress_bar
        Passed to :meth:`~multiviz.models.SBNN.train`.
    return_model
        Also return the trained :class:`~multiviz.models.SBNN`.
    copy
        Work on and return a copy.
    **train_kwargs
        Further schedule arguments of :meth:`~multiviz.models.SBNN.train`.

    Returns
    -------
    ``None`` (or the copy / model). Writes

    - ``mdata.obsm[f"X_{key_added}"]`` and ``mdata[x].obsm[f"X_{key_added}"]``: bottleneck;
    - ``mdata[x].var[f"{key_added}_selected"]`` and ``[f"{key_added}_weight_norm"]``
      (first-layer row norms just before pruning; NaN for genes outside ``genes``);
    - ``mdata[y].layers[f"{key_added}_pred"]``: predicted targets (z-scores);
    - ``mdata[x].obsm[f"{key_added}_genes_pred"]``: DataFrame of the decoder's
      reconstruction of the selected genes (if ``gene_decoder_epochs`` > 0);
    - ``mdata.uns[key_added]``: ``params``, ``history`` (per-epoch, per-phase),
      ``selected_genes`` (by decreasing weight norm), ``r2_train`` and
      ``r2_train_per_feature`` (paper eq. 3/4).
    """
    random_state = check_random_state(random_state)
    check_option(pretrain, (True, False), "pretrain")
    data = full_arrays(mdata, x=x, y=y, genes=genes)
    check_n_genes(n_genes, data.X.shape[1])
    check_min_obs(data.X.shape[0], 40 if pretrain else 2, "mdata", "cells")
    with logg.timed(f"running sBNN-{bottleneck} ({n_genes} genes)"):
        model = fit_sbnn(
            data,
            bottleneck=bottleneck,
            n_genes=n_genes,
            lasso=lasso,
            pretrain=pretrain,
            random_state=random_state,
            gene_decoder_epochs=gene_decoder_epochs,
            accelerator=accelerator,
            devices=devices,
            enable_progress_bar=enable_progress_bar,
            **train_kwargs,
        )
        latent, pred = sbnn_forward(model, data.X)
        genes_pred = model.predict(genes=True) if gene_decoder_epochs else None

    # ---- everything computed; now write
    if copy:
        mdata = mdata.copy()
    rna, target = mdata.mod[data.x], mdata.mod[data.y]
    selected_local = model.module.gene_index.cpu().numpy()
    norms_local = model.weight_norms_
    norms = np.full(rna.n_vars, np.nan)
    norms[np.flatnonzero(data.gene_mask)] = norms_local
    selected = np.zeros(rna.n_vars, dtype=bool)
    selected[np.flatnonzero(data.gene_mask)[selected_local]] = True
    order = np.argsort(-norms_local[selected_local], kind="stable")
    sel_names = [str(g) for g in np.asarray(data.gene_names)[selected_local][order]]
    mdata.obsm[f"X_{key_added}"] = latent
    rna.obsm[f"X_{key_added}"] = latent
    rna.var[f"{key_added}_selected"] = selected
    rna.var[f"{key_added}_weight_norm"] = norms
    target.layers[f"{key_added}_pred"] = pred.astype(np.float32)
    if genes_pred is not None:
        genes_pred.index = rna.obs_names
        rna.obsm[f"{key_added}_genes_pred"] = genes_pred
    history = model.phase_history_.copy()
    mdata.uns[key_added] = {
        "params": {
            "x": data.x,
            "y": data.y,
            "bottleneck": int(bottleneck),
            "n_genes": int(n_genes),
            "lasso": float(lasso),
            "pretrain": bool(pretrain),
            "genes": "all" if genes is None else (genes if isinstance(genes, str) else "custom"),
            "n_input_genes": int(data.X.shape[1]),
            "gene_decoder_epochs": int(gene_decoder_epochs),
            "random_state": random_state,
            **{k: v for k, v in train_kwargs.items() if isinstance(v, int | float | str | bool)},
        },
        "history": history,
        "selected_genes": np.asarray(sel_names, dtype=object),
        "r2_train": r2_score(data.Y, pred),
        "r2_train_per_feature": pd.Series(
            r2_per_feature(data.Y, pred), index=[str(f) for f in data.feature_names]
        ).to_dict(),
    }
    logg.info(
        "    sBNN-%d: train R² %.3f, selected %s",
        bottleneck,
        mdata.uns[key_added]["r2_train"],
        ", ".join(sel_names[:10]),
    )
    if copy:
        return (mdata, model) if return_model else mdata
    return model if return_model else None
