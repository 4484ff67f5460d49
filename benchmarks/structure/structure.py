"""Structure figures of ``src/multiviz`` (cycles, long functions, checks, duplicates) -> ``benchmarks/results/structure.json``.

Four measurements, none of which imports or runs the package (everything is read with
``ast``/``tokenize``, except the ``duplicates`` command line tool):

* **import cycles** among the package's modules: the graph of intra-package imports.
  An edge is *module-level* when the import runs when the importing module is imported
  (at the top, or in an ``if``/``try``/class body) and *deferred* when it sits inside a
  function or method body (``function``) or is a name of a lazy ``attach(__name__, {...})``
  table of :mod:`multiviz._lazy` (``lazy``: loaded on first attribute access). Imports
  under ``if TYPE_CHECKING:`` never run and are left out. ``from pkg import name`` is an
  edge to ``pkg.name`` when that is a module, else to ``pkg``; the implicit import of a
  module's parent packages is not an edge. ``import_cycles`` (the figure, target 0): the
  strongly connected components (Tarjan) of the module-level graph with more than one
  module, or a module importing itself, each with one shortest cycle through it.
  ``deferred_import_cycles`` (listed, counted separately): every deferred import ``a -> b``
  with a module-level path ``b -> ... -> a`` back, i.e. a cycle closed by one deferred
  import (the shape of the former ``_consensus`` <-> ``_selection_stability`` cycle).
* **long functions**: every function or method (nested ones too, by qualified name) with
  more than 80 code lines, from its ``def`` line to its last line, not counting its
  docstring, blank lines and comment-only lines (lines of a nested function count for the
  enclosing one too, as they are part of its body).
* **check modules**: modules that define a function or method named ``check_*``.
* **duplicate pairs**: the pair count of ``duplicates --repo src/multiviz`` (the
  project's tool library: pairs of places sharing six or more identical or same-shape
  lines; git-tracked plus untracked, not ignored, files as they are in the working tree).
  ``null`` with the reason when the command is not on ``PATH`` or gives no count.

Usage: ``python benchmarks/structure/structure.py`` (or ``make structure``), from the repository
root; a few seconds.
"""

from __future__ import annotations

import ast
import io
import re
import shutil
import subprocess
import sys
import tokenize
from collections import defaultdict
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
from _common import RESULTS, ROOT, write_result  # noqa: E402

SRC = ROOT / "src"
PACKAGE = "multiviz"
RESULT = RESULTS / "structure.json"

MAX_CODE_LINES = 80
TARGETS = {"import_cycles": 0, "long_functions": 2, "check_modules": 10, "duplicate_pairs": 15}
DUPLICATES_CMD = ["duplicates", "--repo", f"src/{PACKAGE}", "--most", "1", "--seconds", "120"]

_NOT_CODE = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}


# -- the package's modules ------------------------------------------------------------


