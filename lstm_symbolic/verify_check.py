"""The judge of one formula (part of ``verify``): random draws, exact and float comparison.

A :class:`Checker` is built once per formula file: the derivation, the notation's names and
shapes, the right formulas in the user's names, and the values of every name at several
random draws (exact rationals at hidden 2 / input 3, floats at hidden 4 / input 5; hidden =
input = 1 for ``scalar``).  :meth:`Checker.judge` gives a verdict and a diagnosis.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import sympy as sp
from sympy.printing.latex import LatexPrinter

from .cells import Cell
from .derive import derive, stored_values
from .formula_values import ColumnSlice
from .functions import LINEAR_ATOMS, MatTVec, MatVec, Outer
from .printing.text import text
from .verify_diagnose import MAX_TERMS, Problem, diagnose, expansion_bound, transposed
from .verify_eval import (
    ValueShapeError,
    as_floats,
    component_value,
    numpy_value,
    random_leaves,
    state_values,
    sympy_cols,
    sympy_rows,
    user_env,
)
from .verify_names import is_next_seed, names_for

EXACT_SIZES = {"hidden": 2, "input": 3}
FLOAT_SIZES = {"hidden": 4, "input": 5}
SCALAR_SIZES = {"hidden": 1, "input": 1}
DRAWS = 3  # exact draws, all dc_next ≠ 0
LAST_DRAWS = 2  # exact draws with dc_next = 0
DIGITS = 60
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
        self.cell, self.scalar = cell, scalar
        self.derivation = derive(cell)
        seeds = {s: str(v) for s, v in self.derivation.seeds.items()}
        grads = tuple(str(a.name) for a in self.derivation.adjoints) + tuple(
            str(g.name) for g in self.derivation.param_grads)
        self.names = names_for(notation, cell, seeds, grads)
        if scalar:
            self.names = type(self.names)(**{**self.names.__dict__, "stacked": {}})
        self.quantities = tuple(q for q in self.names.quantities if self.names.internal(q))
        self.rng = np.random.default_rng(seed)
        self.shapes = self._shapes()

    def symbol(self, name: str) -> sp.Symbol:
        return sp.Symbol(name)

    # -- names and shapes -------------------------------------------------------------------
    def _internal_shape(self, name: str) -> tuple[str, ...]:
        known = {q.name: q.shape for q in self.cell.quantities}
        while name not in known and name.startswith("d_"):
            name = name[2:]
        return known.get(name, ("hidden",))

    def _shapes(self) -> dict[str, tuple]:
        n = self.names
        if self.scalar:
            return {name: () for name in [*n.renames, *n.sizes]}
        shapes = {user: self._internal_shape(name) for user, name in n.renames.items()}
        for user, (how, parts) in n.stacked.items():
            shapes[user] = self._stack_shape(how, parts)
        shapes.update({user: () for user in n.sizes})
        return shapes

    def _stack_shape(self, how: str, parts: tuple[str, ...]) -> tuple[str, ...]:
        shapes = [self._internal_shape(p) for p in parts]
        if how == "rows":
            return ("+".join(s[0] for s in shapes),)
        return (shapes[0][0], "+".join(s[1] for s in shapes))

    # -- values at random draws -------------------------------------------------------------
    def _user(self, values: dict, sizes: dict, exact: bool) -> dict:
        if exact:
            return user_env(self.names, values, sizes, rows=sympy_rows, cols=sympy_cols)
        return user_env(self.names, values, sizes, rows=np.vstack, cols=np.hstack)

    def _draw(self, sizes: dict, exact: bool, last: bool):
        """One draw: (exact env, the same at 60 digits) or a NumPy env."""
        leaves = random_leaves(self.derivation, sizes, self.rng, exact=exact, batch=1)
        if last:
            leaves.update({k: v * 0 for k, v in leaves.items() if is_next_seed(k)})
        if not exact:
            return self._user(state_values(self.derivation, leaves, exact=False), sizes, False)
        exact_values = state_values(self.derivation, leaves, exact=True)
        digits = state_values(self.derivation, as_floats(leaves, DIGITS), exact=True)
        return self._user(exact_values, sizes, True), self._user(digits, sizes, True)

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
        target = self.symbol(name)
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
        holds = all(ok for k in ("exact", "float") for ok, _ in runs[k])
        if holds:
            return Outcome("holds", worst, "")
        last = all(ok for k in ("last", "float-last") for ok, _ in runs[k])
        if all(ok for ok, _ in runs["exact"]):
            note = (f"agrees at hidden {EXACT_SIZES['hidden']}, input {EXACT_SIZES['input']} but not at "
                    f"hidden {FLOAT_SIZES['hidden']}, input {FLOAT_SIZES['input']}: is a size written as a number?")
            return Outcome("wrong", worst, note)
        diagnosis = diagnose(self.problem(name), expr)
        nexts = [s for s in self._seeds if is_next_seed(self.names.renames[s.name])]
        if last and not expr.has(*nexts):
            note = " and ".join(f"{s} = 0" for s in nexts)
            return Outcome("holds-at-last-step", worst, f"right only when {note} (no gradient from "
                           f"step t+1): {diagnosis}" if diagnosis else f"right only when {note}")
        return Outcome("wrong", worst, diagnosis)

    def _shape_fix(self, target: sp.Symbol, expr: sp.Expr) -> str:
        """A transposed product that makes the shapes (and the values) right, if there is one."""
        for edited, message in transposed(expr, self.show):
            if self.same(edited, target):
                return message
        return ""

    @cached_property
    def _seeds(self) -> tuple[sp.Symbol, ...]:
        back = self.names.user()
        return tuple(sp.Symbol(back[str(s)]) for s in self.derivation.seeds.values() if str(s) in back)

    def same(self, a: sp.Expr, b: sp.Expr) -> bool:
        """``a`` and ``b`` are equal at two exact draws."""
        try:
            return all(_exact(a, b, pair)[0] for pair in self.draws["exact"][:2])
        except ValueShapeError:
            return False

    # -- the right formulas in the user's names ---------------------------------------------
    @cached_property
    def _table(self) -> dict:
        d = self.derivation
        table = {a.name: a.rhs for a in d.adjoints if a.name != a.seed}
        table.update({g.name: g.rhs for g in d.param_grads})
        return table

    def _inline(self, expr: sp.Expr, keep: set) -> sp.Expr:
        table = {k: v for k, v in self._table.items() if k not in keep}
        for _ in range(len(table) + 1):
            new = expr.xreplace(table)
            if new == expr:
                break
            expr = new
        return expr

    def right(self, name: str, kept: bool) -> sp.Expr | None:
        """The right formula of a quantity in the user's names (None: cannot be written)."""
        own = {sp.Symbol(p) for p in self.names.internal(name)}
        keep = {sp.Symbol(p) for q in self.quantities for p in self.names.internal(q)} - own if kept else set()
        parts = [self._inline(self._table[sp.Symbol(p)], keep) for p in self.names.internal(name)]
        if len(parts) == 1:
            return self.to_user(parts[0])
        return self._stacked(parts)

    def _stacked(self, parts: list[sp.Expr]) -> sp.Expr | None:
        """``d @ concat.T`` for the stacked gradient [d @ a_prev.T, d @ xt.T]."""
        if not all(isinstance(p, Outer) and p.args[0] == parts[0].args[0] for p in parts):
            return None
        operands = tuple(str(p.args[1]) for p in parts)
        for user, (how, stack) in self.names.stacked.items():
            if how == "rows" and stack == operands:
                return Outer(self.to_user(parts[0].args[0]), sp.Symbol(user))
        return None

    @cached_property
    def _slices(self) -> dict:
        """internal weight → its column slice of a stacked user weight (U_f → Wf[:, :n_a])."""
        slices = {}
        for user, (how, parts) in self.names.stacked.items():
            if how != "cols" or len(parts) != 2:
                continue
            size = self._internal_shape(parts[0])[1]
            n = next((u for u, s in self.names.sizes.items() if s == size), None)
            if n is not None:
                w = sp.Symbol(user)
                slices[sp.Symbol(parts[0])] = ColumnSlice.of(w, None, sp.Symbol(n))
                slices[sp.Symbol(parts[1])] = ColumnSlice.of(w, sp.Symbol(n), None)
        return slices

    def to_user(self, expr: sp.Expr) -> sp.Expr:
        """An internal expression in the user's names."""
        slices = self._slices
        expr = expr.replace(lambda e: isinstance(e, (MatVec, MatTVec)) and e.args[0] in slices,
                            lambda e: type(e)(slices[e.args[0]], e.args[1]))
        back = {sp.Symbol(i): sp.Symbol(u) for i, u in self.names.user().items()}
        expr = expr.xreplace(back)
        if self.scalar:
            expr = expr.replace(lambda e: isinstance(e, LINEAR_ATOMS), lambda e: e.args[0] * e.args[1])
        return expr

    @cached_property
    def _rank(self) -> dict:
        order = self.cell.order()
        back = self.names.user()
        return {sp.Symbol(back[s.name]): r for s, r in order.items() if s.name in back}

    def show(self, expr: sp.Expr) -> str:
        return text(expr, self._rank)

    def expected_text(self, name: str, words: set[str]) -> tuple[str, str]:
        """The right formula (text, LaTeX): in the notation's other quantities when the user's
        formula (its ``words``) names one of them, else in seeds and forward values."""
        if name not in self.quantities:
            return "", ""
        expr = self.right(name, kept=bool(words & set(self.quantities)))
        if expr is None:
            return "", ""
        return self.show(expr), _Latex(self.scalar).doprint(expr)

    def problem(self, name: str) -> Problem:
        inline = {sp.Symbol(q): self.right(q, kept=False) for q in self.quantities}
        inline = {k: v for k, v in inline.items() if v is not None}
        acts = {sp.Symbol(self.names.user()[v.name]): type(f)
                for f, v in stored_values(self.cell).items() if v.name in self.names.user()}
        return Problem(name, self.right(name, True) or 0, self.right(name, False) or 0, inline, self._seeds,
                       self._chain(name), acts, self.same, self.show)

    def _chain(self, name: str) -> tuple[sp.Expr, ...]:
        """Products of local derivatives from the quantity up to the first adjoint with a seed or
        several contributions: ft*(1 - ft), then c_prev*ft*(1 - ft) for dft."""
        parts = self.names.internal(name)
        if len(parts) != 1:
            return ()
        by_name = {a.name: a for a in self.derivation.adjoints}
        by_of = {a.of: a for a in self.derivation.adjoints}
        adj, product, chain = by_name.get(sp.Symbol(parts[0])), sp.S.One, []
        while adj is not None and adj.seed is None and len(adj.steps) == 1 and adj.steps[0].kind == "elementwise":
            product *= adj.steps[0].local
            chain.append(self.to_user(product))
            adj = by_of.get(adj.steps[0].via)
        return tuple(chain)


