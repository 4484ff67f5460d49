"""Bounds on what a fit may ask of the machine: CPU threads and network sizes.

Each check runs before anything is allocated and raises :class:`~multiviz.InputError`
(a :class:`ValueError`) naming the argument, the limit and the fix, instead of a fit that
starts thousands of threads or allocates terabytes of weights.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ._validate_args import check_int
from ._validate_base import InputError

__all__ = [
    "BYTES_PER_PARAMETER",
    "available_cpus",
    "available_memory",
    "check_network_size",
    "check_num_threads",
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