def package_modules(src: Path = SRC, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of ``src/package``."""
    out = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return path.as_posix()


# -- (a) import graph and cycles ------------------------------------------------------


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _lazy_table(call: ast.Call) -> list[str]:
    """Relative submodule names of an ``attach(__name__, {...}, [...])`` call."""
    names: list[str] = []
    args = list(call.args) + [k.value for k in call.keywords]
    for arg in args[1:]:
        if isinstance(arg, ast.Dict):
            names += [k.value for k in arg.keys if isinstance(k, ast.Constant)]
        elif isinstance(arg, ast.List | ast.Tuple):
            names += [e.value for e in arg.elts if isinstance(e, ast.Constant)]
    return [n for n in names if isinstance(n, str)]


def _imports(tree: ast.Module):
    """Yield ``(node, level)`` for every import / lazy table that can run.

    ``level``: ``"module"`` (runs on import), ``"function"`` (in a function body) or
    ``"lazy"`` (a table of :func:`multiviz._lazy.attach`, imported on attribute access).
    """

    def walk(node: ast.AST, level: str):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.orelse:  # the ``else`` of ``if TYPE_CHECKING`` runs
                    yield from walk_one(sub, level)
                continue
            yield from walk_one(child, level)

    def walk_one(child: ast.AST, level: str):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, level
        elif (
            isinstance(child, ast.Call)
            and getattr(child.func, "id", getattr(child.func, "attr", None)) == "attach"
        ):
            yield child, "lazy"
            yield from walk(child, level)
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from walk(child, "function")
        else:
            yield from walk(child, level)

    yield from walk(tree, "module")


def _base_package(module: str, path: Path, level: int) -> str:
    parts = module.split(".")
    if path.name != "__init__.py":
        parts = parts[:-1]  # a plain module's package
    return ".".join(parts[: len(parts) - (level - 1)]) if level > 1 else ".".join(parts)


def import_edges(
    modules: dict[str, Path] | None = None, package: str = PACKAGE
) -> list[dict[str, object]]:
    """Every intra-package import: ``{"from", "to", "level", "line"}``, one per pair and level.

    ``level`` is ``"module"``, ``"function"`` or ``"lazy"`` (see :func:`_imports`); the
    two last are the *deferred* imports.
    """
    modules = package_modules() if modules is None else modules
    edges: dict[tuple[str, str, str], dict[str, object]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, level in _imports(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = _base_package(module, path, node.level)
                    source = f"{base}.{node.module}" if node.module else base
                else:
                    source = node.module or ""
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.append(sub if sub in modules else source)
            else:  # a lazy attach table in a package's __init__
                targets = [f"{module}.{name.lstrip('.')}" for name in _lazy_table(node)]
            for target in targets:
                while target and target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]  # ``import a.b.c`` of a name in a.b
                if target in modules and target.split(".")[0] == package:
                    edges.setdefault(
                        (module, target, level),
                        {"from": module, "to": target, "level": level, "line": node.lineno},
                    )
    return list(edges.values())


def strongly_connected_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative): the SCCs of ``graph`` (node -> successors)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(sorted(component))
    return out


def _module_graph(edges: list[dict[str, object]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for e in edges:
        if e["level"] == "module":
            graph[str(e["from"])].add(str(e["to"]))
    return graph


def _shortest_path(graph: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """Shortest path ``start`` ... ``goal`` in ``graph`` (BFS), ``None`` if there is none."""
    parent: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph.get(node, ())):
                if nxt in parent:
                    continue
                parent[nxt] = node
                if nxt == goal:
                    path = [goal]
                    while parent[path[-1]] is not None:
                        path.append(str(parent[path[-1]]))
                    return path[::-1]
                nxt_frontier.append(nxt)
        frontier = nxt_frontier
    return None


def _edge(e: dict[str, object]) -> dict[str, object]:
    return {"from": e["from"], "to": e["to"], "level": e["level"], "line": e["line"]}


def import_cycles(edges: list[dict[str, object]]) -> list[dict[str, object]]:
    """Cycles of module-level imports: each strongly connected component of more than one
    module (or a module importing itself), with one shortest cycle through it and its edges.
    """
    graph = _module_graph(edges)
    cycles = []
    for component in strongly_connected_components(graph):
        start = component[0]
        if len(component) == 1:
            if start not in graph[start]:
                continue
            cycle = [start, start]  # a module importing itself
        else:
            first = min(n for n in graph[start] if n in component and n != start)
            cycle = [start, *(_shortest_path(graph, first, start) or [first, start])]
        members = set(component)
        cycles.append(
            {
                "modules": component,
                "cycle": cycle,
                "edges": [
                    _edge(e)
                    for e in edges
                    if e["level"] == "module" and e["from"] in members and e["to"] in members
                ],
            }
        )
    return cycles


def deferred_import_cycles(edges: list[dict[str, object]]) -> list[dict[str, object]]:
    """Cycles closed by one deferred import: a function-level or lazy import ``a -> b``
    with a path of module-level imports ``b -> ... -> a`` back (the shortest is listed).

    They do not break ``import`` (the deferred import runs after both modules are loaded)
    but tie the two modules together like a module-level cycle.
    """
    graph = _module_graph(edges)
    out = []
    for e in edges:
        if e["level"] == "module":
            continue
        a, b = str(e["from"]), str(e["to"])
        back = [a] if a == b else _shortest_path(graph, b, a)
        if back is None:
            continue
        out.append({"modules": sorted({a, *back}), "cycle": [a, *back], "deferred": _edge(e)})
    return sorted(out, key=lambda c: c["cycle"])


# -- (b) long functions, (c) check_* modules ------------------------------------------


def _code_lines(source: str) -> set[int]:
    """Line numbers holding code: any token but comments and layout (strings: all lines)."""
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in _NOT_CODE:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines


def _functions(tree: ast.Module):
    """Yield ``(qualified name, node)`` for every function and method, nested ones too."""

    def walk(node: ast.AST, prefix: str):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                yield name, child
                yield from walk(child, f"{name}.<locals>.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, "")


def function_sizes(modules: dict[str, Path] | None = None) -> list[dict[str, object]]:
    """Every function: ``{"name", "module", "file", "line", "code_lines"}``."""
    modules = package_modules() if modules is None else modules
    out = []
    for module, path in modules.items():
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(path))
        code = _code_lines(source)
        for name, node in _functions(tree):
            span = set(range(node.lineno, node.end_lineno + 1))
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                span -= set(range(first.lineno, first.end_lineno + 1))
            out.append(
                {
                    "name": f"{module}.{name}",
                    "module": module,
                    "file": _relative(path),
                    "line": node.lineno,
                    "code_lines": len(span & code),
                }
            )
    return out


def check_function_modules(
    modules: dict[str, Path] | None = None, pattern: str = r"check_"
) -> dict[str, list[str]]:
    """Module -> the functions/methods it defines whose name starts with ``pattern``."""
    modules = package_modules() if modules is None else modules
    out = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names = [n for n, node in _functions(tree) if re.match(pattern, node.name)]
        if names:
            out[module] = names
    return out


# -- (d) duplicates -------------------------------------------------------------------


def duplicate_pairs() -> dict[str, object]:
    """Pair count of the ``duplicates`` command over ``src/multiviz``, or ``None`` + why."""
    command = " ".join(DUPLICATES_CMD)
    if shutil.which(DUPLICATES_CMD[0]) is None:
        return {"pairs": None, "command": command, "reason": "`duplicates` is not on PATH"}
    try:
        run = subprocess.run(
            DUPLICATES_CMD, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return {"pairs": None, "command": command, "reason": f"{type(err).__name__}: {err}"}
    lines = run.stdout.strip().splitlines()
    head = lines[0] if lines else ""
    incomplete = [line for line in lines if line.startswith("incomplete:")]
    match = re.match(r"(\d+) pairs? of places", head)
    if match:
        pairs: int | None = int(match.group(1))
    elif head.startswith("no duplicates"):
        pairs = 0
    else:
        pairs = None
    out: dict[str, object] = {"pairs": pairs, "command": command, "summary": head}
    if incomplete:
        out["incomplete"] = incomplete
    if pairs is None:
        out["reason"] = f"no pair count in the output: {(run.stdout + run.stderr).strip()[:300]!r}"
    return out


# -- the result -----------------------------------------------------------------------


def measure() -> dict[str, object]:
    """All four figures, as written to ``structure.json`` (without the hardware)."""
    modules = package_modules()
    edges = import_edges(modules)
    cycles = import_cycles(edges)
    deferred = deferred_import_cycles(edges)
    sizes = function_sizes(modules)
    long = sorted(
        (
            {k: f[k] for k in ("name", "file", "line", "code_lines")}
            for f in sizes
            if f["code_lines"] > MAX_CODE_LINES
        ),
        key=lambda f: -int(f["code_lines"]),
    )
    checks = check_function_modules(modules)
    private_checks = check_function_modules(modules, pattern=r"_check_")
    dup = duplicate_pairs()
    return {
        "package": f"src/{PACKAGE}",
        "n_modules": len(modules),
        "n_import_edges": {
            level: sum(e["level"] == level for e in edges)
            for level in ("module", "function", "lazy")
        },
        "import_cycles": cycles,
        "n_import_cycles": len(cycles),
        "deferred_import_cycles": deferred,
        "n_deferred_import_cycles": len(deferred),
        "long_functions": long,
        "n_long_functions": len(long),
        "max_code_lines": MAX_CODE_LINES,
        "n_functions": len(sizes),
        "check_modules": sorted(checks),
        "n_check_modules": len(checks),
        "check_functions": checks,
        "private_check_modules": {
            "note": "modules defining _check_* (not counted against the target)",
            "n": len(private_checks),
            "modules": sorted(private_checks),
        },
        "duplicate_pairs": dup["pairs"],
        "duplicates": dup,
        "targets": TARGETS,
        "meets_targets": {
            "import_cycles": len(cycles) <= TARGETS["import_cycles"],
            "long_functions": len(long) <= TARGETS["long_functions"],
            "check_modules": len(checks) <= TARGETS["check_modules"],
            "duplicate_pairs": None
            if dup["pairs"] is None
            else int(dup["pairs"]) <= TARGETS["duplicate_pairs"],
        },
        "commands": [
            ".venv/bin/python benchmarks/structure/structure.py  # or: make structure",
            str(dup["command"]) + "  # from the repository root",
        ],
    }


def main() -> None:
    result = measure()
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    write_result(RESULT, result)
    print(
        f"import cycles: {result['n_import_cycles']} module-level, "
        f"{result['n_deferred_import_cycles']} more through deferred imports"
    )
    for c in result["import_cycles"] + result["deferred_import_cycles"]:
        print("   ", " -> ".join(c["cycle"]))
    print(f"functions over {MAX_CODE_LINES} code lines: {result['n_long_functions']}")
    for f in result["long_functions"]:
        print(f"    {f['code_lines']:4d}  {f['name']}  ({f['file']}:{f['line']})")
    print(f"modules defining check_*: {result['n_check_modules']}")
    dup = result["duplicates"]
    print(
        f"duplicate pairs: {result['duplicate_pairs']}  ({dup.get('reason', dup.get('summary'))})"
    )
    print(f"-> {_relative(RESULT)}")


if __name__ == "__main__":
    main()
