"""The judge of one formula (part of ``verify``): random draws, exact and float comparison.

A :class:`Checker` is built once per formula file: the derivation seen through the notation
(:class:`~lstm_symbolic.verify.right.RightFormulas`) and the values of every name at several
random draws - exact rationals at hidden 2 / input 3 (with the same draw at 60 digits), floats
at hidden 4 / input 5; hidden = input = 1 for ``scalar``.  :meth:`Checker.judge` gives a
verdict and a diagnosis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import sympy as sp

from ..core.cells import Cell
from ..core.components import ValueShapeError, evaluate
from ..core.derive import derive
from ..formula.parse import FormulaError, parse_shaped
from ..notation import NotationError, get
from ..printing.latex import symbol_table
from .diagnose import MAX_TERMS, Problem, diagnose, expansion_bound, transposed
from .eval import all_sizes, as_floats, numpy_value, random_leaves, state_values, user_env
from .names import is_next_seed
from .right import RightFormulas

EXACT_SIZES = {"hidden": 2, "input": 3}
FLOAT_SIZES = {"hidden": 4, "input": 5}
SCALAR_SIZES = {"hidden": 1, "input": 1}
DRAWS = 3  # exact draws, dc_next ≠ 0
LAST_DRAWS = 2  # exact draws with dc_next = 0
DIGITS = 60
EXACT_MAX_EQUATIONS = 40  # a larger cell is compared at 60 digits only: its exact values grow with each equation
EQUAL = sp.Float(10) ** -40  # relative difference below this, at 60 digits: equal
FLOAT_RTOL = 1e-9


@dataclass(frozen=True)
class Outcome:
    verdict: str
    max_rel_error: float | None
    diagnosis: str


class Checker:
    """Everything needed to judge the formulas of one file."""

    def __init__(self, cell: Cell, notation: str, scalar: bool, seed: int = 20261121):
        self.derivation = derive(cell)
        self.right = RightFormulas(self.derivation, notation, scalar)
        self.scalar = scalar
        self.quantities, self.shapes = self.right.quantities, self.right.shapes
        self.rng = np.random.default_rng(seed)

    # -- LaTeX in the notation's own names --------------------------------------------------
    @cached_property
    def latex_names(self) -> list[tuple[re.Pattern, str]]:
        """(pattern, code name) for every decorated LaTeX name the notation's profile prints
        (``\\Gamma_f^{\\langle t \\rangle}`` → ``ft``, ``dc_{\\mathrm{next}}`` → ``dc_next``), longest first.
        Spaces inside a name are free; a name is matched whole (not inside a longer one)."""
        try:
            profile = get(self.right.names.notation)
        except NotationError:
            return []
        back = self.right.names.user()
        table = symbol_table(self.derivation.cell, profile, self.derivation)
        found = {}
        for internal, latex in table.items():
            code = back.get(internal) or self._profile_code(profile, internal)
            if code and any(ch in latex for ch in "\\^_{") and latex.strip() != str(code):
                found.setdefault(latex, code)
                found.setdefault(re.sub(r"([_^])\{\s*([A-Za-z0-9])\s*\}", r"\1\2", latex), code)  # c^t for c^{t}
        patterns = []
        for latex in sorted(found, key=len, reverse=True):
            body = r"\s*".join(re.escape(ch) for ch in latex if not ch.isspace())
            patterns.append((re.compile(rf"(?<![A-Za-z\\])(?:{body})(?![A-Za-z0-9_'])"), found[latex]))
        return patterns

    def _profile_code(self, profile, internal: str):
        """The profile's code for a name the notation has no name of its own for, when it is an
        expression of the notation's names (ng's W_f is ``Wf[:, n_a:]``)."""
        code = profile.code(internal)
        if not code.isidentifier():
            try:
                parse_shaped(code, self.shapes, where=code)
                return code
            except FormulaError:
                pass
        symbol = sp.Symbol(internal)
        if symbol not in self.right._table:
            return None
        # an adjoint the notation has no name for (ng's ∂E/∂Γ_o): it stands for its right value
        expr = self.right.to_user(self.right._inline(self.right._table[symbol], set()))
        if not {str(s) for s in expr.free_symbols} <= set(self.shapes):
            return None
        return expr, self.right.internal_shape(internal)

    def read_latex(self, text: str) -> tuple[str, dict, dict]:
        """``text`` with every LaTeX name of the notation's profile written as its code name (text
        only: nothing is evaluated; the result goes through the parser like any formula).  A code
        name that is an expression (ng's ``Wf[:, n_a:]`` for W_{fx}) becomes a placeholder name:
        also returned are the placeholders' shapes and their expressions."""
        shapes, meaning = {}, {}
        for pattern, code in self.latex_names:
            if not pattern.search(text):
                continue
            if isinstance(code, tuple):  # the right value of a name the notation does not have
                expr, shape = code
                placeholder = f"LSQ{len(meaning)}"
                shapes[placeholder], meaning[sp.Symbol(placeholder)] = shape, expr
                code = placeholder
            elif not code.isidentifier():
                expr, shape = parse_shaped(code, self.shapes, where=code)
                placeholder = f"LSQ{len(meaning)}"
                shapes[placeholder], meaning[sp.Symbol(placeholder)] = shape, expr
                code = placeholder
            text = pattern.sub(f" {code} ", text)
        return text, shapes, meaning

    # -- values at random draws -------------------------------------------------------------
    def _draw(self, sizes: dict, exact: bool, last: bool):
        """One draw: (exact env, the same at 60 digits) or a NumPy env."""
        sizes = all_sizes(self.derivation.cell, sizes)
        leaves = random_leaves(self.derivation, sizes, self.rng, exact=exact, batch=1)
        if last:
            leaves.update({k: v * 0 for k, v in leaves.items() if is_next_seed(k)})
        names = self.right.names
        if not exact:
            return user_env(names, state_values(self.derivation, leaves, exact=False), sizes, exact=False)
        digits = state_values(self.derivation, as_floats(leaves, DIGITS), exact=True, digits=DIGITS)
        if len(self.derivation.cell.equations) > EXACT_MAX_EQUATIONS:
            return None, user_env(names, digits, sizes, exact=True)
        exact_values = state_values(self.derivation, leaves, exact=True)
        return user_env(names, exact_values, sizes, exact=True), user_env(names, digits, sizes, exact=True)

    @cached_property
    def draws(self) -> dict[str, list]:
        exact = SCALAR_SIZES if self.scalar else EXACT_SIZES
        floats = SCALAR_SIZES if self.scalar else FLOAT_SIZES
        return {
            "exact": [self._draw(exact, True, False) for _ in range(DRAWS)],
            "last": [self._draw(exact, True, True) for _ in range(LAST_DRAWS)],
            "float": [self._draw(floats, False, False)],
            "float-last": [self._draw(floats, False, True)],
        }

    # -- judging ----------------------------------------------------------------------------
    def judge(self, name: str, expr: sp.Expr) -> Outcome:
        target = sp.Symbol(name)
        runs = {}
        try:
            for k in ("exact", "last"):
                runs[k] = [_compare(expr, target, env) for env in self.draws[k]]
        except ValueShapeError as exc:
            return Outcome("wrong", None, self._shape_fix(target, expr) or str(exc))
        for k in ("float", "float-last"):
            try:
                runs[k] = [_compare(expr, target, env) for env in self.draws[k]]
            except ValueShapeError:
                runs[k] = [(False, None)]
        errors = [e for rs in runs.values() for _, e in rs]
        worst = None if any(e is None for e in errors) else max(errors)
        if all(ok for k in ("exact", "float") for ok, _ in runs[k]):
            return Outcome("holds", worst, "")
        if all(ok for ok, _ in runs["exact"]):
            return Outcome("wrong", worst, (
                f"agrees at hidden {EXACT_SIZES['hidden']}, input {EXACT_SIZES['input']} but not at "
                f"hidden {FLOAT_SIZES['hidden']}, input {FLOAT_SIZES['input']}: is a size written as a number?"))
        diagnosis = diagnose(self.problem(name), self.right.canonical(expr))
        nexts = self.right.next_seeds
        if all(ok for k in ("last", "float-last") for ok, _ in runs[k]) and not expr.has(*nexts):
            when = f"right only when {' and '.join(f'{s} = 0' for s in nexts)}"
            return Outcome("holds-at-last-step", worst,
                           f"{when} (no gradient from step t+1): {diagnosis}" if diagnosis else when)
        return Outcome("wrong", worst, diagnosis)

    def _shape_fix(self, target: sp.Symbol, expr: sp.Expr) -> str:
        """A transposed product that makes the shapes (and the values) right, if there is one."""
        for edited, message in transposed(expr, self.right.show):
            if self.same(edited, target):
                return message
        return ""

    def same(self, a: sp.Expr, b: sp.Expr) -> bool:
        """``a`` and ``b`` are equal at two exact draws."""
        try:
            return all(_exact(a, b, pair)[0] for pair in self.draws["exact"][:2])
        except ValueShapeError:
            return False

    def expected(self, name: str, words: set[str]) -> tuple[str, str]:
        """The right formula (text, LaTeX): in the notation's other quantities when the user's
        formula (its ``words``) names one of them, else in seeds and forward values."""
        if name not in self.quantities:
            return "", ""
        kept = bool(words & set(self.quantities))
        expr = self.right.right(name, kept)
        return ("", "") if expr is None else (self.right.show(expr), self.right.latex(name, kept))

    def problem(self, name: str) -> Problem:
        r = self.right
        inline = {sp.Symbol(q): r.right(q, kept=False) for q in self.quantities}
        inline = {k: v for k, v in inline.items() if v is not None}
        return Problem(name, r.right(name, True) or 0, r.right(name, False) or 0, inline, r.seeds,
                       r.chain(name), r.activations, r.preactivations, self.same, r.show)


def _compare(expr, target, env) -> tuple[bool, float | None]:
    """(equal, relative error) of ``expr`` and the right value of ``target`` at one draw."""
    if isinstance(env, tuple):
        return _exact(expr, target, env)
    with np.errstate(all="ignore"):  # exp(exp(16)) overflows: the comparison says so, not a warning
        got, want = numpy_value(expr, env), env[target]
        if np.shape(got) not in ((), np.shape(want)):
            raise ValueShapeError(f"shape mismatch: the formula is {_dims(np.shape(got))}, "
                                  f"the quantity {_dims(np.shape(want))}")
        err = float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-300))
    return (bool(err <= FLOAT_RTOL), err if np.isfinite(err) else None)


