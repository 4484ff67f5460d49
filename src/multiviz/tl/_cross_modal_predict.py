"""``mv.tl.cross_modal_predict``: decode one modality from another modality's latent."""

from __future__ import annotations

import numpy as np
import torch
from mudata import MuData

from .. import _logging as logg
from .._docs import COPY_MDATA, RETURNS_COPY, doc_params
from .._validate import (
    InputError,
    check_bool,
    check_fit_finite,
    check_int,
    check_mudata,
    check_str,
    check_writable,
    get_modality,
)
from ..models.coupled._data import modality_rows
from ..models.coupled._module import make_mlp
from ._coupled_heldout import warn_for_features_below_mean
from ._intervals import bounds

__all__ = ["cross_modal_predict"]


def _decoder_from_arrays(weights: dict, activation: str) -> torch.nn.Sequential:
    """Rebuild a decoder MLP from the arrays stored by :func:`coupled_autoencoder`."""
    idx = sorted({int(k.split("_")[0]) for k in weights})
    sizes = [int(np.asarray(weights[f"{idx[0]}_weight"]).shape[1])]
    sizes += [int(np.asarray(weights[f"{i}_weight"]).shape[0]) for i in idx]
    net = make_mlp(sizes, activation)
    state = {k.replace("_", ".", 1): torch.as_tensor(np.asarray(v)) for k, v in weights.items()}
    net.load_state_dict(state)
    return net.eval()


def _stored_run(
    mdata: MuData, key: str, source: str, target: str
) -> tuple[dict, np.ndarray, torch.nn.Sequential]:
    """The stored run ``uns[key]``, the ``source`` latent and the ``target`` decoder, checked."""
    info = mdata.uns.get(key)
    if not isinstance(info, dict) or "decoders" not in info or "params" not in info:
        raise InputError(
            f"`mdata.uns[{key!r}]` holds no coupled-autoencoder result; run "
            f"`mv.tl.coupled_autoencoder(mdata, key_added={key!r})` first."
        )
    mods = [str(m) for m in np.asarray(info["params"]["modalities"]).tolist()]
    for name, mod in (("source", source), ("target", target)):
        if mod not in mods:
            raise InputError(f"`{name}={mod!r}` is not one of the coupled modalities {mods}.")
    get_modality(mdata, target, "target")
    zkey = f"X_{key}_{source}"
    if zkey not in mdata.obsm:
        raise InputError(f"`mdata.obsm[{zkey!r}]` is missing; rerun `mv.tl.coupled_autoencoder`.")
    z = np.asarray(mdata.obsm[zkey], dtype=np.float32)
    activation = str(info["params"].get("activation", "relu"))
    decoder = _decoder_from_arrays(info["decoders"][target], activation)
    n_vars = mdata.mod[target].n_vars
    if decoder[-1].out_features != n_vars:
        raise InputError(
            f"The stored decoder predicts {decoder[-1].out_features} features but "
            f"`mdata[{target!r}]` has {n_vars}; rerun `mv.tl.coupled_autoencoder`."
        )
    return info, z, decoder


def _decode(
    decoder: torch.nn.Sequential, z: np.ndarray, has: np.ndarray, full: np.ndarray, batch_size: int
) -> None:
    """Decode the latents of the cells ``has`` into their rows of ``full``, in chunks."""
    zz = z[has]
    parts = []
    with torch.inference_mode():
        for start in range(0, zz.shape[0], batch_size):
            parts.append(decoder(torch.as_tensor(zz[start : start + batch_size])).numpy())
    if parts:
        full[has] = np.concatenate(parts)


