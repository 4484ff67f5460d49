"""Build the tutorial notebooks from their percent-format sources in ``src/`` and execute them.

    .venv/bin/python tutorials/build.py            # all
    .venv/bin/python tutorials/build.py sbnn_m1    # one

A source is a Python file whose cells start with ``# %%`` (code) or ``# %% [markdown]``
(markdown, every line prefixed with ``# ``). Outputs are committed with the notebooks.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def scrub(nb) -> None:
    """Replace this machine's absolute paths in outputs by placeholders (``<repo>``, ``<python>``)."""
    prefix = sys.prefix
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = output["text"].replace(prefix, "<python>").replace(str(REPO), "<repo>")


def _cells(text: str):
    cells, kind, lines = [], None, []

    def flush():
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(body))
        elif body:
            cells.append(nbformat.v4.new_code_cell(body))

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def build(name: str, timeout: int = 1800) -> None:
    """Convert ``src/<name>.py`` to ``<name>.ipynb`` and execute it in the tutorials folder."""
    source = HERE / "src" / f"{name}.py"
    nb = nbformat.v4.new_notebook(cells=_cells(source.read_text()))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    scrub(nb)
    nbformat.write(nb, HERE / f"{name}.ipynb")
    print(f"{name}: executed in {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--scrub-only"]:
        for path in sorted(HERE.glob("*.ipynb")):
            notebook = nbformat.read(path, as_version=4)
            scrub(notebook)
            nbformat.write(notebook, path)
        sys.exit(0)
    names = sys.argv[1:] or sorted(p.stem for p in (HERE / "src").glob("*.py"))
    for name in names:
        build(name)
