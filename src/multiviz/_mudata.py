"""Small MuData helpers shared across the package."""

from __future__ import annotations

import warnings
from contextlib import contextmanager


@contextmanager
def quiet_update():
    """Silence mudata 0.3's FutureWarning about the future default of ``MuData.update()``.

    It is raised by every ``update()`` and by the ``MuData`` constructor, says nothing about
    the user's data, and would otherwise be repeated by each multiviz call.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="mudata")
        yield
