"""Numbers in the docs written from ``benchmarks/results/*.json`` at build time.

Two MyST roles, registered in ``docs/conf.py``:

``{bench}`FILE:PATH[:FORMAT]` ``
    The value at ``PATH`` in ``benchmarks/results/FILE``, formatted with ``FORMAT`` (a
    Python format spec such as ``.3f``). ``PATH`` is dotted: dictionary keys (a key may
    itself contain dots, e.g. ``lam.0.1`` is ``lam["0.1"]``) and list indices.
``{bench}`FILE:EXPR[:FORMAT]` ``
    Arithmetic (``+ - * /``, parentheses, number literals) on values written ``{PATH}``,
    e.g. ``{bench}`sivae.json:{a.r2_linear} / {a.r2_gene}:.2f` ``.
``{bench-machine}`FILE[:KEY]` ``
    The machine the file's numbers were measured on, from its ``hardware`` block (or
    ``KEY``, another block of the same shape): CPU, cores and torch threads.

A missing file or key fails the build (``-W``); ``tests/test_docs_numbers.py`` resolves
every role of the docs without Sphinx.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from functools import cache
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.USub: operator.neg,
}


class BenchError(ValueError):
    """A role that does not resolve against the committed results."""


@cache
def load(name: str):
    path = RESULTS / name
    if not path.is_file():
        raise BenchError(f"benchmarks/results/{name} does not exist")
    return json.loads(path.read_text())


def lookup(name: str, path: str):
    """The value at dotted ``path`` in ``benchmarks/results/name`` (longest key first)."""
    obj, parts = load(name), path.split(".")
    while parts:
        if isinstance(obj, dict):
            n = next((n for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in obj), 0)
            if n:
                obj, parts = obj[".".join(parts[:n])], parts[n:]
                continue
        elif isinstance(obj, list) and parts[0].isdigit() and int(parts[0]) < len(obj):
            obj, parts = obj[int(parts[0])], parts[1:]
            continue
        raise BenchError(f"benchmarks/results/{name} has no {path!r} (stuck at {parts[0]!r})")
    return obj


def _evaluate(node, values):
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, values)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.Name) and node.id in values:
        return values[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_evaluate(node.left, values), _evaluate(node.right, values))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_evaluate(node.operand, values))
    raise BenchError("only + - * /, parentheses, numbers and {PATH} values are supported")


def resolve(text: str) -> str:
    """What ``{bench}`text` `` writes."""
    name, sep, rest = text.partition(":")
    if not sep:
        raise BenchError(f"{text!r}: expected FILE:PATH[:FORMAT]")
    expr, _, spec = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if "{" not in expr:
        value = lookup(name, expr.strip())
    else:
        values = {}

        def name_of(match):
            values[f"_v{len(values)}"] = lookup(name, match.group(1).strip())
            return f"_v{len(values) - 1}"

        try:
            tree = ast.parse(re.sub(r"\{([^{}]+)\}", name_of, expr), mode="eval")
        except SyntaxError as err:
            raise BenchError(f"{text!r}: not an expression ({err.msg})") from None
        try:
            value = _evaluate(tree, values)
        except (BenchError, ZeroDivisionError, TypeError) as err:
            raise BenchError(f"{text!r}: {err}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BenchError(f"{text!r} is {value!r}, not a number")
    try:
        return format(value, spec)
    except ValueError as err:
        raise BenchError(f"{text!r}: bad format {spec!r} ({err})") from None


def machine(text: str) -> str:
    """What ``{bench-machine}`text` `` writes: the CPU, cores and torch threads."""
    name, _, key = text.partition(":")
    hw = lookup(name, key or "hardware")
    try:
        threads = hw["torch_threads"]
        out = f"{hw['cpu']}, {hw['cores']} cores, {threads} torch thread{'s' * (threads != 1)}"
    except (KeyError, TypeError):
        raise BenchError(f"{text!r}: no cpu/cores/torch_threads in that block") from None
    return out if hw.get("device", "cpu") == "cpu" else f"{out}, {hw['gpu']}"


def _role(func):
    def role(name, rawtext, text, lineno, inliner, options=None, content=None):
        from docutils import nodes

        try:
            out = func(text)
        except BenchError as err:
            msg = inliner.reporter.error(f"{{{name}}}: {err}", line=lineno)
            return [inliner.problematic(rawtext, rawtext, msg)], [msg]
        env = inliner.document.settings.env
        env.note_dependency(str(RESULTS / text.partition(":")[0]))
        return [nodes.inline(rawtext, out, classes=[name])], []

    return role


def setup(app):
    app.add_role("bench", _role(resolve))
    app.add_role("bench-machine", _role(machine))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
