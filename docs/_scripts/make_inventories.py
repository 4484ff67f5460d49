"""Write small Sphinx inventories for intersphinx, so API links work without network.

The build machine has no network, so ``intersphinx`` cannot download ``objects.inv``.
This script writes inventories for the names multiviz's docs refer to, from the
installed packages, with each project's published URL scheme::

    .venv/bin/python docs/_scripts/make_inventories.py   # rewrites docs/_inventories/*.inv

Re-run it after upgrading anndata, scanpy or scvi-tools.
"""

from __future__ import annotations

import importlib
import inspect
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "_inventories"

# project -> (modules to list, URL of a page relative to the docs root; ``{}`` = full name)
PROJECTS = {
    "anndata": (["anndata"], "generated/{}.html"),
    "scanpy": (["scanpy.pp", "scanpy.tl", "scanpy.pl", "scanpy"], "api/generated/{}.html"),
    "scvi-tools": (
        ["scvi.model", "scvi.model.base", "scvi.train", "scvi.data", "scvi.module.base"],
        "api/reference/{}.html",
    ),
    "pandas": (["pandas"], "reference/api/{}.html"),
    "numpy": (["numpy"], "reference/generated/{}.html"),
    "matplotlib": (["matplotlib.figure", "matplotlib.axes"], "api/_as_gen/{}.html"),
}
# Names type hints render as (unqualified under ``from __future__ import annotations``, or
# the defining private module) -> the documented public name.
ALIASES = {
    "anndata": {"AnnData": "anndata.AnnData", "anndata._core.anndata.AnnData": "anndata.AnnData"},
    "pandas": {
        "DataFrame": "pandas.DataFrame",
        "pandas.core.frame.DataFrame": "pandas.DataFrame",
        "Series": "pandas.Series",
        "pandas.core.series.Series": "pandas.Series",
    },
    "matplotlib": {"Figure": "matplotlib.figure.Figure", "Axes": "matplotlib.axes.Axes"},
}
MATPLOTLIB_NAMES = {"matplotlib.figure.Figure", "matplotlib.axes.Axes"}
NUMPY_NAMES = {"numpy.ndarray", "numpy.random.Generator"}


def _entries(project: str, modules: list[str], page: str) -> list[str]:
    lines = []
    for modname in modules:
        module = importlib.import_module(modname)
        names = getattr(module, "__all__", None) or [
            n for n in dir(module) if not n.startswith("_")
        ]
        for name in names:
            obj = getattr(module, name, None)
            if obj is None or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            full = f"{modname}.{name}"
            if project == "matplotlib" and full not in MATPLOTLIB_NAMES:
                continue
            if project == "numpy" and full not in NUMPY_NAMES:
                continue
            if project == "pandas" and name not in ("DataFrame", "Series", "Index"):
                continue
            role = "py:class" if inspect.isclass(obj) else "py:function"
            lines.append(f"{full} {role} 1 {page.format(full)}#$ -")
    return sorted(set(lines))


def write(project: str, version: str, lines: list[str]) -> Path:
    """Write one inventory in Sphinx's version-2 format."""
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    ).encode()
    path = OUT / f"{project}.inv"
    path.write_bytes(header + zlib.compress(("\n".join(lines) + "\n").encode()))
    return path


def main() -> None:
    """Write every project's inventory."""
    OUT.mkdir(exist_ok=True)
    for project, (modules, page) in PROJECTS.items():
        top = importlib.import_module(modules[0].split(".")[0])
        lines = _entries(project, modules, page)
        if project == "numpy":
            lines = [
                f"{n} py:class 1 reference/generated/{n}.html#$ -" for n in sorted(NUMPY_NAMES)
            ]
        for alias, target in ALIASES.get(project, {}).items():
            lines.append(f"{alias} py:class 1 {page.format(target)}#{target} {alias}")
        print(write(project, getattr(top, "__version__", ""), lines), len(lines), "entries")


if __name__ == "__main__":
    main()
