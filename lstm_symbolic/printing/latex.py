"""LaTeX printer: derivation expressions as article-style formulas (printing layer).

A :class:`sympy.printing.latex.LatexPrinter` subclass with the element-wise algebra's own
rules: ``\\odot`` for element-wise products (with an explicit precedence: sums and matrix
products inside a product get parentheses), ``W_f x_t`` for ``MatVec``, ``U_f^{\\top} \\delta
z_{f,t}`` for ``MatTVec``, ``\\delta z_{f,t}\\, x_t^{\\top}`` for ``Outer``, σ and tanh with
their powers.  Factors are ordered the way articles write them: the adjoint first, then the
forward values in declaration order.  Symbol names come from a notation's table.
"""

from __future__ import annotations

from collections.abc import Mapping

import sympy as sp
from sympy.printing.latex import LatexPrinter as _SympyLatexPrinter

from .. import naming
from ..core.cells import Cell
from ..core.derive import Adjoint, Derivation
from ..core.functions import LINEAR_ATOMS, UNITS, MatTVec, MatVec, hard_sigmoid, sigmoid, tanh
from ..core.jacobian import Diag, Jacobian, Ones, Term
from ..notation import Notation, generic_latex, top_level


class CellLatexPrinter(_SympyLatexPrinter):
    """LaTeX for element-wise expressions; ``symbols`` maps internal names to LaTeX."""

    def __init__(
        self,
        symbols: Mapping[str, str] | None = None,
        *,
        scalar: bool = False,
        order: Mapping[str, int] | None = None,
        times: str = "",
        matmul: str = "",
    ):
        super().__init__()
        self.symbols = dict(symbols or {})
        self.scalar = scalar
        self.rank = dict(order or {})
        self.times = times or (r"\cdot" if scalar else r"\odot")
        self.matmul = f" {matmul} " if matmul else " "

    def _print_Symbol(self, expr, style="plain"):
        return self.symbols.get(expr.name) or generic_latex(expr.name)

    def _print_Mul(self, expr):
        if expr.could_extract_minus_sign():
            inner = -expr
            text = self._print(inner)
            return "-" + (self._add_parens(text) if isinstance(inner, sp.Add) else text)
        num, den = sp.fraction(expr)
        if den != 1:
            return rf"\frac{{{self._print(num)}}}{{{self._print(den)}}}"
        coeff, factors = expr.as_coeff_mul()
        many = len(factors) > 1 or coeff != 1
        parts = [self._factor(f, many) for f in sorted(factors, key=self._factor_key)]
        body = f" {self.times} ".join(parts)
        return body if coeff == 1 else f"{self._print(coeff)} {body}"

    def _factor(self, factor, many: bool) -> str:
        text = self._print(factor)
        if isinstance(factor, sp.Add) or (many and isinstance(factor, LINEAR_ATOMS)):
            return self._add_parens(text)
        return text

    def _factor_key(self, factor):
        """Adjoints first, then symbols, functions and powers, sums, matrix products."""
        if isinstance(factor, sp.Symbol):
            kind = 0 if naming.is_adjoint(factor.name) else 1
        elif isinstance(factor, sp.Add):
            kind = 3
        elif isinstance(factor, LINEAR_ATOMS):
            kind = 4
        else:
            kind = 2
        return (kind, self._lead_rank(factor), sp.default_sort_key(factor))

    def _lead_rank(self, expr) -> int:
        if isinstance(expr, LINEAR_ATOMS):  # a matrix product ranks by its weight
            expr = expr.args[0] if isinstance(expr, (MatVec, MatTVec)) else expr
        ranks = [self.rank.get(s.name, len(self.rank)) for s in expr.free_symbols]
        return min(ranks, default=-1)

    def add_terms(self, expr) -> list:
        """The terms of a sum in printed order: numbers first, then matrix products, then the
        rest, simplest first, each in declaration order."""
        def key(term):
            kind = 0 if term.is_number else 1 if isinstance(term, LINEAR_ATOMS) else 2
            size = 0 if kind < 2 else sp.count_ops(term)
            return (kind, size, self._lead_rank(term), sp.default_sort_key(term))

        return sorted(sp.Add.make_args(expr), key=key)

    def _print_Add(self, expr, order=None):
        tex = ""
        for k, term in enumerate(self.add_terms(expr)):
            if k and term.could_extract_minus_sign():
                tex, term = tex + " - ", -term
            elif k:
                tex += " + "
            text = self._print(term)
            tex += self._add_parens(text) if isinstance(term, sp.Add) else text
        return tex

    def _print_Pow(self, expr, exp=None):
        base, e = expr.args
        if e.is_Rational and e < 0:
            return rf"\frac{{1}}{{{self._print(base ** -e)}}}"
        if e == sp.S.Half:
            return rf"\sqrt{{{self._print(base)}}}"
        if isinstance(base, (sigmoid, tanh, sp.tanh)):
            return self._print(base, exp=self._print(e))
        text = self._print(base)
        if not isinstance(base, sp.Symbol) or "^" in top_level(text):
            text = self._add_parens(text)
        return f"{text}^{{{self._print(e)}}}"

    def _call(self, name: str, expr, exp=None, power_on_name=False) -> str:
        arg = self._print(expr.args[0])
        wrapped = f"({arg})" if isinstance(expr.args[0], sp.Symbol) else self._add_parens(arg)
        if exp is None:
            return f"{name}{wrapped}"
        return f"{name}^{{{exp}}}{wrapped}" if power_on_name else f"{name}{wrapped}^{{{exp}}}"

    def _print_sigmoid(self, expr, exp=None):
        return self._call(r"\sigma", expr, exp)

    def _print_tanh(self, expr, exp=None):
        return self._call(r"\tanh", expr, exp, power_on_name=True)

    def _print_relu(self, expr, exp=None):
        return self._call(r"\operatorname{relu}", expr, exp, power_on_name=True)

    def _print_softplus(self, expr, exp=None):
        return self._call(r"\operatorname{softplus}", expr, exp, power_on_name=True)

    def _print_log_sigmoid(self, expr, exp=None):
        return self._call(r"\log\sigma", expr, exp, power_on_name=True)

    def _print_sqrt(self, expr, exp=None):
        root = rf"\sqrt{{{self._print(expr.args[0])}}}"
        return root if exp is None else rf"\left({root}\right)^{{{exp}}}"

    def _print_absolute(self, expr, exp=None):
        bars = rf"\lvert {self._print(expr.args[0])} \rvert"
        return bars if exp is None else rf"{bars}^{{{exp}}}"

    def _many(self, name: str, args, exp=None) -> str:
        text = rf"{name}\left({', '.join(self._print(a) for a in args)}\right)"
        return text if exp is None else rf"{text}^{{{exp}}}"

    def _print_maximum(self, expr, exp=None):
        return self._many(r"\max", expr.args, exp)

    def _print_minimum(self, expr, exp=None):
        return self._many(r"\min", expr.args, exp)

    def _print_clip(self, expr, exp=None):
        return self._many(r"\operatorname{clip}", expr.args, exp)

    def _print_hard_sigmoid(self, expr, exp=None):
        x, *constants = expr.args
        if tuple(constants) == hard_sigmoid.DEFAULTS:
            return self._call(r"\operatorname{hardsigmoid}", expr, exp, power_on_name=True)
        return self._many(r"\operatorname{hardsigmoid}", expr.args, exp)

    def _print_step(self, expr, exp=None):
        """[x > 0] (Iverson's bracket) with its value at 0: [x ≥ 0] for 1, H(x) (Heaviside's, ½ at 0) for ½."""
        x, at_zero = expr.args
        arg = self._print(x)
        if at_zero == 0:
            return rf"[{arg} > 0]"
        if at_zero == 1:
            return rf"[{arg} \geq 0]"
        return self._many(r"\operatorname{H}", [x], exp)

    def _print_unit_sum(self, expr, exp=None):  # across the units: Σ_k (·)_k
        return self._many(r"\operatorname{sum}", expr.args, exp)

    def _print_unit_mean(self, expr, exp=None):
        return self._many(r"\operatorname{mean}", expr.args, exp)

    def _print_Units(self, expr, exp=None):  # the number of units a mean runs over
        return UNITS if exp is None else f"{UNITS}^{{{exp}}}"

    def _print_exp(self, expr, exp=None):
        arg = self._print(expr.args[0])
        return rf"e^{{{arg}}}" if exp is None else rf"\left(e^{{{arg}}}\right)^{{{exp}}}"

    def _print_log(self, expr, exp=None):
        return self._call(r"\log", expr, exp, power_on_name=True)

    def _operand(self, expr) -> str:
        text = self._print(expr)
        return text if isinstance(expr, sp.Symbol) else self._add_parens(text)

    def _transpose(self, expr) -> str:
        text = self._operand(expr)
        if self.scalar:
            return text
        if "^" in top_level(text):
            text = self._add_parens(text)
        return text + r"^{\top}"

    def _print_MatVec(self, expr):
        w, v = expr.args
        return f"{self._operand(w)}{self.matmul}{self._operand(v)}"

    def _print_MatTVec(self, expr):
        w, d = expr.args
        return f"{self._transpose(w)}{self.matmul}{self._operand(d)}"

    def _print_Outer(self, expr):
        d, v = expr.args
        return rf"{self._operand(d)}\, {self._transpose(v)}"

    def _add_parens(self, s) -> str:
        return rf"\left({s}\right)"


