"""The priority formula: a tiny arithmetic language, parsed once, never `eval`-ed.

A formula is an expression over the names `skill`, `interest` and `max` (the skill scale's
maximum score) using `+ - * /`, unary minus, parentheses and whole-number literals, e.g.
"interest * (max - skill)". Anything else (calls, attributes, other names, floats, powers,
comparisons…) is refused with a FormulaError naming the formula. A formula is parsed and
checked once (and cached by its text); evaluating it is a few closure calls.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

NAMES = ("skill", "interest", "max")
MAX_LENGTH = 200
"""Longer formulas are refused: a priority rule is a one-liner."""

_Node = Callable[[float, float, float], float]
_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


class FormulaError(ValueError):
    """The priority formula is not a safe arithmetic expression, or cannot be evaluated."""


@dataclass(frozen=True)
class Formula:
    text: str
    _evaluate: _Node

    def __call__(self, skill: float, interest: float, maximum: float) -> float:
        """The formula's value with `max` bound to `maximum`."""
        try:
            return self._evaluate(skill, interest, maximum)
        except ZeroDivisionError:
            raise FormulaError(
                f"priority formula {self.text!r} divides by zero "
                f"for skill={skill}, interest={interest}, max={maximum}"
            ) from None


@lru_cache(maxsize=32)
def compile_formula(text: str) -> Formula:
    """Parse and check `text`; raise FormulaError naming it if it is not allowed."""
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"priority formula {text[:40]!r}…: over {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError) as error:
        raise FormulaError(f"priority formula {text!r} is not an expression: {error}") from None
    return Formula(text, _build(tree.body, text))


def _build(node: ast.expr, text: str) -> _Node:
    def refuse(problem: str) -> FormulaError:
        return FormulaError(f"priority formula {text!r}: {problem}")

    if isinstance(node, ast.BinOp):
        apply = _BINARY.get(type(node.op))
        if apply is None:
            raise refuse(f"operator {type(node.op).__name__} is not allowed (use + - * /)")
        left, right = _build(node.left, text), _build(node.right, text)
        return lambda s, i, m: apply(left(s, i, m), right(s, i, m))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _build(node.operand, text)
        if isinstance(node.op, ast.USub):
            return lambda s, i, m: -operand(s, i, m)
        return operand
    if isinstance(node, ast.Name):
        if node.id == "skill":
            return lambda s, i, m: s
        if node.id == "interest":
            return lambda s, i, m: i
        if node.id == "max":
            return lambda s, i, m: m
        raise refuse(f"unknown name {node.id!r} (use {', '.join(NAMES)})")
    if isinstance(node, ast.Constant):
        value = node.value
        if type(value) is not int:
            raise refuse(f"only whole-number literals are allowed, not {value!r}")
        return lambda s, i, m: value
    if isinstance(node, ast.Call):
        raise refuse("calls are not allowed")
    if isinstance(node, ast.Attribute):
        raise refuse("attribute access is not allowed")
    raise refuse(f"{type(node).__name__} is not allowed")
