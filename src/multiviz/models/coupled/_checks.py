"""The coupled autoencoder's argument checks: modalities, arm sizes and weights, options.

Used by :class:`~multiviz.models.CoupledAutoencoder` and, before anything is copied, by
:func:`multiviz.tl.coupled_autoencoder`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mudata import MuData

from ..._validate import (
    InputError,
    check_bool,
    check_float,
    check_int,
    check_mudata,
    check_network_size,
    check_option,
    get_modality,
)
from ._coupling import COUPLINGS
from ._module import CROSS_MODAL

__all__ = [
    "CROSS_MODAL_RNA_DROPOUT",
    "check_arm_sizes",
    "check_arm_weights",
    "check_cross_modal",
    "check_modalities",
    "check_options",
]


#: Input dropout of the transcriptomic arm with the full cross-modal terms (the paper's
#: 0.5 otherwise): the cross-modal loss fits the RNA encoder to the other modality, and
#: 0.8 keeps it from overfitting (``benchmarks/results/coupled_prediction.json``).
CROSS_MODAL_RNA_DROPOUT = 0.8


def _arm_defaults(first: bool, cross_modal: str = "off") -> dict:
    """Paper arms: transcriptomic (first modality) and electrophysiology-like (the others)."""
    if first:
        drop = CROSS_MODAL_RNA_DROPOUT if cross_modal == "full" else 0.5
        return {"hidden": (50, 50, 50, 50), "dropout": drop, "noise": 0.0, "alpha": 1.0}
    return {"hidden": (40, 40, 40, 40), "dropout": 0.1, "noise": 0.05, "alpha": 0.1}


def check_cross_modal(cross_modal) -> str:
    """``"full"``, ``"decoder"`` or ``"off"``; ``True`` means ``"decoder"``, ``False`` ``"off"``.

    (The booleans are the arguments of earlier versions, where ``True`` added the
    decoder-only terms; saved models keep their meaning.)
    """
    if cross_modal is True or cross_modal is False:
        return "decoder" if cross_modal else "off"
    return check_option(cross_modal, CROSS_MODAL, "cross_modal")


def _per_arm(value, modalities: Sequence[str], name: str, cross_modal: str = "off") -> list:
    """Expand ``None`` (paper default) / a scalar / a mapping ``{mod: value}`` to a list."""
    defaults = [_arm_defaults(i == 0, cross_modal)[name] for i in range(len(modalities))]
    if value is None:
        return defaults
    if isinstance(value, Mapping):
        unknown = set(value) - set(modalities)
        if unknown:
            raise InputError(
                f"`{name}` names modalities that are not coupled: {sorted(unknown)}; "
                f"coupled: {list(modalities)}."
            )
        return [value.get(m, d) for m, d in zip(modalities, defaults)]
    return [value] * len(modalities)


def _check_hidden(h, arg: str) -> tuple[int, ...]:
    if isinstance(h, str) or not isinstance(h, Sequence) or len(h) == 0:
        raise InputError(
            f"`{arg}` must be a non-empty sequence of layer widths, e.g. (50, 50), got {h!r}."
        )
    return tuple(check_int(u, arg) for u in h)


def check_arm_sizes(
    n_vars: Sequence[int], modalities: Sequence[str], n_latent, hidden
) -> tuple[int, list[tuple[int, ...]]]:
    """Latent and hidden widths checked against the data and the memory, before any layer.

    ``n_latent`` may be at most the number of features of the smallest modality (a wider
    latent cannot be coupled: that arm's latents span fewer dimensions); all arms must
    fit in the available memory (:func:`multiviz._validate.check_network_size`). Returns
    ``(n_latent, hidden widths per arm)``.
    """
    n_latent = check_int(n_latent, "n_latent")
    hiddens = [_check_hidden(h, "hidden") for h in _per_arm(hidden, modalities, "hidden")]
    smallest = min(range(len(n_vars)), key=lambda i: n_vars[i])
    chains = []
    for n, h in zip(n_vars, hiddens):
        chains += [[n, *h, n_latent], [n_latent, *reversed(h), n]]
    check_network_size(
        "coupled autoencoder",
        n_latent=n_latent,
        max_latent=int(n_vars[smallest]),
        max_what=f"features of modality {modalities[smallest]!r}, the smallest coupled",
        chains=chains,
        size_args=f"`n_latent={n_latent}`, `hidden={dict(zip(modalities, hiddens))}`",
    )
    return n_latent, hiddens


def check_modalities(mdata: MuData, modalities: Sequence[str]) -> list[str]:
    """Validate the modality names: at least two, distinct, all present."""
    check_mudata(mdata)
    if isinstance(modalities, str) or len(modalities) < 2:
        raise InputError(
            f"`modalities={modalities!r}` must name at least two modalities to couple; "
            f"available: {list(mdata.mod)}."
        )
    if len(set(modalities)) != len(modalities):
        raise InputError(f"`modalities={modalities!r}` names a modality twice.")
    for mod in modalities:
        get_modality(mdata, mod, "modalities")
    if not mdata.obs_names.is_unique:
        raise InputError("`mdata.obs_names` are not unique; run `mdata.obs_names_make_unique()`.")
    return list(modalities)


def check_arm_weights(
    alpha, dropout, noise, modalities: Sequence[str], cross_modal: str
) -> tuple[list[float], list[float], list[float]]:
    """Reconstruction weight, input dropout and input noise of every arm, in this order.

    ``None``: the paper's defaults (:func:`_arm_defaults`); a scalar or a
    ``{modality: value}`` mapping otherwise. Returns ``(alphas, dropouts, noises)``.
    """
    alphas = [
        check_float(a, "alpha", low=0.0, low_open=True)
        for a in _per_arm(alpha, modalities, "alpha")
    ]
    drops = [
        check_float(d, "dropout", low=0.0, high=1.0, high_open=True)
        for d in _per_arm(dropout, modalities, "dropout", cross_modal)
    ]
    noises = [check_float(s, "noise", low=0.0) for s in _per_arm(noise, modalities, "noise")]
    return alphas, drops, noises


def check_options(
    coupling, activation, msv_method, n_latent, lam, msv_floor, cross_modal, latent_norm
) -> tuple[int, float, float, str]:
    """The coupled autoencoder's scalar options, in this order.

    Returns ``(n_latent, lam, msv_floor, cross_modal)``, validated (``cross_modal``
    normalised by :func:`check_cross_modal`).
    """
    check_option(coupling, COUPLINGS, "coupling")
    check_option(activation, ("relu", "elu"), "activation")
    check_option(msv_method, ("svd", "eigh"), "msv_method")
    n_latent = check_int(n_latent, "n_latent")
    lam = check_float(lam, "lam", low=0.0)
    msv_floor = check_float(msv_floor, "msv_floor", low=0.0, low_open=True)
    cross_modal = check_cross_modal(cross_modal)
    if latent_norm is not None:
        check_bool(latent_norm, "latent_norm")
    return n_latent, lam, msv_floor, cross_modal
