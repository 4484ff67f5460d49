"""Fit and write steps of :func:`multiviz.tl.coupled_autoencoder` (arguments already checked)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from mudata import MuData

from .. import _logging as logg
from .._mudata import quiet_update
from .._validate import check_fit_finite
from ..train._fit_context import trainer_settings
from ._coupled_checks import reconstruction_r2, warn_if_reconstruction_fails
from ._coupled_heldout import (
    cross_modal_heldout,
    warn_for_features_below_mean,
    warn_if_cross_modal_fails,
)
from ._coupled_heldout import describe as describe_heldout

if TYPE_CHECKING:
    from ..models import CoupledAutoencoder


def train_model(mdata: MuData, args: dict[str, Any]) -> CoupledAutoencoder:
    """Build the model from the checked ``args`` and train it."""
    from ..models import CoupledAutoencoder

    model = CoupledAutoencoder(
        mdata,
        modalities=args["modalities"],
        layers=args["layers"],
        n_latent=args["n_latent"],
        coupling=args["coupling"],
        lam=args["lam"],
        alpha=args["alpha"],
        cross_modal=args["cross_modal"],
        random_state=args["random_state"],
        **args["model_kwargs"],
    )
    model.train(
        max_epochs=args["max_epochs"],
        batch_size=args["batch_size"],
        **trainer_settings(args),
        **args["train_kwargs"],
    )
    return model


def fitted_arrays(model: CoupledAutoencoder, modalities: list[str]) -> dict[str, Any]:
    """Latents, per-epoch history and decoder weights, checked finite (before any write)."""
    latents = model.get_latent_representation()
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
    present = {m: ~np.isnan(z).any(axis=1) for m, z in latents.items()}
    check_fit_finite(
        {"latents": [z[present[m]] for m, z in latents.items()], "decoders": decoders},
        model="coupled autoencoder",
        phase="training",
        hint="Lower the learning rate (`train_kwargs={'lr': ...}`)",
    )
    return {"latents": latents, "history": history, "decoders": decoders}


def fit_quality(
    model: CoupledAutoencoder, mdata: MuData, args: dict[str, Any]
) -> tuple[np.ndarray, dict]:
    """Warn on a failed reconstruction; cells in any modality and the held-out numbers."""
    from ..models.coupled._data import modality_rows

    modalities, layers = args["modalities"], args["layers"]
    with quiet_update():  # mudata 0.3's FutureWarning on every internal subset
        recon = reconstruction_r2(model, mdata, modalities, layers, args["random_state"])
    warn_if_reconstruction_fails(recon, int(model.n_steps_), mdata.n_obs)
    keep = np.zeros(mdata.n_obs, dtype=bool)
    for mod in modalities:
        keep |= modality_rows(mdata, mod) >= 0
    with quiet_update():
        heldout = cross_modal_heldout(
            model,
            mdata,
            modalities,
            layers,
            np.flatnonzero(keep),
            args["train_kwargs"]["train_size"],
            args["random_state"],
        )
    warn_if_cross_modal_fails(heldout)
    warn_for_features_below_mean(heldout)
    return keep, heldout


def _to_modality(full: np.ndarray, mdata: MuData, mod: str) -> np.ndarray:
    """Rows of a union-level array (``mdata.obs_names`` order) for the cells of ``mod``."""
    from ..models.coupled._data import modality_rows

    rows = modality_rows(mdata, mod)
    out = np.empty((mdata.mod[mod].n_obs, *full.shape[1:]), dtype=full.dtype)
    out[rows[rows >= 0]] = full[rows >= 0]
    return out


def write_results(
    out: MuData,
    mdata: MuData,
    model: CoupledAutoencoder,
    args: dict[str, Any],
    arrays: dict[str, Any],
    keep: np.ndarray,
    heldout: dict,
) -> None:
    """Write the latents (per modality and union-level) and ``uns[key_added]``; log them."""
    modalities, layers, key_added = args["modalities"], args["layers"], args["key_added"]
    for mod in modalities:
        full = np.full((mdata.n_obs, model.module.n_latent), np.nan, dtype=np.float32)
        full[keep] = arrays["latents"][mod]
        out.mod[mod].obsm[f"X_{key_added}"] = _to_modality(full, mdata, mod)
        out.obsm[f"X_{key_added}_{mod}"] = full
    params = {
        k: v
        for k, v in model.init_params_["non_kwargs"].items()
        if v is not None and k not in ("hidden", "dropout", "noise", "layers", "alpha")
    }
    params["layers"] = {m: layers.get(m) or "" for m in modalities}
    params["alpha"] = np.asarray(model.module.alpha)
    params["modalities"] = list(modalities)
    params["activation"] = model.init_params_["non_kwargs"]["activation"]
    out.uns[key_added] = {
        "params": params,
        "history": arrays["history"],
        "n_steps": int(model.n_steps_),
        "decoders": arrays["decoders"],
        **heldout,
    }
    if heldout:
        logg.info("    " + describe_heldout(heldout))
    logg.info(
        f"    added X_{key_added} to .obsm of {modalities}, X_{key_added}_<mod> to mdata.obsm"
    )
