"""``mv.tl.coupled_autoencoder``: coupled autoencoders on a (partially paired) MuData."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from mudata import MuData
from scipy import sparse

from .. import _logging as logg
from .._mudata import quiet_update
from .._validate import (
    InputError,
    check_bool,
    check_fit_finite,
    check_float,
    check_int,
    check_kwargs,
    check_mudata,
    check_random_state,
    check_str,
    check_unique_names,
    check_writable,
    get_layer,
)
from ._coupled_heldout import (
    TRAIN_SIZE,
    cross_modal_heldout,
    warn_for_features_below_mean,
    warn_if_cross_modal_fails,
)
from ._coupled_heldout import describe as describe_heldout

if TYPE_CHECKING:
    from ..models import CoupledAutoencoder

__all__ = ["check_standardised", "coupled_autoencoder"]

#: ``train()`` keywords the function forwards (the shared vocabulary plus the schedule).
_TRAIN_KWARGS = (
    "steps_per_epoch",
    "lr",
    "train_size",
    "early_stopping_patience",
    "plan_kwargs",
    "callbacks",
    "gradient_clip_val",
    "deterministic",
)
_MODEL_KWARGS = (
    "hidden",
    "dropout",
    "noise",
    "activation",
    "msv_floor",
    "msv_method",
    "latent_norm",
)


def check_standardised(mdata: MuData, modalities: Sequence[str], layers: Mapping) -> None:
    """Refuse raw input: integer counts, or features far from a standardised scale.

    The paper (and :func:`multiviz.pp.prepare_paired`) log-normalises the counts and
    z-scores both modalities; on raw counts or raw ephys values the reconstruction weights
    α and the coupling's scale have no meaning.
    """
    for mod in modalities:
        X = get_layer(mdata.mod[mod], layers.get(mod), f"layers[{mod!r}]")
        vals = X.data if sparse.issparse(X) else np.asarray(X)
        vals = vals[np.isfinite(vals)] if vals.dtype.kind == "f" else vals
        if vals.size == 0:
            continue
        hint = (
            "Preprocess first, e.g. `mv.pp.prepare_paired(mdata, x='rna', y='ephys')` "
            "(log-normalise the counts, z-score both modalities)."
        )
        if vals.min() >= 0 and vals.max() > 20 and np.all(vals == np.round(vals)):
            raise InputError(
                f"`mdata[{mod!r}]` holds raw counts (non-negative integers up to "
                f"{vals.max():.0f}). {hint}"
            )
        with np.errstate(all="ignore"):
            if sparse.issparse(X):  # column moments without densifying the cells
                mean = np.asarray(X.mean(axis=0), dtype=np.float64).ravel()
                sq = np.asarray(X.multiply(X).mean(axis=0), dtype=np.float64).ravel()
                sd = np.sqrt(np.maximum(sq - mean**2, 0.0))
            else:
                dense = np.asarray(X, dtype=np.float64)
                mean, sd = np.nanmean(dense, axis=0), np.nanstd(dense, axis=0)
            scale = np.nanmax(np.abs(mean) + sd)
        if scale > 100:
            raise InputError(
                f"`mdata[{mod!r}]` is not standardised (a feature's |mean| + SD is "
                f"{scale:.3g}). {hint}"
            )


def _to_modality(full: np.ndarray, mdata: MuData, mod: str) -> np.ndarray:
    """Rows of a union-level array (``mdata.obs_names`` order) for the cells of ``mod``."""
    from ..models.coupled._data import modality_rows

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
    cross_modal: Literal["full", "decoder", "off"] | bool = "full",
    max_epochs: int | None = None,
    batch_size: int = 200,
    accelerator: str = "auto",
    devices: int | str = "auto",
    enable_progress_bar: bool | None = None,
    early_stopping: bool = False,
    precision: str | int | None = None,
    strategy: str | None = None,
    random_state: int = 0,
    key_added: str = "cae",
    return_model: bool = False,
    copy: bool = False,
    model_kwargs: Mapping[str, Any] | None = None,
    train_kwargs: Mapping[str, Any] | None = None,
) -> MuData | CoupledAutoencoder | tuple[MuData, CoupledAutoencoder] | None:
    """Coupled autoencoder latents for each modality (Gala et al., NeurIPS 2019).

    One autoencoder per modality; latents of cells measured in two modalities are coupled
    with the minimum-singular-value normalised distance (eq. 6) by default. Cells measured in
    only some modalities (MuData's union of obs) train their own arms and are embedded by
    them, so unpaired cells land in the shared latent space. By default the decoders also
    learn to reconstruct each modality from the other's latent (``cross_modal="full"``), so
    cells measured in one modality get cross-modal predictions
    (:func:`multiviz.tl.cross_modal_predict`). The default schedule (at most 10k steps or
    1,000 passes over the training cells: 5,460 steps for 90 % of M1's 1,213 cells) takes
    about a minute of CPU time on one thread.

    Parameters
    ----------
    mdata
        MuData, preprocessed: log-normalised and z-scored, e.g. by
        :func:`multiviz.pp.prepare_paired` (raw counts or unscaled features are refused).
        NaN values are masked out of the reconstruction (paper: missing ephys values).
    modalities
        Modalities to couple, the transcriptomic one first (its arm gets 4 × 50 units and
        input dropout 0.8, or the paper's 0.5 without the full cross-modal terms; the
        others Gaussian noise, dropout 0.1 and 4 × 40 units).
    n_latent
        Latent dimension (3 in the paper); at most the number of features of the smallest
        modality, and the network must fit in the available memory.
    coupling
        ``"msv"`` (eq. 6), ``"fullcov"`` (eq. 4), ``"batchnorm"`` (eq. 3), ``"euclidean"`` (eq. 2).
    lam
        Coupling constant λ (paper: 0, 0.1, 1, 10).
    alpha
        Reconstruction weight per modality; default 1 for the first, 0.1 for the others.
    layers
        ``{modality: layer}`` to read instead of ``.X``.
    cross_modal
        Cross-modal reconstruction terms for paired cells (2021 refinement). ``"full"``
        (default): each arm's decoder also reconstructs its modality from the other arm's
        latent, gradient through the encoders, with input dropout 0.8 on the
        transcriptomic arm; the cross-modal predictions then beat a regression on a CCA
        latent of the same size on M1 and the PBMC CITE-seq data, where the paper's loss
        loses (``benchmarks/results/coupled_prediction.json``). ``"decoder"``: the same
        terms with the latent gradient stopped; ``"off"``: the 2019 paper's model
        (transcriptomic dropout 0.5).
    max_epochs, batch_size, accelerator, devices, enable_progress_bar, early_stopping, precision, strategy
        The shared training vocabulary, see :meth:`multiviz.models.CoupledAutoencoder.train`:
        default a fixed 10k steps of batch 200 but at most 1,000 passes over the training
        cells (more overfit small datasets; epochs of 100 steps; the reference's 750k
        steps is ``max_epochs=7500``), no early stopping.
    random_state
        Seed of initialisation, minibatches, dropout and noise (no global seed is set), in
        ``[0, 2**32 - 1]``.
    key_added
        Results: ``mdata[mod].obsm[f"X_{key_added}"]`` for each modality's cells,
        ``mdata.obsm[f"X_{key_added}_{mod}"]`` for all cells (NaN rows where a cell lacks
        ``mod``), ``mdata.uns[key_added]`` with ``"params"``, ``"history"`` (per-epoch
        losses), ``"n_steps"`` and ``"decoders"`` (each arm's decoder weights as arrays,
        used by :func:`multiviz.tl.cross_modal_predict`).
    return_model
        Also return the trained :class:`~multiviz.models.CoupledAutoencoder` (nothing
        unserialisable is put into ``uns``). Use it for new cells:
        ``model.get_latent_representation(new_mdata)`` (features matched by name),
        ``model.predict(new_mdata, source="ephys", target="rna")``, ``model.save(dir)``.
    copy
        Return a modified copy instead of writing into ``mdata``.
    model_kwargs
        Extra arguments of :class:`~multiviz.models.CoupledAutoencoder` (``hidden``,
        ``dropout``, ``noise``, ``activation``, ``msv_floor``, ``msv_method``, ``latent_norm``).
    train_kwargs
        Extra arguments of its ``train`` (``lr``, ``steps_per_epoch``, ``train_size``, ...).
        ``train_size`` defaults to 0.9 here (the model class: 1.0): the other 10 % of the
        cells are held out, each modality of them is predicted from each other one, and
        ``mdata.uns[key_added]`` gets ``r2_heldout_cross_modal`` (``{"rna->ephys": R²}``,
        with the training cells' mean as the baseline), ``r2_heldout_cross_modal_linear``
        (ridge regression from all source features on the same training cells),
        ``n_heldout_cross_modal``, ``heldout_cells``, ``r2_heldout_cross_modal_per_feature``
        and ``prediction_interval`` (90 % split-conformal half-widths per direction and
        feature); a :class:`~multiviz.FitQualityWarning` says when a direction does not
        beat the mean predictor or the linear baseline, and names the features a direction
        predicts worse than their mean. ``train_kwargs={"train_size": 1.0}`` trains on
        every cell, as the paper (no held-out numbers).

    Returns
    -------
    ``None``; the modified copy when ``copy=True``; the model when ``return_model=True``;
    ``(copy, model)`` when both.

    Raises
    ------
    multiviz.InputError
        Bad arguments or unprocessed input, before any work.
    multiviz.FitError
        The fit diverged; ``mdata`` is left untouched.

    Examples
    --------
    >>> mv.pp.prepare_paired(mdata, x="rna", y="ephys")
    >>> model = mv.tl.coupled_autoencoder(mdata, lam=1.0, return_model=True)
    >>> z_new = model.get_latent_representation(new_mdata)
    """
    from ..models import CoupledAutoencoder
    from ..models.coupled._data import check_modalities, modality_rows
    from ..models.coupled._model import check_arm_sizes, check_cross_modal
    from ..train import fit_context, resolve_progress_bar

    check_mudata(mdata)
    if not copy:
        check_writable(mdata, "mdata")
    modalities = check_modalities(mdata, modalities)
    check_unique_names(mdata, "mdata")
    random_state = check_random_state(random_state)
    key_added = check_str(key_added, "key_added")
    return_model = check_bool(return_model, "return_model")
    copy = check_bool(copy, "copy")
    model_kwargs, train_kwargs = dict(model_kwargs or {}), dict(train_kwargs or {})
    check_kwargs(model_kwargs, _MODEL_KWARGS, "model_kwargs")
    check_kwargs(train_kwargs, _TRAIN_KWARGS, "train_kwargs")
    train_kwargs.setdefault("train_size", TRAIN_SIZE)
    if max_epochs is not None:
        check_int(max_epochs, "max_epochs")
    check_int(batch_size, "batch_size", minimum=2)
    check_bool(early_stopping, "early_stopping")
    resolve_progress_bar(enable_progress_bar)
    if strategy not in (None, "auto"):
        raise InputError(
            f"`strategy={strategy!r}`: distributed training of the coupled autoencoder is not "
            "supported yet; leave `strategy=None` (one device)."
        )
    check_arm_sizes(
        [mdata.mod[m].n_vars for m in modalities], modalities, n_latent, model_kwargs.get("hidden")
    )
    check_float(lam, "lam", low=0.0)
    cross_modal = check_cross_modal(cross_modal)
    layers = dict(layers or {})
    check_standardised(mdata, modalities, layers)
    with fit_context(f"coupled autoencoder ({coupling}, λ={lam:g})"):
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
            **model_kwargs,
        )
        model.train(
            max_epochs=max_epochs,
            batch_size=batch_size,
            accelerator=accelerator,
            devices=devices,
            enable_progress_bar=enable_progress_bar,
            early_stopping=early_stopping,
            precision=precision,
            strategy=strategy,
            **train_kwargs,
        )
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
        from ._coupled_checks import reconstruction_r2, warn_if_reconstruction_fails

        with quiet_update():  # mudata 0.3's FutureWarning on every internal subset
            recon = reconstruction_r2(model, mdata, modalities, layers, random_state)
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
                train_kwargs["train_size"],
                random_state,
            )
        warn_if_cross_modal_fails(heldout)
        warn_for_features_below_mean(heldout)
    out = mdata.copy() if copy else mdata
    for mod in modalities:
        full = np.full((mdata.n_obs, model.module.n_latent), np.nan, dtype=np.float32)
        full[keep] = latents[mod]
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
        "history": history,
        "n_steps": int(model.n_steps_),
        "decoders": decoders,
        **heldout,
    }
    if heldout:
        logg.info("    " + describe_heldout(heldout))
    logg.info(
        f"    added X_{key_added} to .obsm of {modalities}, X_{key_added}_<mod> to mdata.obsm"
    )
    if return_model:
        return (out, model) if copy else model
    return out if copy else None
