"""Package settings: verbosity, torch threads and progress lines during fits."""

from __future__ import annotations

from ._logging import set_verbosity
from ._validate import check_num_threads


class Settings:
    """Package-wide settings, reachable as ``mv.settings``.

    Attributes
    ----------
    verbosity
        0 errors, 1 warnings, 2 info (default), 3 debug. Messages go to the
        ``multiviz`` logger, never the root logger. Progress bars show at 2 and above.
    num_threads
        Torch threads used for the duration of each fit and restored afterwards
        (mirrors ``scvi.settings.num_threads``). ``None`` leaves torch's own setting.
        Default 1: the models are small networks on minibatches, and on a shared
        2-core machine one thread was by far the fastest: a default sBNN-2 fit on M1 took
        266 s with one thread and had not finished after 3,600 s with torch's default of
        two (load average ~20; ``benchmarks/results/first_hour.json``, ``threads``). An idle
        many-core machine was not measured; set more threads there if they help. At most
        the number of CPU cores this process may use (its affinity mask): more threads
        only compete for the cores, so a larger value is an :class:`~multiviz.InputError`.
    progress_interval
        Seconds of wall time between progress lines of a fit that shows no progress bar
        (outside a terminal or notebook: scripts, batch jobs): each line names the model
        and phase, the epoch out of the total, the time elapsed and an estimate of the time
        left, logged at INFO. Default 30; ``None`` turns the lines off.
    """

    def __init__(self) -> None:
        self._verbosity = 2
        self._num_threads: int | None = 1
        self._progress_interval: float | None = 30.0
        set_verbosity(self._verbosity)

    @property
    def verbosity(self) -> int:
        """Current verbosity level (0-3)."""
        return self._verbosity

    @verbosity.setter
    def verbosity(self, value: int) -> None:
        set_verbosity(value)
        self._verbosity = value

    @property
    def num_threads(self) -> int | None:
        """Torch threads during fits (``None``: leave torch's setting alone)."""
        return self._num_threads

    @num_threads.setter
    def num_threads(self, value: int | None) -> None:
        self._num_threads = check_num_threads(value, "mv.settings.num_threads")

    @property
    def progress_interval(self) -> float | None:
        """Seconds between progress lines of a fit without a progress bar (``None``: off)."""
        return self._progress_interval

    @progress_interval.setter
    def progress_interval(self, value: float | None) -> None:
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ValueError(
                    f"`mv.settings.progress_interval` must be seconds >= 0 or None, got {value!r}."
                )
            value = float(value)
        self._progress_interval = value

    def __repr__(self) -> str:
        return (
            f"multiviz.settings(verbosity={self._verbosity}, num_threads={self._num_threads}, "
            f"progress_interval={self._progress_interval})"
        )


settings = Settings()
