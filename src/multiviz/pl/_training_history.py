"""``mv.pl.training_history``: per-epoch losses of a fit, one panel per training phase."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._docs import FIGURE, doc_params
from .._validate import InputError
from ._utils import finish, legend_outside, new_figure

# siVAE's uns history prefixes the metrics of its first two steps (the third is unprefixed).
_PREFIXED_PHASES = ("cell_pretrain", "feature_pretrain")
_UNPREFIXED_PHASE = "joint"


def _as_table(history) -> pd.DataFrame:
    """A per-epoch table from a DataFrame or a dict of equal- or unequal-length arrays."""
    if isinstance(history, pd.DataFrame):
        return history.reset_index(drop=True)
    if isinstance(history, Mapping):
        if not history:
            raise InputError("The training history is empty.")
        # unequal lengths (e.g. validation metrics of fewer epochs) are padded with NaN
        return pd.DataFrame({k: pd.Series(np.asarray(v).ravel()) for k, v in history.items()})
    raise InputError(f"Cannot read a training history of type {type(history).__name__}.")


def _phases(history) -> dict[str, pd.DataFrame]:
    """Split a history into ``{phase: per-epoch table}`` (one entry when single-phase).

    Understood: a ``"phase"`` column (sBNN), a mapping of phase → metrics (siVAE's
    ``phase_history_``), or siVAE's flat history whose first two steps' metrics are
    prefixed ``cell_pretrain_`` / ``feature_pretrain_``.
    """
    if (
        isinstance(history, Mapping)
        and history
        and all(isinstance(v, Mapping) for v in history.values())
    ):
        return {str(k): _as_table(v) for k, v in history.items() if len(v)}
    table = _as_table(history)
    if "phase" in table:
        names = table["phase"].astype(str)
        return {
            name: table[names == name].drop(columns="phase").reset_index(drop=True)
            for name in dict.fromkeys(names)
        }
    prefixed = {p: [c for c in table if str(c).startswith(p + "_")] for p in _PREFIXED_PHASES}
    if any(prefixed.values()):
        out = {}
        for p, cols in prefixed.items():
            if cols:
                sub = table[cols].rename(columns=lambda c, p=p: c[len(p) + 1 :])
                out[p] = sub.dropna(how="all").reset_index(drop=True)
        rest = [c for c in table if not any(c in cols for cols in prefixed.values())]
        if rest:
            out[_UNPREFIXED_PHASE] = table[rest].dropna(how="all").reset_index(drop=True)
        return out
    return {"": table}


def _numeric(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c != "epoch" and table[c].dtype.kind in "biuf"]


@doc_params(figure=FIGURE)
def training_history(
    data,
    *,
    key: str | None = None,
    metrics: Sequence[str] | None = None,
    logy: bool = False,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = False,
) -> Figure | None:
    """Losses per epoch, one line per metric; a multi-phase schedule gets one panel per phase.

    Phases are drawn side by side, each with its own epoch axis (sBNN: pre-training,
    frozen, full, fine-tuning; siVAE: cell pre-training, feature pre-training, joint),
    never on top of each other.

    Parameters
    ----------
    data
        An AnnData/MuData whose ``uns[key]["history"]`` a ``mv.tl`` function wrote, a model
        with ``phase_history_`` / ``history``, or the history itself: a DataFrame or dict of
        arrays (a ``"phase"`` column marks phases) or a dict of phase → metrics.
    key
        ``uns`` key when ``data`` is an AnnData/MuData (e.g. ``"sbnn"``, ``"cae"``, ``"sivae"``).
    metrics
        Metrics to draw (default: every numeric one except ``epoch``); in a phase that
        lacks one, it is skipped.
    logy
        Log-scaled y axis.
    ax
        Draw into the space of this Axes (split into one panel per phase).
    figsize
        Figure size when a new figure is made (default: 3.2 in per phase, at least 6 in).
    {figure}

    Examples
    --------
    >>> import multiviz as mv
    >>> history = {"phase": ["pretrain"] * 3 + ["fine-tune"] * 2, "loss": [3, 2, 1.5, 1.2, 1.1]}
    >>> fig = mv.pl.training_history(history, return_fig=True)
    >>> [a.get_title() for a in fig.axes]
    ['pretrain', 'fine-tune']

    After a fit: ``mv.pl.training_history(mdata, key="sbnn", logy=True)``.
    """
    if hasattr(data, "uns") and hasattr(data, "obs"):
        if key is None or key not in data.uns or "history" not in data.uns[key]:
            raise InputError(
                f"`key={key!r}` must name an `uns` entry with a 'history' (keys with one: "
                f"{[k for k, v in data.uns.items() if isinstance(v, dict) and 'history' in v]})."
            )
        store = data.uns[key]
        history = store.get("phase_history") or store["history"]
    elif getattr(data, "phase_history_", None) is not None:
        history = data.phase_history_
    elif hasattr(data, "history") and isinstance(data.history, dict):
        history = {k: v.to_numpy().ravel() for k, v in data.history.items()}
    else:
        history = data
    phases = _phases(history)
    available = list(dict.fromkeys(c for t in phases.values() for c in _numeric(t)))
    metrics = list(metrics) if metrics is not None else available
    unknown = sorted(set(metrics) - set(available))
    if unknown:
        raise InputError(f"`metrics` {unknown} are not in the history (available: {available}).")

    n = len(phases)
    fig, spec = new_figure(ax, figsize or (max(6.0, 3.2 * n), 3.6))
    grid = spec.subgridspec(1, n)
    colors = {m: f"C{i % 10}" for i, m in enumerate(metrics)}
    handles = {}
    for i, (name, table) in enumerate(phases.items()):
        a = fig.add_subplot(grid[0, i])
        epochs = np.arange(1, len(table) + 1)
        for metric in metrics:
            if metric in table:
                (line,) = a.plot(
                    epochs, table[metric].to_numpy(dtype=float), lw=1.2, color=colors[metric]
                )
                handles.setdefault(metric, line)
        if logy:
            a.set_yscale("log")
        a.set_xlabel("epoch")
        a.set_title(name, fontsize="medium")
        if i == 0:
            a.set_ylabel("loss")
    legend_outside(fig, list(handles.values()), labels=list(handles))
    return finish(fig, show=show, save=save, return_fig=return_fig)
