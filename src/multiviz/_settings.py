"""A minimal settings object: verbosity only (everything else is a function argument)."""

from __future__ import annotations

from ._logging import set_verbosity


class Settings:
    """Package-wide settings, reachable as ``mv.settings``.

    Attributes
    ----------
    verbosity
        0 errors, 1 warnings, 2 info (default), 3 debug. Messages go to the
        ``multiviz`` logger, never the root logger.
    """

    def __init__(self) -> None:
        self._verbosity = 2
        set_verbosity(self._verbosity)

    @property
    def verbosity(self) -> int:
        """Current verbosity level (0-3)."""
        return self._verbosity

    @verbosity.setter
    def verbosity(self, value: int) -> None:
        set_verbosity(value)
        self._verbosity = value

    def __repr__(self) -> str:
        return f"multiviz.settings(verbosity={self._verbosity})"


settings = Settings()
