"""One context around every fit: threads, quiet Lightning, Ctrl-C, and a start/finish line.

Every ``mv.tl`` function and every model's ``train()`` runs its training inside
:func:`fit_context`. Contexts nest; only the outermost one logs and changes settings.
Nothing here reconfigures the user's logging or warnings beyond the duration of the fit:
Lightning's and scvi-tools' own loggers are raised to ERROR and restored afterwards.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from .. import _logging as logg
from .._validate import FitError, InputError

__all__ = [
    "TRAINER_SETTINGS",
    "TRAINING_VOCABULARY",
    "fit_context",
    "format_elapsed",
    "resolve_progress_bar",
    "trainer_settings",
]

TRAINER_SETTINGS: tuple[str, ...] = (
    "accelerator",
    "devices",
    "enable_progress_bar",
    "early_stopping",
    "precision",
    "strategy",
)
"""Lightning settings a fitting ``mv.tl`` function passes on to its model's ``train()`` as given."""

TRAINING_VOCABULARY: tuple[str, ...] = ("max_epochs", "batch_size", *TRAINER_SETTINGS)
"""Training keywords every model's ``train()`` and every fitting ``mv.tl`` function accepts."""

# Loggers that print banners ("GPU available", "TPU available", tips, "Seed set to",
# "`Trainer.fit` stopped") or INFO lines during a fit.
_NOISY_LOGGERS = (
    "lightning",
    "lightning.pytorch",
    "lightning.fabric",
    "pytorch_lightning",
    "lightning_fabric",
    "scvi",
)
# Warnings raised by Lightning/torch internals about settings the user cannot act on.
_NOISY_WARNING_MODULES = (
    r"(lightning|pytorch_lightning|lightning_fabric|scvi|torch\.utils\._pytree)"
)
# ... matched by message as well, since Lightning's ``rank_zero_warn`` attributes its
# warnings to the caller's module (scvi-tools' or ours).
_NOISY_WARNING_MESSAGES = (
    r".*_pytree.*",
    r".*does not have many workers.*",
    r".*smaller than the logging interval.*",
    r".*GPU available but not used.*",
    r".*(TPU|HPU|IPU) available.*",
    r".*litlogger.*|.*litmodels.*",
    r".*sync_dist=True.*",
    r".*LightningDeprecationWarning.*",
)


def _import_noisy_packages() -> None:
    """Import Lightning and scvi-tools now, before their loggers are quietened.

    Both set their loggers' levels when first imported; with multiviz's lazy imports that
    could happen inside a fit and undo the quietening.
    """
    for name in ("lightning.pytorch", "scvi"):
        try:
            __import__(name)
        except ImportError:  # pragma: no cover - both are dependencies
            pass


_depth = 0


def format_elapsed(seconds: float) -> str:
    """``h:mm:ss`` as scanpy prints it (sub-second fits print ``0:00:00.42``)."""
    if seconds < 1:
        return f"0:00:00.{int(seconds * 100):02d}"
    return str(timedelta(seconds=int(round(seconds))))


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except AttributeError:  # pragma: no cover - very old IPython
        return False
    return ip is not None and ip.__class__.__name__ == "ZMQInteractiveShell"


def resolve_progress_bar(enable_progress_bar: bool | None) -> bool:
    """Whether to show a progress bar.

    ``None`` (the default of every fit) shows one when ``mv.settings.verbosity >= 2`` and
    the output is a terminal or a notebook; ``True``/``False`` force it on/off.
    """
    if enable_progress_bar is None:
        from .._settings import settings

        if os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes"):
            return False  # tqdm's own switch (e.g. when executing notebooks for the docs)

        interactive = _in_notebook() or bool(getattr(sys.stderr, "isatty", lambda: False)())
        return settings.verbosity >= 2 and interactive
    if not isinstance(enable_progress_bar, bool):
        raise InputError(
            f"`enable_progress_bar` must be True, False or None (follow "
            f"`mv.settings.verbosity`), got {enable_progress_bar!r}."
        )
    return enable_progress_bar


def trainer_settings(args: Mapping[str, Any]) -> dict[str, Any]:
    """The Lightning settings of a tool's call, to pass on to its model's ``train()``.

    Parameters
    ----------
    args
        The call's arguments by name (as an ``mv.tl`` function collects them).

    Returns
    -------
    The :data:`TRAINER_SETTINGS` of ``args`` by name, as given, in that order.
    """
    return {name: args[name] for name in TRAINER_SETTINGS}


def _translate(exc: BaseException) -> BaseException | None:
    """Map a Lightning exception to ours (None: re-raise unchanged)."""
    name = type(exc).__name__
    if name == "MisconfigurationException":
        return InputError(f"Invalid training setting: {exc}")
    if isinstance(exc, TypeError) and "unexpected keyword argument" in str(exc):
        return InputError(
            f"{exc}. Pass only the documented training arguments (see the function's docstring)."
        )
    return None


@contextmanager
def fit_context(what: str) -> Iterator[None]:
    """Run a fit quietly and safely.

    For its duration (outermost context only): torch uses ``mv.settings.num_threads``
    threads; Lightning's and scvi-tools' loggers print only errors; their warnings and
    torch's ``_pytree`` deprecation warnings are hidden. Lightning turns Ctrl-C into
    ``SystemExit``; here it becomes :class:`KeyboardInterrupt` again, so a user's
    ``except KeyboardInterrupt`` works. Lightning configuration errors become
    :class:`~multiviz.InputError`. Logs ``running <what>`` and
    ``    finished <what> (h:mm:ss)``.
    """
    global _depth
    if _depth > 0:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return

    import torch

    from .._settings import settings

    _import_noisy_packages()
    old_threads = torch.get_num_threads()
    if settings.num_threads is not None:
        torch.set_num_threads(settings.num_threads)
    old_levels = {}
    for name in _NOISY_LOGGERS:
        lg = logging.getLogger(name)
        old_levels[name] = lg.level
        lg.setLevel(logging.ERROR)
    start = time.perf_counter()
    logg.info("running %s", what)
    _depth = 1
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=_NOISY_WARNING_MODULES)
            for message in _NOISY_WARNING_MESSAGES:
                warnings.filterwarnings("ignore", message=message)
            try:
                from lightning.fabric.utilities.warnings import PossibleUserWarning

                warnings.filterwarnings("ignore", category=PossibleUserWarning)
            except ImportError:  # pragma: no cover
                pass
            try:
                yield
            except SystemExit as exc:  # Lightning's reaction to Ctrl-C
                raise KeyboardInterrupt(f"{what} interrupted; nothing was written.") from exc
            except Exception as exc:  # Lightning's MisconfigurationException is no ValueError
                if isinstance(exc, InputError | FitError):
                    raise
                translated = _translate(exc)
                if translated is None:
                    raise
                raise translated from exc
    finally:
        _depth = 0
        torch.set_num_threads(old_threads)
        for name, level in old_levels.items():
            logging.getLogger(name).setLevel(level)
    logg.info("    finished %s (%s)", what, format_elapsed(time.perf_counter() - start))
