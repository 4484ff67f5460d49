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
exclude_patterns = ["_build", "**.ipynb_checkpoints", "jupyter_execute"]
templates_path = ["_templates"]
html_theme = "furo"
html_title = "multiviz"
html_static_path = ["_static"]
intersphinx_mapping = {}  # no network at build time
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header"]
