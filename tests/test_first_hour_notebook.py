"""In a real Jupyter kernel, a ``mv.pl`` call displays its figure exactly once."""

from __future__ import annotations

import pytest

nbformat = pytest.importorskip("nbformat")
NotebookClient = pytest.importorskip("nbclient").NotebookClient
pytest.importorskip("ipykernel")

CELLS = [
    "import multiviz as mv",
    "mv.pl.training_history({'phase': ['a'] * 3 + ['b'] * 2, 'loss': [3, 2, 1, 0.9, 0.8]})",
    "fig = mv.pl.training_history({'loss': [3, 2, 1]}, return_fig=True)",
    "mv.pl.training_history({'loss': [3, 2, 1]}, show=False);",
]


def _images(cell) -> int:
    return sum(
        "image/png" in out.get("data", {})
        for out in cell.outputs
        if out.output_type in ("display_data", "execute_result")
    )


def test_pl_call_in_notebook_displays_once():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    NotebookClient(nb, timeout=240, kernel_name="python3").execute()
    displayed = [_images(c) for c in nb.cells]
    # the plain call shows once and returns None (no second copy from the return value);
    # the figure kept with return_fig=True, and the one with show=False, are still open and
    # are displayed once by the inline backend at the end of their cells, as in scanpy
    assert displayed == [0, 1, 1, 1]
    assert all(out.output_type != "execute_result" for c in nb.cells for out in c.outputs)
