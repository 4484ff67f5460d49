"""``mv.pl.training_history``: per-epoch losses of a fit, with its phases marked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from .._validate import InputError
from ._utils import finish


def _as_table(history) -> pd.DataFrame:
    """A per-epoch table from a DataFrame or a dict of equal- or unequal-length arrays."""
    if isinstance(history, pd.DataFrame):
        return history.reset_index(drop=True)
    if isinstance(history, dict):
        if not history:
            raise InputError("The training history is empty.")
        # unequal lengths (e.g. validation metrics of fewer epochs) are padded with NaN
        return pd.DataFrame({k: pd.Series(np.asarray(v).ravel()) for k, v in history.items()})
    raise InputError(f"Cannot read a training history of type {type(history).__name__}.")


def training_history(
    data,
    *,
    key: str | None = None,
    metrics: Sequence[str] | None = None,
    logy: bool = False,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (6.0, 3.8),
    show: bool | None = None,
    save: str | Path | None = None,
):
    """Losses per epoch, one line per metric, with the phases of a multi-phase schedule shaded.

    Parameters
    ----------
    data
        An AnnData/MuData whose ``uns[key]["history"]`` a ``mv.tl`` function wrote, a model
        with ``history`` / ``phase_history_``, or the history itself (DataFrame or dict of
        arrays). A ``"phase"`` column marks the phases (sBNN: pre-training, frozen,
        full, fine-tuning).
    key
        ``uns`` key when ``data`` is an AnnData/MuData (e.g. ``"sbnn"``, ``"cae"``, ``"sivae"``).
    metrics
        Columns to draw (default: every numeric column except ``epoch``).
    logy
        Log-scaled y axis.
    ax
        Draw into this Axes.
    figsize
        Figure size when a new figure is made.
    show
        Show the figure.
    save
        Save the figure to this path.

    Returns
    -------
    The Figure.
    """
    if hasattr(data, "uns") and hasattr(data, "obs"):
        if key is None or key not in data.uns or "history" not in data.uns[key]:
            raise InputError(
                f"`key={key!r}` must name an `uns` entry with a 'history' (keys with one: "
                f"{[k for k, v in data.uns.items() if isinstance(v, dict) and 'history' in v]})."
            )
        history = data.uns[key]["history"]
    elif getattr(data, "phase_history_", None) is not None:
        history = data.phase_history_
    elif hasattr(data, "history") and isinstance(data.history, dict):
        history = {k: v.to_numpy().ravel() for k, v in data.history.items()}
    else:
        history = data
    table = _as_table(history)
    numeric = [
        c for c in table.columns if c not in ("epoch", "phase") and table[c].dtype.kind in "biuf"
    ]
    metrics = list(metrics) if metrics is not None else numeric
    unknown = sorted(set(metrics) - set(table.columns))
    if unknown:
        raise InputError(f"`metrics` {unknown} are not in the history (available: {numeric}).")

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    else:
        fig = ax.figure
    epochs = np.arange(len(table))
    for metric in metrics:
        ax.plot(epochs, table[metric].to_numpy(dtype=float), label=metric, lw=1.2)
    if "phase" in table:
        phases = table["phase"].astype(str).to_numpy()
        starts = np.flatnonzero(np.r_[True, phases[1:] != phases[:-1]])
        ends = np.r_[starts[1:], len(phases)]
        for i, (start, end) in enumerate(zip(starts, ends)):
            if i % 2:
                ax.axvspan(start - 0.5, end - 0.5, color="0.92", zorder=0)
            ax.text(
                (start + end - 1) / 2,
                1.0,
                phases[start],
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize="x-small",
            )
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(frameon=False, fontsize="small")
    return finish(fig, show=show, save=save)