def latex_of(expr: sp.Expr, symbols: Mapping[str, str] | None = None, *, scalar=False,
             order: Mapping[str, int] | None = None) -> str:
    """``expr`` as LaTeX with the given symbol table (generic names otherwise)."""
    return CellLatexPrinter(symbols, scalar=scalar, order=order).doprint(expr)


ONES = r"\mathbf{1}\mathbf{1}^{\top}"  # a reduction's Jacobian: 1 1ᵀ/H puts a vector's mean in every unit


def term_latex(term: Term, printer: CellLatexPrinter) -> str:
    """One Jacobian term: ``\\operatorname{diag}(·) U_f \\operatorname{diag}(·)``."""
    return " ".join(term_factors(term, printer))


def term_factors(term: Term, printer: CellLatexPrinter) -> list[str]:
    """The printed factors of one Jacobian term, left to right (where a long one may break)."""
    if not term.factors:
        return ["1" if printer.scalar else "I"]
    parts = []
    for factor in term.factors:
        if isinstance(factor, Diag):
            inner = printer.doprint(factor.expr)
            parts.append(
                printer._add_parens(inner) if printer.scalar and len(term.factors) > 1
                else inner if printer.scalar
                else rf"\operatorname{{diag}}\left({inner}\right)"
            )
        elif isinstance(factor, Ones):
            parts.append((rf"\frac{{1}}{{{UNITS}}}" if factor.mean else "") + ONES)
        else:
            parts.append(printer.doprint(factor))
    return parts