def _dims(shape) -> str:
    return "×".join(str(n) for n in shape) or "a scalar"


def _matrix(value, like: sp.Matrix) -> sp.Matrix:
    return value if isinstance(value, sp.MatrixBase) else like.applyfunc(lambda _: value)


def _exact(a, b, pair) -> tuple[bool, float | None]:
    """Compare ``a`` and ``b`` (expressions or the Symbol of a quantity) at one exact draw:
    ``expand`` of the rational difference when it cannot blow up, else the same draw at 60 digits
    (the only comparison for a large cell, whose exact values are not computed)."""
    exact, digits = pair
    if exact is not None:
        values = [evaluate(e, exact, opaque=True) for e in (a, b)]
        like = next((v for v in values if isinstance(v, sp.MatrixBase)), sp.Matrix([[0]]))
        got, want = _same_shape(values, like)
        if all(expansion_bound(e) <= MAX_TERMS for e in (a, b)):
            if all(sp.expand(g - w, deep=False) == 0 for g, w in zip(got, want, strict=True)):
                return True, 0.0
    values = [evaluate(e, digits, DIGITS) for e in (a, b)]
    like = next((v for v in values if isinstance(v, sp.MatrixBase)), sp.Matrix([[0]]))
    got, want = _same_shape(values, like)
    try:
        diff = max(abs(complex(g - w)) for g, w in zip(got, want, strict=True))
        scale = max(abs(complex(w)) for w in want)
    except (TypeError, ValueError):
        return False, None
    if not np.isfinite(diff):
        return False, None
    precise = max(sp.Abs(g - w) for g, w in zip(got, want, strict=True))
    return bool(precise <= EQUAL * max(scale, 1.0)), diff / max(scale, 1e-300)


def _same_shape(values, like) -> tuple[sp.Matrix, sp.Matrix]:
    got, want = (_matrix(v, like) for v in values)
    if got.shape != want.shape:
        raise ValueShapeError(f"shape mismatch: the formula is {_dims(got.shape)}, the quantity {_dims(want.shape)}")
    return got, want