@doc_params(copy_mdata=COPY_MDATA, returns_copy=RETURNS_COPY)
def cross_modal_predict(
    mdata: MuData,
    *,
    source: str = "ephys",
    target: str = "rna",
    key: str = "cae",
    key_added: str | None = None,
    batch_size: int = 4096,
    copy: bool = False,
) -> MuData | None:
    """Predict ``target`` from the ``source`` latent with the target arm's decoder.

    Gala et al. (NeurIPS 2019, Fig. 4): with coupled latents, the transcriptome of a cell can
    be estimated from its electrophysiology (``source="ephys", target="rna"``) and vice
    versa. Reads ``mdata.obsm[f"X_{key}_{source}"]`` and the decoder weights in
    ``mdata.uns[key]["decoders"]`` written by :func:`multiviz.tl.coupled_autoencoder`.

    Predictions are in the model's input space (e.g. z-scored log-expression after
    :func:`multiviz.pp.prepare_paired`).

    Parameters
    ----------
    mdata
        MuData on which :func:`~multiviz.tl.coupled_autoencoder` was run.
    source, target
        Modality whose latent is decoded, and modality predicted (equal: within-modality
        reconstruction).
    key
        ``key_added`` of the coupled autoencoder run.
    key_added
        Name of the result, default ``f"{key}_from_{source}"``. Written to
        ``mdata[target].layers[key_added]`` for the cells of ``target`` (NaN rows for target
        cells without ``source``); if some cells with ``source`` are absent from ``target``,
        additionally to ``mdata.obsm[f"{key_added}_{target}"]`` (all cells of ``mdata``, NaN
        rows where the cell lacks ``source``) so their predictions are kept too. When the
        fit calibrated a prediction interval for this direction on its held-out cells
        (``mdata.uns[key]["prediction_interval"]``, 90 %, split conformal), its bounds go
        to ``f"{key_added}_lower"`` and ``f"{key_added}_upper"`` beside the prediction, and
        each feature's held-out R² to ``mdata[target].var[f"{key_added}_r2_heldout"]``
        (not written when some feature is constant over the held-out cells); features predicted worse
        than their mean there are named in a :class:`~multiviz.FitQualityWarning`.
    batch_size
        Cells decoded at once.
    {copy_mdata}

    {returns_copy}

    Examples
    --------
    >>> mv.tl.coupled_autoencoder(mdata, lam=1.0)
    >>> mv.tl.cross_modal_predict(mdata, source="ephys", target="rna")
    >>> mdata["rna"].layers["cae_from_ephys"]
    """
    check_mudata(mdata)
    if not copy:
        check_writable(mdata, "mdata")
    key = check_str(key, "key")
    key_added = check_str(key_added, "key_added", optional=True)
    batch_size = check_int(batch_size, "batch_size")
    copy = check_bool(copy, "copy")
    info, z, decoder = _stored_run(mdata, key, source, target)
    n_vars = mdata.mod[target].n_vars
    has = ~np.isnan(z).any(axis=1)
    full = np.full((mdata.n_obs, n_vars), np.nan, dtype=np.float32)
    with logg.timed(f"predicting {target!r} from the {source!r} latent of {int(has.sum())} cells"):
        _decode(decoder, z, has, full, batch_size)
        check_fit_finite(
            full[has],
            model="coupled autoencoder decoder",
            phase="prediction",
            hint=f"Rerun `mv.tl.coupled_autoencoder(mdata, key_added={key!r})`",
        )
    key_added = key_added or f"{key}_from_{source}"
    rows = modality_rows(mdata, target)
    in_target = rows >= 0
    layer = np.empty((mdata.mod[target].n_obs, n_vars), dtype=np.float32)
    layer[rows[in_target]] = full[in_target]
    results = {key_added: (layer, full)}
    widths = info.get("prediction_interval", {}).get("halfwidth", {}).get(f"{source}->{target}")
    names = [str(v) for v in mdata.mod[target].var_names]
    if widths is not None and set(names) <= set(widths):
        record = {"halfwidth": widths}
        for end, (lay, ful) in zip(
            ("lower", "upper"), zip(bounds(layer, record, names), bounds(full, record, names))
        ):
            results[f"{key_added}_{end}"] = (lay, ful)
    direction = f"{source}->{target}"
    r2_features = info.get("r2_heldout_cross_modal_per_feature", {}).get(direction)
    warn_for_features_below_mean(info, directions=(direction,))
    out = mdata.copy() if copy else mdata
    if r2_features is not None and set(names) <= set(r2_features):
        out.mod[target].var[f"{key_added}_r2_heldout"] = np.array(
            [r2_features[f] for f in names], dtype=np.float64
        )
    for name, (lay, ful) in results.items():
        out.mod[target].layers[name] = lay
        if (has & ~in_target).any():
            out.obsm[f"{name}_{target}"] = ful
    return out if copy else None
