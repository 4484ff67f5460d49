"""One early check of ``accelerator`` for every fit, before any work.

Without it, ``accelerator="gpu"`` on a machine without a GPU fails inside Lightning with
``MisconfigurationException: No supported gpu backend found!``, and ``accelerator="tpu"``
asks to ``pip install torch_xla``. :func:`check_accelerator` raises
:class:`~multiviz.InputError` instead, naming the argument, what this machine has and the fix.
"""

from __future__ import annotations

from .._validate import InputError

__all__ = ["check_accelerator"]

_FIX = (
    "Pass `accelerator='cpu'`, or `accelerator='auto'` (the default: a GPU when one is "
    "visible, else the CPU)."
)


def _mps_available() -> bool:
    """Whether torch can use Apple's Metal GPU (MPS) here."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _no_cuda_reason() -> str:
    """Why torch sees no CUDA GPU, in words."""
    import torch

    if torch.version.cuda is None:
        return (
            f"no CUDA GPU is visible: this torch ({torch.__version__}) is a build without "
            "CUDA support"
        )
    return (
        "no CUDA GPU is visible (torch.cuda.is_available() is False: no GPU, no working "
        "driver, or CUDA_VISIBLE_DEVICES hides it)"
    )


def check_accelerator(accelerator) -> None:
    """Raise :class:`~multiviz.InputError` when ``accelerator`` names a device this machine lacks.

    Parameters
    ----------
    accelerator
        A ``train()`` argument: ``"auto"``, ``"cpu"``, ``"gpu"``/``"cuda"`` (needs a CUDA
        GPU; ``"gpu"`` also accepts Apple's MPS), ``"mps"`` or ``"tpu"`` (needs
        ``torch_xla``). Other values (a Lightning ``Accelerator``, a plugin's name) are left
        to Lightning.

    Raises
    ------
    InputError
        The device is not available here; the message says what the machine has and how
        to train on the CPU.
    """
    if not isinstance(accelerator, str) or accelerator.lower() in ("auto", "cpu"):
        return
    import torch

    name = accelerator.lower()
    if name in ("gpu", "cuda"):
        if torch.cuda.is_available() or (name == "gpu" and _mps_available()):
            return
        raise InputError(
            f"`accelerator={accelerator!r}` needs a GPU, but {_no_cuda_reason()}. {_FIX}"
        )
    if name == "mps" and not _mps_available():
        raise InputError(
            f"`accelerator={accelerator!r}` needs Apple's Metal GPU (MPS), which this machine "
            f"or torch build does not offer. {_FIX}"
        )
    if name == "tpu":
        from importlib.util import find_spec

        if find_spec("torch_xla") is None:
            raise InputError(
                f"`accelerator={accelerator!r}` needs a Google TPU, but this machine has no TPU "
                "runtime (`torch_xla` is not installed; multiviz is not tested on TPUs). " + _FIX
            )