def _compare(expr, target, env) -> tuple[bool, float | None]:
    """(equal, relative error) of ``expr`` and the right value of ``target`` at one draw."""
    if isinstance(env, tuple):
        return _exact(expr, target, env)
    got, want = numpy_value(expr, env), env[target]
    if np.shape(got) not in ((), np.shape(want)):
        raise ValueShapeError(f"shape mismatch: the formula is {_dims(np.shape(got))}, "
                              f"the quantity {_dims(np.shape(want))}")
    with np.errstate(all="ignore"):
        err = float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-300))
    return (bool(err <= FLOAT_RTOL), err if np.isfinite(err) else None)


def _dims(shape) -> str:
    return "×".join(str(n) for n in shape) or "a scalar"


def _matrix(value, like: sp.Matrix) -> sp.Matrix:
    return value if isinstance(value, sp.MatrixBase) else like.applyfunc(lambda _: value)


def _exact(a, b, pair) -> tuple[bool, float | None]:
    """Compare ``a`` and ``b`` (expressions or the Symbol of a quantity) at one exact draw:
    ``expand`` of the rational difference when it cannot blow up, else the same draw at 60 digits."""
    exact, digits = pair
    values = [component_value(e, exact) for e in (a, b)]
    like = next((v for v in values if isinstance(v, sp.MatrixBase)), sp.Matrix([[0]]))
    got, want = (_matrix(v, like) for v in values)
    if got.shape != want.shape:
        raise ValueShapeError(f"shape mismatch: the formula is {_dims(got.shape)}, the quantity {_dims(want.shape)}")
    if all(expansion_bound(e) <= MAX_TERMS for e in (a, b)):
        if all(sp.expand(g - w) == 0 for g, w in zip(got, want, strict=True)):
            return True, 0.0
    got, want = (_matrix(component_value(e, digits), like) for e in (a, b))
    try:
        diff = max(abs(complex(g - w)) for g, w in zip(got, want, strict=True))
        scale = max(abs(complex(w)) for w in want)
    except (TypeError, ValueError):
        return False, None
    if not np.isfinite(diff):
        return False, None
    precise = max(sp.Abs(g - w) for g, w in zip(got, want, strict=True))
    return bool(precise <= EQUAL * max(scale, 1.0)), diff / max(scale, 1e-300)


