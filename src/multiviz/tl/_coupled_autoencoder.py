"""``mv.tl.coupled_autoencoder``: coupled autoencoders on a (partially paired) MuData."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from mudata import MuData

from .._docs import COPY_MDATA, doc_params
from .._validate import (
    InputError,
    check_bool,
    check_float,
    check_int,
    check_kwargs,
    check_mudata,
    check_random_state,
    check_str,
    check_unique_names,
    check_writable,
)
from ._checks import check_standardised
from ._coupled_heldout import TRAIN_SIZE
from ._intervals import LEVEL

if TYPE_CHECKING:
    from ..models import CoupledAutoencoder

__all__ = ["coupled_autoencoder"]

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


@doc_params(copy_mdata=COPY_MDATA)
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
    {copy_mdata}
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
    args = dict(locals())  # the call's arguments, by name (checked values replace them)
    from ..train import fit_context
    from ._coupled_steps import fit_quality, fitted_arrays, train_model, write_results

    _check_arguments(mdata, args)
    with fit_context(f"coupled autoencoder ({coupling}, λ={lam:g})"):
        model = train_model(mdata, args)
        arrays = fitted_arrays(model, args["modalities"])
        keep, heldout = fit_quality(model, mdata, args)
    out = mdata.copy() if args["copy"] else mdata
    write_results(out, mdata, model, args, arrays, keep, heldout)
    if args["return_model"]:
        return (out, model) if args["copy"] else model
    return out if args["copy"] else None


def _check_arguments(mdata: MuData, args: dict[str, Any]) -> None:
    """Check the call's arguments and the data; checked values replace those in ``args``."""
    from ..models.coupled._checks import check_arm_sizes, check_cross_modal, check_modalities
    from ..train import resolve_progress_bar

    check_mudata(mdata)
    if not args["copy"]:
        check_writable(mdata, "mdata")
    modalities = args["modalities"] = check_modalities(mdata, args["modalities"])
    check_unique_names(mdata, "mdata")
    args["random_state"] = check_random_state(args["random_state"])
    args["key_added"] = check_str(args["key_added"], "key_added")
    args["return_model"] = check_bool(args["return_model"], "return_model")
    args["copy"] = check_bool(args["copy"], "copy")
    model_kwargs = args["model_kwargs"] = dict(args["model_kwargs"] or {})
    train_kwargs = args["train_kwargs"] = dict(args["train_kwargs"] or {})
    check_kwargs(model_kwargs, _MODEL_KWARGS, "model_kwargs")
    check_kwargs(train_kwargs, _TRAIN_KWARGS, "train_kwargs")
    train_kwargs.setdefault("train_size", TRAIN_SIZE)
    _calibrated_train_size(mdata, modalities, train_kwargs)
    if args["max_epochs"] is not None:
        check_int(args["max_epochs"], "max_epochs")
    check_int(args["batch_size"], "batch_size", minimum=2)
    check_bool(args["early_stopping"], "early_stopping")
    resolve_progress_bar(args["enable_progress_bar"])
    if args["strategy"] not in (None, "auto"):
        raise InputError(
            f"`strategy={args['strategy']!r}`: distributed training of the coupled autoencoder "
            "is not supported yet; leave `strategy=None` (one device)."
        )
    check_arm_sizes(
        [mdata.mod[m].n_vars for m in modalities],
        modalities,
        args["n_latent"],
        model_kwargs.get("hidden"),
    )
    check_float(args["lam"], "lam", low=0.0)
    args["cross_modal"] = check_cross_modal(args["cross_modal"])
    args["layers"] = dict(args["layers"] or {})
    check_standardised(mdata, modalities, args["layers"])


def _calibrated_train_size(mdata: MuData, modalities, train_kwargs: dict) -> None:
    """Hold out the cell count whose 90 % interval coverage is exact (as ``mv.tl.sbnn``).

    The model holds out ``round(n (1 - train_size))`` of its ``n`` cells (those measured in
    any of ``modalities``); ``train_size`` is set so that this is the count
    :func:`~multiviz.tl._heldout.calibration_count` gives, never more than half the cells.
    """
    from ._heldout import MIN_HELDOUT, calibration_count

    train_size = check_float(
        train_kwargs["train_size"], "train_kwargs['train_size']", low=0.0, high=1.0, low_open=True
    )
    cells = mdata.mod[modalities[0]].obs_names
    for mod in modalities[1:]:
        cells = cells.union(mdata.mod[mod].obs_names)
    n = len(cells)
    nominal = int(round(n * (1.0 - train_size)))
    if nominal < MIN_HELDOUT:
        return
    n_val = calibration_count(nominal, LEVEL, n // 2, train_size)
    if n_val != nominal:
        train_kwargs["train_size"] = 1.0 - n_val / n
