"""multiviz: interpretable non-linear visualisation of paired single-cell data."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import datasets, metrics, models, pl, pp, tl
from ._settings import settings
from ._validate import FitError, InputError

try:
    __version__ = version("multiviz")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "FitError",
    "InputError",
    "datasets",
    "metrics",
    "models",
    "pl",
    "pp",
    "settings",
    "tl",
    "__version__",
]
