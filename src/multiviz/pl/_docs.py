"""Docstring fragments shared by the ``mv.pl`` functions (as scanpy's ``_doc_params``).

A plotting function describes ``show, save, return_fig`` as ``[figure-parameters]`` in
its Parameters section and writes ``[figure-returns]`` as its Returns section; :func:`figure_doc` puts the shared text in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

FRAGMENTS = {
    "[figure-parameters]": """As in scanpy: ``show`` shows the figure (``None``: when matplotlib is
        interactive, e.g. Jupyter); ``save`` writes it to this path (format from the
        suffix, ≥ 150 dpi); ``return_fig=True`` returns the Figure instead of showing it.""",
    "[figure-returns]": """:class:`~matplotlib.figure.Figure` or ``None``
        The figure when ``return_fig=True`` or ``show=False``; ``None`` once it is shown.""",
}


def figure_doc(function: F) -> F:
    """Fill the shared fragments into ``function.__doc__`` (an unknown marker is an error)."""
    doc = function.__doc__ or ""
    for marker, text in FRAGMENTS.items():
        doc = doc.replace(marker, text)
    if "[figure-" in doc:
        raise ValueError(f"{function.__qualname__}: unknown docstring fragment marker")
    function.__doc__ = doc
    return function
