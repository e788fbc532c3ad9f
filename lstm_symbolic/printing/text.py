"""Plain-text printer: the formula language itself (``*`` element-wise, ``@`` products, ``.T``).

What it prints can be pasted back into a formula file.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from ..core.functions import UNITS, WRITTEN, hard_sigmoid
from ..core.jacobian import Diag, Jacobian, Ones
from . import presentation_order


class TextPrinter(StrPrinter):
    """StrPrinter with the linear atoms of the element-wise algebra."""

    def _print_MatVec(self, expr):
        w, v = expr.args
        return f"{self._print(w)} @ {self.parenthesize(v, PRECEDENCE['Mul'])}"

    def _print_MatTVec(self, expr):
        w, v = expr.args
        return f"{self._print(w)}.T @ {self.parenthesize(v, PRECEDENCE['Mul'])}"

    def _print_Outer(self, expr):
        d, v = expr.args
        return f"{self.parenthesize(d, PRECEDENCE['Mul'])} @ {self.parenthesize(v, PRECEDENCE['Atom'], strict=True)}.T"

    def _print_sigmoid(self, expr):
        return f"sigmoid({self._print(expr.args[0])})"

    def _call(self, expr, args=None):
        """A primitive by its written name (``max(a, b)``), as a formula file writes it."""
        return f"{WRITTEN[type(expr)]}({', '.join(self._print(a) for a in (args or expr.args))})"

    _print_relu = _print_softplus = _print_log_sigmoid = _print_maximum = _print_minimum = _call
    _print_clip = _print_sqrt = _print_absolute = _print_step = _call

    def _print_hard_sigmoid(self, expr):
        x, *constants = expr.args
        return self._call(expr, [x] if tuple(constants) == hard_sigmoid.DEFAULTS else expr.args)

    def _print_unit_sum(self, expr):
        return f"sum({self._print(expr.args[0])})"

    def _print_unit_mean(self, expr):
        return f"mean({self._print(expr.args[0])})"

    def _print_Units(self, expr):  # the number of units a mean runs over
        return UNITS


_PRINTER = TextPrinter({"order": "none"})


def text(expr: sp.Expr, rank: dict | None = None) -> str:
    """``expr`` in the formula language, terms in article order (``rank``: declaration order)."""
    return _PRINTER.doprint(presentation_order(sp.sympify(expr), rank))


def jacobian_text(jac: Jacobian, separator: str = "\n  + ") -> str:
    """A step Jacobian as ``diag(...) + diag(...) @ U_f @ diag(...)``, a term a line."""
    if not jac.terms:
        return "0"
    return separator.join(_term(t.factors) for t in jac.terms)


def _term(factors) -> str:
    if not factors:
        return "I"
    return " @ ".join(_factor(f) for f in factors)


def _factor(factor) -> str:
    """``diag(f)``, a weight, or a reduction's ``ones(H, H)/H`` (a mean) / ``ones(H, H)`` (a sum)."""
    if isinstance(factor, Diag):
        return f"diag({text(factor.expr)})"
    if isinstance(factor, Ones):
        return f"(ones({UNITS}, {UNITS})/{UNITS})" if factor.mean else f"ones({UNITS}, {UNITS})"
    return text(factor)
