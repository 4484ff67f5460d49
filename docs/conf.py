"""Sphinx configuration for the multiviz documentation."""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import multiviz

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_scripts"))
from benchmark_tables import write_tables  # noqa: E402

write_tables(HERE / "_generated")  # "Which model when" tables from benchmarks/results/*.json

project = "multiviz"
author = "multiviz developers"
copyright = "2026, multiviz developers"
version = release = multiviz.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx_autodoc_typehints",
    "bench_role",  # {bench} / {bench-machine}: numbers from benchmarks/results/*.json
]
autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# only add types to documented parameters: a Notes section before Returns splits the field
# list, and "all" would repeat every parameter (untyped descriptions) in the second one
autodoc_typehints_description_target = "documented_params"
typehints_use_rtype = False
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_custom_sections = ["Writes"]  # a plain section: its bullet list renders as a list
myst_enable_extensions = ["colon_fence", "dollarmath"]
nb_execution_mode = "off"  # tutorials are executed and committed with their outputs
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = [
    "_build",
    "**.ipynb_checkpoints",
    "jupyter_execute",
    "tutorials/README.md",
    "tutorials/src",
    "_generated",
    "_scripts",
]
templates_path = ["_templates"]
html_theme = "furo"
html_title = "multiviz"
html_static_path = ["_static"]
# No network at build time: inventories cached in docs/_inventories (make_inventories.py).
intersphinx_mapping = {
    name: (url, str(HERE / "_inventories" / f"{name}.inv"))
    for name, url in {
        "anndata": "https://anndata.readthedocs.io/en/stable/",
        "scanpy": "https://scanpy.readthedocs.io/en/stable/",
        "scvi-tools": "https://docs.scvi-tools.org/en/stable/",
        "pandas": "https://pandas.pydata.org/docs/",
        "numpy": "https://numpy.org/doc/stable/",
        "matplotlib": "https://matplotlib.org/stable/",
    }.items()
}
intersphinx_timeout = 1
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header"]

# Broken references to multiviz's own API fail the build; external types cannot be resolved
# without intersphinx (no network at build time), so they are exempt.
nitpicky = True
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(numpy|np|pandas|pd|anndata|mudata|md|scanpy|sc|torch|scipy|matplotlib|sklearn|scvi|lightning|openTSNE|grakel|captum|collections|typing|pathlib)\..*",
    ),
    (
        r"py:.*",
        r"(AnnData|MuData|Axes|Figure|DataFrame|Series|Path|Literal|Sequence|Mapping|Callable|Iterable|Any|PairedArrays|Triangulation|optional|array-like|NoneType)",
    ),
    # private helpers of other modules referenced from docstrings (owners asked to fix)
    (r"py:.*", r"(default_epochs|cca)"),
    # a sentence after the Raises section of tl.sivae is read as an exception (owner asked)
    (r"py:exc", r"Under Lightning DDP.*"),
    # CoupledAutoencoder.train lives on a private mixin, so autodoc does not list it
    (r"py:meth", r"multiviz\.models\.CoupledAutoencoder\.train"),
    # private modules and mixins (bases of the model classes) are not documented
    (r"py:.*", r"multiviz(\.\w+)*\._\w+.*"),
]


_SECTION = re.compile(r"^(\s*)(\S.*)\n\1-{3,}\s*$")


def _split_writes(app, what, name, obj, options, lines):
    """Move "Writes ..." out of a Returns section into its own section.

    Docstrings say ``Returns`` / ``-------`` / ``None (or the copy). Writes`` followed by
    a bullet list of the slots written; napoleon would parse each bullet as a return
    type. The text from "Writes" on becomes a ``Writes`` section (a plain section, so the
    list renders as a list).
    """
    start = next(
        (
            i
            for i in range(len(lines) - 1)
            if lines[i].strip() == "Returns" and set(lines[i + 1].strip()) == {"-"}
        ),
        None,
    )
    if start is None:
        return
    end = next(
        (
            j
            for j in range(start + 2, len(lines) - 1)
            if lines[j].strip()
            and set(lines[j + 1].strip()) == {"-"}
            and len(lines[j + 1].strip()) >= 3
        ),
        len(lines),
    )
    for k in range(start + 2, end):
        col = lines[k].find("Writes")
        if col < 0:
            continue
        indent = lines[k][: len(lines[k]) - len(lines[k].lstrip())]
        before, after = lines[k][:col].rstrip(), lines[k][col + len("Writes") :].strip()
        body = ([indent + after] if after else []) + lines[k + 1 : end]
        head = lines[start:k] + ([before] if before.strip() else [])
        lines[start:end] = head + ["", indent + "Writes", indent + "------", *body]
        return
    # no "Writes": a bullet list of written slots in Returns goes to its own section too
    bullet = next((k for k in range(start + 2, end) if lines[k].lstrip().startswith("- ")), None)
    if bullet is not None:
        indent = lines[bullet][: len(lines[bullet]) - len(lines[bullet].lstrip())]
        lines[start:end] = [
            *lines[start:bullet],
            "",
            indent + "Writes",
            indent + "------",
            *lines[bullet:end],
        ]


def _section(lines, title):
    """``(start, end)`` of a numpy-style section (header line index, next header or end)."""
    start = next(
        (
            i
            for i in range(len(lines) - 1)
            if lines[i].strip() == title and set(lines[i + 1].strip()) == {"-"}
        ),
        None,
    )
    if start is None:
        return None
    end = next(
        (
            j
            for j in range(start + 2, len(lines) - 1)
            if lines[j].strip() and set(lines[j + 1].strip()) == {"-"}
        ),
        len(lines),
    )
    return start, end


def _prose_returns(app, what, name, obj, options, lines):
    """Give a prose Returns section (several lines, no type line) the annotated type.

    Napoleon reads the first line of a Returns entry as its type; a paragraph would be
    split into a garbled type and description. The paragraph is indented under the
    function's return annotation instead, numpy style.
    """
    bounds = _section(lines, "Returns")
    if bounds is None:
        return
    start, end = bounds
    body = [k for k in range(start + 2, end) if lines[k].strip()]
    if len(body) < 2 or body[1] != body[0] + 1:
        return
    indent = lines[body[0]][: len(lines[body[0]]) - len(lines[body[0]].lstrip())]
    if not lines[body[1]].startswith(indent) or lines[body[1]][len(indent)] == " ":
        return  # already "type" + indented description
    try:
        annotation = inspect.signature(obj).return_annotation
    except (TypeError, ValueError):
        return
    if annotation is inspect.Signature.empty:
        return
    if not isinstance(annotation, str):
        annotation = getattr(annotation, "__name__", str(annotation))
    prose = [("    " + ln if ln.strip() else ln) for ln in lines[body[0] : end]]
    lines[body[0] : end] = [indent + annotation, *prose]


def setup(app):
    app.connect("autodoc-process-docstring", _split_writes, priority=400)  # before napoleon
    app.connect("autodoc-process-docstring", _prose_returns, priority=401)
