"""Package logging in the style of scanpy: one logger, levels set through ``mv.settings``."""

from __future__ import annotations

import logging
import sys
import time
import warnings
from contextlib import contextmanager

logger = logging.getLogger("multiviz")
logger.addHandler(logging.NullHandler())

_VERBOSITY_TO_LEVEL = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}


def set_verbosity(verbosity: int) -> None:
    """Set the package log level: 0 errors, 1 warnings, 2 info (default), 3 debug.

    A stream handler is attached to the ``multiviz`` logger only (never the root
    logger), so the user's own logging configuration is left alone.
    """
    if verbosity not in _VERBOSITY_TO_LEVEL:
        raise ValueError(f"`verbosity` must be one of 0, 1, 2, 3; got {verbosity!r}.")
    logger.setLevel(_VERBOSITY_TO_LEVEL[verbosity])
    if not any(getattr(h, "_multiviz", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.addFilter(_not_already_warned)
        handler._multiviz = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


def info(msg: str, *args) -> None:
    """Log at INFO level."""
    logger.info(msg, *args)


def _not_already_warned(record: logging.LogRecord) -> bool:
    """Console filter: a message already shown by :func:`warnings.warn` is not printed again."""
    return not getattr(record, "multiviz_warned", False)


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside multiviz."""
    frame, level = sys._getframe(2), 2
    while frame is not None and frame.f_globals.get("__name__", "").startswith("multiviz"):
        frame, level = frame.f_back, level + 1
    return level


def warning(msg: str, *args, category: type[Warning] | None = None) -> None:
    """Warn the user: :func:`warnings.warn` (filterable by ``category``) and a log record.

    ``category`` defaults to :class:`~multiviz.MultivizWarning`; fit-health warnings pass
    :class:`~multiviz.FitQualityWarning`, data changes :class:`~multiviz.DataWarning`.
    """
    from ._warnings import MultivizWarning

    text = (msg % args if args else msg).strip()
    warnings.warn(text, category or MultivizWarning, stacklevel=_user_stacklevel())
    logger.warning(msg, *args, extra={"multiviz_warned": True})


def debug(msg: str, *args) -> None:
    """Log at DEBUG level."""
    logger.debug(msg, *args)


@contextmanager
def timed(what: str, *, level: int = logging.INFO):
    """Log ``what`` at the start and ``    finished <what> (h:mm:ss)`` at the end, as scanpy does.

    Steps inside a fit pass ``level=logging.DEBUG`` so that a call prints one start and one
    finish line at the default verbosity.
    """
    from datetime import timedelta

    start = time.perf_counter()
    logger.log(level, what)
    yield
    elapsed = time.perf_counter() - start
    shown = (
        str(timedelta(seconds=round(elapsed)))
        if elapsed >= 1
        else f"0:00:00.{int(elapsed * 100):02d}"
    )
    logger.log(level, "    finished %s (%s)", what.removeprefix("running "), shown)