class _Latex(LatexPrinter):
    """SymPy's LaTeX with the linear atoms, σ, slices and batch sums; ⊙ between vectors."""

    def __init__(self, scalar: bool):
        super().__init__({"mul_symbol": "dot" if scalar else r" \odot "})

    def _print_MatVec(self, expr):
        return f"{self._print(expr.args[0])} {self.parenthesize(expr.args[1], 50)}"

    def _print_MatTVec(self, expr):
        return f"{self._print(expr.args[0])}^\\top {self.parenthesize(expr.args[1], 50)}"

    def _print_Outer(self, expr):
        return f"{self.parenthesize(expr.args[0], 50)} {self._print(expr.args[1])}^\\top"

    def _print_ColumnSlice(self, expr):
        ends = ["" if e is None else self._print(e) for e in (expr.start, expr.stop)]
        return f"{self._print(expr.matrix)}_{{[:,\\,{ends[0]}:{ends[1]}]}}"

    def _print_sigmoid(self, expr, exp=None):
        tex = f"\\sigma\\left({self._print(expr.args[0])}\\right)"
        return f"{tex}^{{{exp}}}" if exp else tex

    def _print_BatchSum(self, expr):
        return f"\\sum_{{\\text{{batch}}}} {self.parenthesize(expr.args[0], 50)}"
