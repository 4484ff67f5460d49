"""Lazy attributes for the namespace packages (PEP 562).

``import multiviz`` must stay cheap: torch, scvi-tools, Lightning and scikit-learn load
only when a function or model that needs them is first used. Each namespace
``__init__`` declares which private module defines each public name; :func:`attach`
returns the module-level ``__getattr__``, ``__dir__`` and ``__all__`` that import that
module on first access and cache the attribute on the package, so ``mv.tl.sbnn``,
``from multiviz.tl import sbnn``, ``dir(mv.tl)``, tab completion and Sphinx autosummary
all behave as with eager imports.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["attach"]


def attach(
    package: str,
    submodules: Mapping[str, Sequence[str]],
    subpackages: Sequence[str] = (),
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """Lazy ``__getattr__``, ``__dir__`` and ``__all__`` for ``package``.

    Parameters
    ----------
    package
        The package's ``__name__``.
    submodules
        Relative module name (``"_sbnn"``, ``".coupled"``) → public names it defines.
    subpackages
        Public subpackages (``"coupled"``) reachable as attributes, imported on access.

    Returns
    -------
    ``(__getattr__, __dir__, __all__)`` to assign at module level.
    """
    origin = {name: module for module, names in submodules.items() for name in names}
    public = sorted(origin)
    private = {m.lstrip(".") for m in submodules}

    def __getattr__(name: str) -> Any:  # noqa: N807 - PEP 562 hook
        if name in subpackages or name in private:
            # a (private) submodule, e.g. ``mv.metrics._consistency``: as after an eager import
            return importlib.import_module(f".{name}", package)
        module = origin.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        relative = module if module.startswith(".") else f".{module}"
        value = getattr(importlib.import_module(relative, package), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this hook
        return value

    def __dir__() -> list[str]:  # noqa: N807 - PEP 562 hook
        return sorted(set(public) | set(subpackages) | set(vars(sys.modules[package])))

    return __getattr__, __dir__, public
