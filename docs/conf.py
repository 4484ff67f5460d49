"""Sphinx configuration for the multiviz documentation."""

from __future__ import annotations

import multiviz

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
]
autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
typehints_use_rtype = False
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_custom_sections = [("Writes", "returns_style")]
myst_enable_extensions = ["colon_fence", "dollarmath"]
nb_execution_mode = "off"  # tutorials are executed and committed with their outputs
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "jupyter_execute", "tutorials/README.md", "tutorials/src"]
templates_path = ["_templates"]
html_theme = "furo"
html_title = "multiviz"
html_static_path = ["_static"]
intersphinx_mapping = {}  # no network at build time
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header"]

# Broken references to multiviz's own API fail the build; external types cannot be resolved
# without intersphinx (no network at build time), so they are exempt.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|pandas|pd|anndata|mudata|md|scanpy|sc|torch|scipy|matplotlib|sklearn|scvi|lightning|openTSNE|grakel|captum|collections|typing|pathlib)\..*"),
    (r"py:.*", r"(AnnData|MuData|Axes|Figure|DataFrame|Series|Path|Literal|Sequence|Mapping|Callable|Iterable|Any|PairedArrays|Triangulation|optional|array-like|NoneType)"),
]
