"""multiviz: interpretable non-linear visualisation of paired single-cell data.

``import multiviz`` is cheap: the namespaces below are imported, but every function and
model in them loads on first use, so torch, scvi-tools, Lightning and scikit-learn are
imported only when a model is fitted or a metric that needs them is called.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import datasets, linear, metrics, models, pl, pp, tl, train
from ._settings import settings
from ._validate import FitError, InputError
from ._warnings import DataWarning, FitQualityWarning, MultivizWarning

try:
    __version__ = version("multiviz")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "DataWarning",
    "FitError",
    "FitQualityWarning",
    "InputError",
    "MultivizWarning",
    "datasets",
    "linear",
    "metrics",
    "models",
    "pl",
    "pp",
    "settings",
    "tl",
    "train",
    "__version__",
]
