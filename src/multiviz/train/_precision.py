"""One check of ``precision`` for the models that train through Lightning's own optimiser loop.

Accepted: float32 (``None``, ``32``, ``"32-true"``, the default) and the *mixed* modes, where
Lightning autocasts the forward pass and keeps the weights, the optimiser state and (in
multiviz's modules) the loss in float32: ``"bf16-mixed"`` (bfloat16, CPU or GPU) and
``"16-mixed"`` (float16 with Lightning's gradient scaling; GPU only). Refused with a message:
the "true" low-precision modes (``"bf16-true"``, ``"16-true"``: the weights themselves in 16
bits; the fits fail on dtype mismatches or diverge) and ``64`` (the data loaders deliver
float32).
"""

from __future__ import annotations

from .._validate import InputError

__all__ = ["check_precision"]

_FLOAT32 = (32, "32", "32-true")
_ALIASES = {16: "16-mixed", "16": "16-mixed", "bf16": "bf16-mixed"}


def _on_cpu(accelerator) -> bool:
    """Whether ``accelerator`` resolves to the CPU (``"auto"`` without a GPU)."""
    if accelerator == "cpu":
        return True
    if accelerator not in (None, "auto"):
        return False
    import torch

    from ._accelerator import _mps_available

    return not torch.cuda.is_available() and not _mps_available()


def check_precision(
    precision, accelerator, *, model: str, float16_refused: str | None = None
) -> str | None:
    """Validate ``precision`` of a ``train()``; return Lightning's name for it (``None``: float32).

    Parameters
    ----------
    precision
        The ``train()`` argument.
    accelerator
        The ``train()`` argument (``"auto"``, ``"cpu"``, ``"gpu"``, ...): float16 autocast
        is refused on the CPU, where Lightning would silently train in bfloat16 instead.
    model
        The model's name in messages (e.g. ``"siVAE"``).
    float16_refused
        Why ``model`` cannot train in float16 at all (e.g. its own optimisers do no loss
        scaling); None (default): float16 is accepted on a GPU.
    """
    if precision is None or (precision in _FLOAT32 and not isinstance(precision, bool)):
        return None
    if isinstance(precision, bool) or precision not in (*_ALIASES, "16-mixed", "bf16-mixed"):
        raise InputError(
            f"`precision={precision!r}` is not supported by {model}: use None or 32 (float32, "
            "the default), 'bf16-mixed' (bfloat16 autocast, CPU or GPU) or '16-mixed' (float16 "
            "autocast with gradient scaling, GPU only). The 'true' 16-bit modes keep the "
            "weights themselves in 16 bits, and 64-bit is not supported."
        )
    precision = _ALIASES.get(precision, precision)
    if precision == "16-mixed" and float16_refused:
        raise InputError(
            f"`precision='16-mixed'` (float16 autocast) is not supported by {model}: "
            f"{float16_refused} Use 32 (float32, the default) or 'bf16-mixed' (bfloat16 "
            "autocast)."
        )
    if precision == "16-mixed" and _on_cpu(accelerator):
        raise InputError(
            f"`precision='16-mixed'` (float16 autocast) is not available on the CPU (Lightning "
            f"would train {model} in bfloat16 instead): pass `precision='bf16-mixed'`, or "
            "train on a GPU (`accelerator='gpu'`)."
        )
    return precision
