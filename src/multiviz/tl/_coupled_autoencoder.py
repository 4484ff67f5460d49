"""``mv.tl.coupled_autoencoder``: coupled autoencoders on a (partially paired) MuData."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from lightning.pytorch.utilities import rank_zero_only
from mudata import MuData

from .. import _logging as logg
from .._validate import check_random_state
from ..models.coupled import CoupledAutoencoder
from ..models.coupled._data import check_modalities, modality_rows

__all__ = ["coupled_autoencoder"]


def _to_modality(full: np.ndarray, mdata: MuData, mod: str) -> np.ndarray:
    """Rows of a union-level array (``mdata.obs_names`` order) for the cells of ``mod``."""
    rows = modality_rows(mdata, mod)
    out = np.empty((mdata.mod[mod].n_obs, *full.shape[1:]), dtype=full.dtype)
    out[rows[rows >= 0]] = full[rows >= 0]
    return out


def coupled_autoencoder(
    mdata: MuData,
    *,
    modalities: Sequence[str] = ("rna", "ephys"),
    n_latent: int = 3,
    coupling: Literal["msv", "fullcov", "batchnorm", "euclidean"] = "msv",
    lam: float = 1.0,
    alpha: float | Mapping[str, float] | None = None,
    layers: Mapping[str, str | None] | None = None,
    cross_modal: bool = False,
    max_epochs: int | None = None,
    batch_size: int = 200,
    early_stopping: bool = True,
    random_state: int = 0,
    key_added: str = "cae",
    return_model: bool = False,
    copy: bool = False,
    model_kwargs: Mapping | None = None,
    train_kwargs: Mapping | None = None,
) -> MuData | None:
    """Coupled autoencoder latents for each modality (Gala et al., NeurIPS 2019).

    One autoencoder per modality; latents of cells measured in two modalities are coupled
    with the minimum-singular-value normalised distance (eq. 6) by default. Cells measured in
    only some modalities (MuData's union of obs) train their own arms and are embedded by
    them, so unpaired cells land in the shared latent space.

    Parameters
    ----------
    mdata
        MuData; standardise the inputs first, e.g. :func:`multiviz.pp.prepare_paired`.
        NaN values are masked out of the reconstruction (paper: missing ephys values).
    modalities
        Modalities to couple, the transcriptomic one first (its arm gets dropout 0.5 and
        4 × 50 units, the others Gaussian noise, dropout 0.1 and 4 × 40 units).
    n_latent
        Latent dimension (3 in the paper).
    coupling
        ``"msv"`` (eq. 6), ``"fullcov"`` (eq. 4), ``"batchnorm"`` (eq. 3), ``"euclidean"`` (eq. 2).
    lam
        Coupling constant λ (paper: 0, 0.1, 1, 10).
    alpha
        Reconstruction weight per modality; default 1 for the first, 0.1 for the others.
    layers
        ``{modality: layer}`` to read instead of ``.X``.
    cross_modal
        Add the cross-modal decoder terms of the 2021 refinement.
    max_epochs, batch_size, early_stopping
        Training schedule, see :meth:`multiviz.models.CoupledAutoencoder.train` (default
        the reference's 750k steps of batch 200, stopped early on a 10 % validation split).
    random_state
        Seed of initialisation, split and minibatches.
    key_added
        Results: ``mdata[mod].obsm[f"X_{key_added}"]`` for each modality's cells,
        ``mdata.obsm[f"X_{key_added}_{mod}"]`` for all cells (NaN rows where a cell lacks
        ``mod``), ``mdata.uns[key_added]`` with ``"params"``, ``"history"`` (per-epoch
        losses), ``"n_steps"`` and ``"decoders"`` (each arm's decoder weights as arrays,
        used by :func:`multiviz.tl.cross_modal_predict`).
    return_model
        Also keep the trained model at ``mdata.uns[key_added]["model"]`` (remove it before
        ``write_h5mu``).
    copy
        Return a modified copy instead of writing into ``mdata``.
    model_kwargs, train_kwargs
        Extra arguments of :class:`~multiviz.models.CoupledAutoencoder` and its ``train``.

    Returns
    -------
    ``None``, or the modified copy when ``copy=True``.
    """
    modalities = check_modalities(mdata, modalities)
    random_state = check_random_state(random_state)
    model = CoupledAutoencoder(
        mdata,
        modalities=modalities,
        layers=layers,
        n_latent=n_latent,
        coupling=coupling,
        lam=lam,
        alpha=alpha,
        cross_modal=cross_modal,
        random_state=random_state,
        **dict(model_kwargs or {}),
    )
    with logg.timed(
        f"training coupled autoencoder ({coupling}, λ={lam:g}) on {model.adata.n_obs} cells"
    ):
        model.train(
            max_epochs=max_epochs,
            batch_size=batch_size,
            early_stopping=early_stopping,
            **dict(train_kwargs or {}),
        )
    latents = model.get_latent_representation()
    if rank_zero_only.rank != 0:  # under DDP only global rank 0 writes
        return None
    keep = np.zeros(mdata.n_obs, dtype=bool)
    for mod in modalities:
        keep |= modality_rows(mdata, mod) >= 0
    history = {
        k: np.asarray(v.to_numpy(), dtype=np.float64).ravel() for k, v in model.history.items()
    }
    decoders = {
        mod: {
            k.replace(".", "_"): v.detach().cpu().numpy()
            for k, v in model.module.arms[i].decoder.state_dict().items()
        }
        for i, mod in enumerate(modalities)
    }
    out = mdata.copy() if copy else mdata
    for mod in modalities:
        full = np.full((mdata.n_obs, n_latent), np.nan, dtype=np.float32)
        full[keep] = latents[mod]
        out.mod[mod].obsm[f"X_{key_added}"] = _to_modality(full, mdata, mod)
        out.obsm[f"X_{key_added}_{mod}"] = full
    params = {k: v for k, v in model.init_params_["non_kwargs"].items() if v is not None}
    params["layers"] = {m: (layers or {}).get(m) or "" for m in modalities}
    params["alpha"] = np.asarray(model.module.alpha)
    for name in ("hidden", "dropout", "noise"):
        params.pop(name, None)
    params["modalities"] = list(modalities)
    params["activation"] = model.init_params_["non_kwargs"]["activation"]
    out.uns[key_added] = {
        "params": params,
        "history": history,
        "n_steps": int(model.n_steps_),
        "decoders": decoders,
    }
    if return_model:
        out.uns[key_added]["model"] = model
    logg.info(
        f"    added X_{key_added} to .obsm of {modalities}, X_{key_added}_<mod> to mdata.obsm"
    )
    return out if copy else None
