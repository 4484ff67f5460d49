"""One check of ``strategy`` / ``devices`` for every model that trains through Lightning."""

from __future__ import annotations

from .._validate import InputError

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
