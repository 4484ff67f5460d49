"""Checks of what a fit may ask of the machine: CPU threads, network sizes, training devices.

Each check runs before anything is allocated and raises :class:`~multiviz.InputError`
(a :class:`ValueError`) naming the argument, the limit and the fix, instead of a fit that
starts thousands of threads or allocates terabytes of weights.

The training-device checks, one early check for every fit that trains through Lightning:
``accelerator`` (:func:`check_accelerator`: without it, ``accelerator="gpu"`` on a machine
without a GPU fails inside Lightning with ``MisconfigurationException: No supported gpu
backend found!``, and ``accelerator="tpu"`` asks to ``pip install torch_xla``),
``precision`` (:func:`check_precision`) and ``strategy`` / ``devices``
(:func:`check_strategy`).

Accepted precisions: float32 (``None``, ``32``, ``"32-true"``, the default) and the *mixed*
modes, where Lightning autocasts the forward pass and keeps the weights, the optimiser state
and (in multiviz's modules) the loss in float32: ``"bf16-mixed"`` (bfloat16, CPU or GPU) and
``"16-mixed"`` (float16 with Lightning's gradient scaling; GPU only). Refused with a message:
the "true" low-precision modes (``"bf16-true"``, ``"16-true"``: the weights themselves in 16
bits; the fits fail on dtype mismatches or diverge) and ``64`` (the data loaders deliver
float32).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .._validate_base import InputError
from ._args import check_int

__all__ = [
    "BYTES_PER_PARAMETER",
    "SPAWNING",
    "available_cpus",
    "available_memory",
    "check_accelerator",
    "check_lightning",
    "check_network_size",
    "check_num_threads",
    "check_precision",
    "check_strategy",
    "linear_parameters",
]

BYTES_PER_PARAMETER = 16
"""Training memory per float32 parameter: the weight, its gradient and Adam's two moments."""


# -- threads --------------------------------------------------------------------------------


def available_cpus() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):  # macOS, Windows
        return max(os.cpu_count() or 1, 1)


def check_num_threads(value: Any, arg: str = "mv.settings.num_threads") -> int | None:
    """Require ``None`` or an integer from 1 to :func:`available_cpus`.

    More torch threads than cores do not run faster: they compete for the cores, and a
    2-core machine given 4,096 threads never finished a fit.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InputError(
            f"`{arg}` must be a positive integer or None (let torch decide), got {value!r}."
        )
    value = int(value)
    n_cpus = available_cpus()
    if value > n_cpus:
        raise InputError(
            f"`{arg} = {value}` is more threads than the {n_cpus} CPU core(s) this process may "
            f"use; they would compete for the cores and a fit could take hours instead of "
            f"seconds. Set it to at most {n_cpus}, or None to let torch decide."
        )
    return value


# -- memory ---------------------------------------------------------------------------------


def _cgroup_headroom() -> int | None:
    """Bytes left under a cgroup v2 memory limit (containers), ``None`` without a limit."""
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        return max(int(limit) - used, 0)
    except (OSError, ValueError):
        return None


def available_memory() -> int | None:
    """Bytes of memory a new allocation can use now; ``None`` where it cannot be told.

    The system's available memory (``psutil`` or ``/proc/meminfo``), lowered to what a
    container's cgroup limit leaves.
    """
    avail = None
    try:
        import psutil

        avail = int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - psutil missing or unsupported here
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        avail = int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError, IndexError):
            pass
    headroom = _cgroup_headroom()
    if headroom is not None:
        avail = headroom if avail is None else min(avail, headroom)
    return avail


def _size(n_bytes: float) -> str:
    """``n_bytes`` in the largest unit that keeps it at or above 1 (e.g. ``"4.0 TB"``)."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n_bytes < 1000 or unit == "PB":
            return f"{n_bytes:.1f} {unit}" if unit != "B" else f"{int(n_bytes)} B"
        n_bytes /= 1000
    return f"{n_bytes:.1f} PB"  # pragma: no cover - the loop returns


# -- network sizes --------------------------------------------------------------------------


def linear_parameters(widths: Sequence[int]) -> int:
    """Weights and biases of the linear layers between consecutive ``widths``."""
    widths = [int(w) for w in widths]
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))


