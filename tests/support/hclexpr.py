"""Evaluate the small arithmetic subset of Terraform expressions that the module's checks use, offline.

A variable's ``validation`` condition, a ``precondition`` and the locals they read are strings once
python-hcl2 has parsed them ("${var.a * (local.b + var.c) < var.d && floor(var.a) == var.a}"). This
evaluates such a string against given values, so that a test can show a check refuses what it must and
accepts the defaults: numbers, ``var.X``/``local.X`` (numbers, lists, maps), ``+ - * /``, comparisons,
``&& || !``, parentheses, lists, ``floor``, ``min``, ``max``, ``concat``, ``keys``, ``contains``, ``length``
and the list ``for`` expression ``[for x in L : x if C]``.
Anything else (another function, a string template, a splat) is refused rather than guessed.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "floor": math.floor,
    "min": min,
    "max": max,
    "concat": lambda *lists: [item for items in lists for item in items],
    "keys": sorted,  # a map's keys, in lexicographic order as Terraform's keys() gives them
    "contains": lambda items, value: value in items,
    "length": len,
}
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_FOR = re.compile(r"\[for (\w+) in ([\w.]+) : (\w+) if ([^\[\]]+)\]")
_REFERENCE = re.compile(r"\b(var|local)\.(\w+)")


def _python(expression: str) -> str:
    """The expression in Python syntax: names var.X/local.X become var__X/local__X."""
    text = expression.strip()
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    if "${" in text or '"' in text:
        raise ValueError(f"not an arithmetic expression: {expression!r}")
    text = _FOR.sub(r"[\3 for \1 in \2 if \4]", text)
    text = _REFERENCE.sub(r"\1__\2", text)
    text = text.replace("&&", " and ").replace("||", " or ")
    return re.sub(r"!(?!=)", " not ", text)


def evaluate(expression: str, values: Mapping[str, Any]) -> Any:
    """The value of ``expression``; ``values`` maps "var.X" and "local.X" to what they hold."""
    names = {name.replace(".", "__", 1): value for name, value in values.items()}
    tree = ast.parse(_python(expression), mode="eval")
    return _eval(tree.body, names)


def references(expression: str) -> set[str]:
    """The "var.X" and "local.X" names ``expression`` reads."""
    return {f"{kind}.{name}" for kind, name in _REFERENCE.findall(expression)}


def _eval(node: ast.expr, names: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise KeyError(f"no value for {node.id.replace('__', '.', 1)}")
        return names[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_eval(node.left, names), _eval(node.right, names))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand, names)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _eval(node.operand, names)
    if isinstance(node, ast.BoolOp):
        results = [bool(_eval(value, names)) for value in node.values]
        return all(results) if isinstance(node.op, ast.And) else any(results)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, names)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, names)
            if type(op) not in _COMPARE or not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.List):
        return [_eval(item, names) for item in node.elts]
    if isinstance(node, ast.ListComp) and len(node.generators) == 1:
        generator = node.generators[0]
        if not isinstance(generator.target, ast.Name) or generator.is_async:
            raise ValueError(ast.unparse(node))
        found = []
        for item in _eval(generator.iter, names):
            scope = {**names, generator.target.id: item}
            if all(_eval(condition, scope) for condition in generator.ifs):
                found.append(_eval(node.elt, scope))
        return found
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        if node.keywords:
            raise ValueError(ast.unparse(node))
        return _FUNCTIONS[node.func.id](*(_eval(arg, names) for arg in node.args))
    raise ValueError(f"not supported here: {ast.unparse(node)}")
