"""Point labels that do not overlap: a small iterative repel of annotation boxes.

Each label is an annotation offset from its point (in points, so the layout survives
resizing); overlapping label boxes are pushed apart along the axis of least overlap
until none overlap (or ``max_iter`` rounds), and a thin line joins each moved label to
its point. Enough for the few dozen gene names a loading plot names.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.text import Annotation, Text

__all__ = ["label_boxes", "repel_labels"]


def label_boxes(annotations: Sequence[Annotation]) -> np.ndarray:
    """Display-space boxes ``(x0, y0, x1, y1)`` of the labels' text (not their lines)."""
    if not annotations:
        return np.zeros((0, 4))
    renderer = annotations[0].figure.canvas.get_renderer()
    boxes = []
    for a in annotations:
        a.update_positions(renderer)
        boxes.append(Text.get_window_extent(a, renderer).extents)
    return np.array(boxes)


def repel_labels(
    ax: Axes,
    x: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    *,
    fontsize: str | float = "x-small",
    max_iter: int = 300,
    pad: float = 1.0,
) -> list[Annotation]:
    """Annotate points ``(x, y)`` with ``names`` and move the labels until none overlap.

    Parameters
    ----------
    ax
        Axes holding the points.
    x, y
        Data coordinates of the labelled points.
    names
        One label per point.
    fontsize
        Label font size.
    max_iter
        Rounds of pairwise pushing.
    pad
        Extra gap between labels, in display pixels.

    Returns
    -------
    The annotations.
    """
    fig = ax.figure
    # labels move without their connecting lines (an arrow's box spans label and point,
    # and is slow to compute); the lines are added once the labels have settled
    anns = [
        ax.annotate(
            str(name),
            (float(px), float(py)),
            xytext=(3, 3),
            textcoords="offset points",
            fontsize=fontsize,
        )
        for name, px, py in zip(names, x, y)
    ]
    for a in anns:
        a.set_in_layout(False)  # the layout must not move the points after the labels settle
    if len(anns) < 2:
        return anns
    fig.draw_without_rendering()  # settle the layout before measuring in display space
    to_points = 72.0 / fig.dpi
    offsets = np.array([a.xyann for a in anns], dtype=float)
    jitter = np.random.default_rng(0).uniform(-0.5, 0.5, size=(len(anns), 2))
    upper = np.triu(np.ones((len(anns), len(anns)), dtype=bool), k=1)
    for _ in range(max_iter):
        b = label_boxes(anns)
        ox = np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0])
        oy = np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1])
        ox, oy = ox + pad, oy + pad
        clash = (ox > 0) & (oy > 0) & upper
        if not clash.any():
            break
        centres = np.c_[b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]] / 2 + jitter
        shift = np.zeros_like(offsets)
        for i, j in zip(*np.nonzero(clash)):
            axis = 0 if ox[i, j] < oy[i, j] else 1
            step = (ox[i, j] if axis == 0 else oy[i, j]) / 2 * to_points
            sign = 1.0 if centres[i, axis] >= centres[j, axis] else -1.0
            shift[i, axis] += sign * step
            shift[j, axis] -= sign * step
        offsets += shift
        for a, off in zip(anns, offsets):
            a.xyann = (float(off[0]), float(off[1]))
    arrow = {"arrowstyle": "-", "color": "0.5", "lw": 0.5, "shrinkA": 0, "shrinkB": 2}
    final = []
    for a in anns:
        a.remove()
        moved = np.hypot(*a.xyann) > 6
        b = ax.annotate(
            a.get_text(),
            a.xy,
            xytext=a.xyann,
            textcoords="offset points",
            fontsize=fontsize,
            arrowprops=arrow if moved else None,
        )
        b.set_in_layout(False)
        final.append(b)
    return final
