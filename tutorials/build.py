"""Build the tutorial notebooks from their percent-format sources in ``src/`` and execute them.

    .venv/bin/python tutorials/build.py            # all
    .venv/bin/python tutorials/build.py sbnn_m1    # one

A source is a Python file whose cells start with ``# %%`` (code) or ``# %% [markdown]``
(markdown, every line prefixed with ``# ``). Outputs are committed with the notebooks.

Execution is quiet: the kernel runs with progress bars off (``TQDM_DISABLE=1``: a
progress bar in a committed notebook is a wall of widget or carriage-return output),
figures at 100 dpi inline and 150 dpi saved, and every stream output is checked for
Lightning/torch banner, tip or warning lines; any found are listed and fail the build
(``--allow-noise`` to keep the notebook anyway). Nothing is deleted from the outputs.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
KERNEL_ENV = {
    "TQDM_DISABLE": "1",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
}
SETUP = (
    "import matplotlib as _mpl\n"
    "_mpl.rcParams['figure.dpi'] = max(_mpl.rcParams['figure.dpi'], 100)\n"
    "_mpl.rcParams['savefig.dpi'] = 150"
)
NOISE = re.compile(
    r"GPU available|TPU available|HPU available|LOCAL_RANK|Tip:|💡|litlogger|Seed set to|"
    r"Trainer\.fit|max_epochs=.*reached|does not have many workers|Warning|\x1b\[",
    re.IGNORECASE,
)


#: multiviz's own warnings (fit health, data changes) are content, not noise: they stay shown.
OURS = re.compile(r"(FitQuality|Data|Multiviz)Warning: ")


def noise_lines(nb) -> list[str]:
    """Banner, tip and warning lines Lightning, scvi-tools or torch printed into ``nb``."""
    found = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                found += [
                    ln
                    for ln in output["text"].splitlines()
                    if NOISE.search(ln) and not OURS.search(ln)
                ]
    return found


def scrub(nb) -> None:
    """Replace this machine's absolute paths in outputs by placeholders (``<repo>``, ``<python>``)."""
    prefix = sys.prefix
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = (
                    output["text"].replace(prefix, "<python>").replace(str(REPO), "<repo>")
                )


def _cells(text: str):
    cells, kind, lines = [], None, []

    def flush():
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(
                line[2:] if line.startswith("# ") else line.lstrip("#")
                for line in body.splitlines()
            )
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


def build(name: str, timeout: int = 1800, allow_noise: bool = False) -> None:
    """Convert ``src/<name>.py`` to ``<name>.ipynb`` and execute it in the tutorials folder."""
    source = HERE / "src" / f"{name}.py"
    nb = nbformat.v4.new_notebook(cells=_cells(source.read_text()))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    setup = nbformat.v4.new_code_cell(SETUP, metadata={"tags": ["remove-cell"]})
    nb.cells.insert(0, setup)
    start = time.perf_counter()
    old_env = {k: os.environ.get(k) for k in KERNEL_ENV}
    os.environ.update(KERNEL_ENV)  # the kernel inherits this process's environment
    try:
        NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
        ).execute()
    finally:
        for key, value in old_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    nb.cells.pop(0)
    scrub(nb)
    noisy = noise_lines(nb)
    if noisy and not allow_noise:
        raise SystemExit(
            f"{name}: {len(noisy)} banner/warning lines in the outputs:\n" + "\n".join(noisy[:20])
        )
    nbformat.write(nb, HERE / f"{name}.ipynb")
    print(f"{name}: executed in {time.perf_counter() - start:.0f}s, {len(noisy)} noise lines")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--scrub-only"]:
        for path in sorted(HERE.glob("*.ipynb")):
            notebook = nbformat.read(path, as_version=4)
            scrub(notebook)
            nbformat.write(notebook, path)
        sys.exit(0)
    allow = "--allow-noise" in sys.argv
    names = [a for a in sys.argv[1:] if not a.startswith("--")]
    names = names or sorted(p.stem for p in (HERE / "src").glob("*.py"))
    for name in names:
        build(name, allow_noise=allow)
