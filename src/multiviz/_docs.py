"""Docstring fragments shared across multiviz (as scanpy's ``_doc_params`` and ``_docs.py``).

A function names a fragment as ``{name}`` on a line of its own in its docstring and is decorated
with ``@doc_params(name=FRAGMENT)``. Fragments are written without indentation; each line is
indented as far as its placeholder, so a fragment fits in a Parameters section (at the
parameter names' indentation) as well as at the top of a section. Only the named placeholders
are filled: other braces in a docstring (``f"{key_added}_..."``) stay as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

# --- mv.pl -----------------------------------------------------------------------------------

#: ``show, save, return_fig`` and the Returns section of every plotting function.
FIGURE = """\
show, save, return_fig
    As in scanpy: ``show`` shows the figure (``None``: when matplotlib is
    interactive, e.g. Jupyter); ``save`` writes it to this path (format from the
    suffix, ≥ 150 dpi); ``return_fig=True`` returns the Figure instead of showing it.

Returns
-------
:class:`~matplotlib.figure.Figure` or ``None``
    The figure when ``return_fig=True`` or ``show=False``; ``None`` once it is shown."""

#: ``figsize`` of a plot that makes its own figure unless given axes.
FIGSIZE = """\
figsize
    Figure size when a new figure is made."""

#: ``ax, figsize`` of a plot split into panels.
AX_PANELS = """\
ax, figsize
    Draw into ``ax`` (its area is split into panels); figure size."""

# --- mv.tl -----------------------------------------------------------------------------------

#: ``copy`` of a tool that writes into a MuData.
COPY_MDATA = """\
copy
    Return a modified copy instead of writing into ``mdata``."""

#: ``copy`` of a tool that writes into its input and returns the copy.
COPY = """\
copy
    Work on and return a copy."""

#: The Returns section of a tool that writes into ``mdata`` (see :data:`COPY_MDATA`).
RETURNS_COPY = """\
Returns
-------
``None``, or the modified copy when ``copy=True``."""

#: ``adata, key`` of a function that reads a :func:`multiviz.tl.sivae` run.
SIVAE_RUN = """\
adata
    AnnData after :func:`multiviz.tl.sivae`.
key
    ``key_added`` of that run."""

# --- Examples --------------------------------------------------------------------------------

#: The first lines of an example on the simulated Patch-seq MuData, prepared.
PAIRED_EXAMPLE = """\
>>> import multiviz as mv
>>> mdata = mv.datasets.simulate_patchseq()
>>> mv.pp.prepare_paired(mdata, x="rna", y="ephys")"""

# --- models ----------------------------------------------------------------------------------

#: ``n_train, n_genes`` of siVAE's schedule helpers.
SIVAE_SIZES = """\
n_train
    Training cells.
n_genes
    Genes (step 2 iterates over genes)."""


def _indent(text: str, prefix: str) -> str:
    """``text`` with every line but the first (and the blank ones) indented by ``prefix``."""
    first, *rest = text.split("\n")
    return "\n".join([first, *(prefix + line if line.strip() else "" for line in rest)])


def doc_params(**fragments: str) -> Callable[[F], F]:
    """Fill ``{name}`` placeholders of the decorated object's docstring with ``fragments``.

    Each fragment is indented as far as its placeholder. A fragment whose placeholder is
    missing is an error, so that a renamed placeholder cannot silently drop its text.
    """

    def decorate(obj: F) -> F:
        doc = obj.__doc__ or ""
        for name, text in fragments.items():
            pattern = re.compile(rf"^([ \t]*)\{{{name}\}}$", re.MULTILINE)
            doc, n = pattern.subn(lambda m, text=text: m.group(1) + _indent(text, m.group(1)), doc)
            if not n:
                raise ValueError(f"{obj.__qualname__}: no `{{{name}}}` line in the docstring")
        obj.__doc__ = doc
        return obj

    return decorate