def check_network_size(
    model: str,
    *,
    n_latent: Any,
    max_latent: int,
    max_what: str,
    chains: Iterable[Sequence[int]],
    n_other: int = 0,
    copies: int = 1,
    latent_arg: str = "n_latent",
    size_args: str = "`n_latent`",
) -> int:
    """Refuse a latent wider than the data or a network that cannot fit in memory.

    Shared by every model (sBNN, coupled autoencoder, siVAE), in the tools and the model
    classes alike, before any layer is built.

    Parameters
    ----------
    model
        Model name for the message (e.g. ``"siVAE"``).
    n_latent
        The latent (bottleneck) width asked for.
    max_latent
        The widest latent the data allow (e.g. the number of input genes).
    max_what
        What ``max_latent`` counts, for the message (e.g. ``"genes in `adata`"``).
    chains
        Widths of each stack of linear layers (``[n_in, *hidden, n_latent]``, ...),
        for the parameter count.
    n_other
        Further float32 parameters and buffers (e.g. a genes x cells input matrix).
    copies
        Networks trained at once (an ensemble of members).
    latent_arg
        Name of the latent argument (``"bottleneck"`` for :func:`multiviz.tl.sbnn`).
    size_args
        The arguments that set the network's size, with their values, for the memory
        message (e.g. ``"`n_latent=2`, `n_hidden=(64, 32)`"``).

    Returns
    -------
    ``n_latent`` as an int.

    Raises
    ------
    InputError
        ``n_latent`` is not a positive integer, is above ``max_latent``, or the network's
        training memory (:data:`BYTES_PER_PARAMETER` per parameter) exceeds
        :func:`available_memory`.
    """
    n_latent = check_int(n_latent, latent_arg)
    if n_latent > max_latent:
        raise InputError(
            f"`{latent_arg}={n_latent}` is larger than the {max_latent} {max_what}; a latent "
            f"wider than its input has nothing to compress, and the {model}'s weights grow with "
            f"`{latent_arg}`. Choose `{latent_arg}` <= {max_latent}."
        )
    n_params = copies * (sum(linear_parameters(c) for c in chains) + int(n_other))
    need = n_params * BYTES_PER_PARAMETER
    avail = available_memory()
    if avail is not None and need > avail:
        raise InputError(
            f"A {model} with {size_args} has about {n_params:.3g} parameters; training "
            f"them needs about {_size(need)} (weights, gradients and Adam's moments, float32), "
            f"but only {_size(avail)} of memory is available. Choose smaller sizes (fewer or "
            f"narrower hidden layers, a smaller `{latent_arg}`)."
        )
    return n_latent


# -- training devices -------------------------------------------------------------------

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


_FLOAT32 = (32, "32", "32-true")
_ALIASES = {16: "16-mixed", "16": "16-mixed", "bf16": "bf16-mixed"}


def _on_cpu(accelerator) -> bool:
    """Whether ``accelerator`` resolves to the CPU (``"auto"`` without a GPU)."""
    if accelerator == "cpu":
        return True
    if accelerator not in (None, "auto"):
        return False
    import torch

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


#: Lightning strategies that run the fit in child processes (the trained weights stay there).
SPAWNING = ("ddp_spawn", "ddp_notebook", "ddp_fork")


def check_strategy(strategy, devices, *, model: str, spawn_reason: str) -> bool:
    """Accept one device or Lightning's (non-spawning) DDP; return whether DDP is used.

    Parameters
    ----------
    strategy, devices
        The ``train()`` arguments.
    model
        The model's name in messages (e.g. ``"the sBNN"``).
    spawn_reason
        Why a spawning strategy is refused, completing "spawned processes would ...".
    """
    name = "auto" if strategy is None else strategy
    if not isinstance(name, str):
        raise InputError(
            f"`strategy` must be a name ('auto', 'ddp'), got {type(strategy).__name__}."
        )
    if name.startswith(SPAWNING):
        raise InputError(
            f"`strategy={strategy!r}` is not supported by {model}: spawned processes would "
            f"{spawn_reason}"
        )
    ddp = name.startswith("ddp")
    if not ddp and name not in ("auto", "single_device"):
        raise InputError(
            f"`strategy={strategy!r}` is not supported by {model}: use 'auto' (one device) "
            "or 'ddp' (several processes through Lightning)."
        )
    single = devices in ("auto", 1) or (isinstance(devices, list) and len(devices) == 1)
    if ddp and single:
        raise InputError(
            f"`strategy={strategy!r}` needs `devices` > 1 (the processes to distribute over, "
            f"e.g. `devices=2`), got `devices={devices!r}`; on one device leave "
            "`strategy='auto'`."
        )
    if not ddp and not single:
        raise InputError(
            f"`devices={devices!r}` needs a distributed strategy: pass `strategy='ddp'` too, "
            "or `devices=1`."
        )
    return ddp


def check_lightning(strategy, devices, precision, accelerator, *, model: str, spawn_reason: str):
    """:func:`check_strategy`, :func:`check_precision` and :func:`check_accelerator`, in that order.

    The Lightning arguments of a ``train()`` that trains one model; returns Lightning's name
    for ``precision`` (``None``: float32).
    """
    check_strategy(strategy, devices, model=model, spawn_reason=spawn_reason)
    precision = check_precision(precision, accelerator, model=model)
    check_accelerator(accelerator)
    return precision
