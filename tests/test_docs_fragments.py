"""Docstrings filled from ``multiviz._docs`` render completely (in place of ruff's D417)."""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

from multiviz._docs import doc_params

PACKAGES = ["pp", "tl", "pl", "metrics", "datasets", "models"]


def _public():
    for package in PACKAGES:
        module = importlib.import_module(f"multiviz.{package}")
        for name in getattr(module, "__all__", None) or dir(module):
            obj = getattr(module, name, None)
            if name.startswith("_") or inspect.ismodule(obj) or not callable(obj):
                continue
            yield f"{package}.{name}", obj
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    if inspect.isfunction(value) and not attr.startswith("_"):
                        yield f"{package}.{name}.{attr}", value


PUBLIC = dict(_public())


def _documented(doc: str) -> set[str]:
    """Names in the Parameters section (``a, b`` lines at the section's indentation)."""
    match = re.search(r"^Parameters\n-+\n(.*?)(?=^\S[^\n]*\n-+\n|\Z)", doc, re.S | re.M)
    if match is None:
        return set()
    names = set()
    for line in match.group(1).splitlines():
        if line and not line[0].isspace():
            names.update(n.strip().lstrip("*") for n in line.split(":")[0].split(","))
    return names


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_rendered_docstring_is_complete(name):
    obj = PUBLIC[name]
    doc = inspect.getdoc(obj) or ""
    assert not re.search(r"^\s*\{\w+\}$", doc, re.M), f"{name}: an unfilled fragment"
    if "Parameters\n---" not in doc:
        return
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return
    parameters = [p for p in signature.parameters if p not in ("self", "cls")]
    missing = set(parameters) - _documented(doc)
    assert not missing, f"{name}: parameters without a description: {sorted(missing)}"


def test_fragments_are_indented_as_their_placeholder():
    @doc_params(part="a\n    b\n\nc")
    def f():
        """Head.

        Parameters
        ----------
        {part}
        """

    assert inspect.getdoc(f) == "Head.\n\nParameters\n----------\na\n    b\n\nc"


def test_a_missing_placeholder_is_an_error():
    with pytest.raises(ValueError, match="no `{part}` line"):

        @doc_params(part="x")
        def f():
            """No placeholder here; other braces ``f"{key}"`` stay."""