def jacobian_terms(jac: Jacobian, printer: CellLatexPrinter) -> tuple[str, ...]:
    """Every term of a step Jacobian, in order; ``("0",)`` for a zero Jacobian."""
    return tuple(term_latex(t, printer) for t in jac.terms) or ("0",)


def symbol_table(cell: Cell, notation: Notation, derivation: Derivation | None = None) -> dict:
    """LaTeX of every name a cell's derivation prints, in ``notation``.

    Parameters carry no time index; ``<name>_prev`` is at t−1; adjoints are ``\\delta``
    before their quantity; the seed from step t+1 carries the "next" mark.
    """
    table = {}
    for q in cell.quantities:
        table[q.name] = notation.latex(q.name, None if q.kind == "param" else "t")
        if q.kind == "param":
            table[naming.adjoint(q.name)] = notation.adjoint_latex(q.name, None)
        if q.kind == "intermediate":
            table[naming.prev(q.name)] = notation.latex(naming.prev(q.name))
    if derivation is None:
        return table
    for adj in derivation.adjoints:
        table[adj.name.name] = _adjoint_latex(adj, notation, table)
    for state, seed in derivation.seeds.items():
        table[seed.name] = (notation.seed_latex(state) if seed.name.endswith("_next")
                            else notation.adjoint_latex(state))
    return table


def _adjoint_latex(adj: Adjoint, notation: Notation, table: dict) -> str:
    if isinstance(adj.of, sp.Symbol):
        return notation.adjoint_latex(adj.of.name)
    return notation.adjoint_of(rf"\left({latex_of(adj.of, table)}\right)")

