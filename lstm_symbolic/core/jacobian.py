"""Step Jacobians ds_t/ds_{t-1} of the memory state as matrix expressions (Cell → Jacobian).

Forward mode over the ordered equations: each quantity's Jacobian w.r.t. the previous
memory is a sum of products of ``diag(·)``, weight matrices and, where a reduction across the
units lies on the path, its rank-one ``(1/n) 1 1ᵀ`` (a mean) or ``1 1ᵀ`` (a sum).  Two meanings,
always kept apart (DESIGN.md):

* **partial** - every other previous state (h_{t-1}) held fixed: diag(f_t) for the LSTM;
* **total** - h_{t-1} moves with c_{t-1} through the output equation of step t-1, which adds
  one ``diag(∂c_t/∂z) U diag(∂h_{t-1}/∂c_{t-1})`` term per gate that reads h_{t-1}
  (the p + q + r + s of the usual product-rule expansion).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import sympy as sp

from .. import naming
from .cells import Cell
from .derive import elementwise_operands, local_derivative
from .functions import Reduction, Units, linear_atoms, unit_mean, unit_sum


@dataclass(frozen=True, init=False)
class Diag:
    """``diag(expr)``: the Jacobian of an element-wise map.  A product of diagonals keeps its
    factors (``parts``) and multiplies them once, when ``expr`` is read: multiplying as the
    sweep goes would re-sort a growing product at every equation (quadratic in a long chain)."""

    parts: tuple[sp.Expr, ...]

    def __init__(self, *parts: sp.Expr):
        object.__setattr__(self, "parts", tuple(p for p in parts if p != 1))

    def times(self, other: Diag) -> Diag:
        """``self · other``: their factors side by side (each side already without 1s)."""
        product = Diag()
        object.__setattr__(product, "parts", self.parts + other.parts)
        return product

    @cached_property
    def expr(self) -> sp.Expr:
        return sp.Mul(*self.parts)


@dataclass(frozen=True)
class Ones:
    """``(1/n) 1 1ᵀ`` (``mean``) or ``1 1ᵀ``: the Jacobian of a reduction across the n units, broadcast back
    where a vector reads it (every unit moves every other alike).  A per-example scalar's Jacobian is kept
    as its broadcast's, so a product of these stays square."""

    mean: bool

    def reduce(self, expr: sp.Expr) -> sp.Expr:
        """The reduction itself: ``1ᵀ diag(x) 1 / n`` = mean(x), and mean(1) = 1, sum(1) = n; a number
        comes out of it."""
        coeff, expr = sp.sympify(expr).as_coeff_Mul()  # mean(2 v) = 2 mean(v)
        if expr == 1:
            return coeff if self.mean else coeff * Units()
        return coeff * (unit_mean(expr) if self.mean else unit_sum(expr))


@dataclass(frozen=True)
class Term:
    """A product of factors (Diag, Ones or a weight Symbol), left to right; () is the identity."""

    factors: tuple

    def then(self, factor) -> Term:
        """``factor · self``, merging adjacent diagonals, dropping diag(1), and folding a reduction of a
        broadcast reduction into a scalar: ``R diag(x) R' = red_R(x) R'`` (``R R' = red_R(1) R'``)."""
        if isinstance(factor, Diag) and not factor.parts:
            return self
        if isinstance(factor, Ones) and self.factors:
            head = self.factors[0]
            if isinstance(head, Ones):
                return self.then(Diag(factor.reduce(sp.S.One)))
            if isinstance(head, Diag) and len(self.factors) > 1 and isinstance(self.factors[1], Ones):
                return Term(self.factors[1:]).then(Diag(factor.reduce(head.expr)))
        if isinstance(factor, Diag) and self.factors and isinstance(self.factors[0], Diag):
            merged = factor.times(self.factors[0])
            return Term((merged,) + self.factors[1:]) if merged.parts else Term(self.factors[1:])
        return Term((factor,) + self.factors)

    @property
    def is_diagonal(self) -> bool:
        return all(isinstance(f, Diag) for f in self.factors)


@dataclass(frozen=True)
class Jacobian:
    """``of`` w.r.t. ``wrt`` as a sum of terms; ``total`` says which meaning."""

    of: str
    wrt: str
    terms: tuple[Term, ...]
    total: bool

    @property
    def diagonal(self) -> sp.Expr | None:
        """The diagonal's expression when the Jacobian is diagonal, else None."""
        if not all(t.is_diagonal for t in self.terms):
            return None
        return sp.Add(*[_diag_value(t) for t in self.terms])


def _diag_value(term: Term) -> sp.Expr:
    return sp.Mul(*[f.expr for f in term.factors]) if term.factors else sp.Integer(1)


def _split(term: Term) -> tuple[sp.Expr, tuple]:
    """(leading diagonal value, the factors after it)."""
    if term.factors and isinstance(term.factors[0], Diag):
        return term.factors[0].expr, term.factors[1:]
    return sp.Integer(1), term.factors


def _simplify(terms: list[Term]) -> list[Term]:
    """Sum the terms that share every factor after their leading diagonal (all purely diagonal
    terms become one); the sums keep the order of first appearance, purely diagonal first."""
    if len(terms) == 1:  # nothing to sum (and zero factors were left out): keep the factors apart
        return terms
    sums: dict[tuple, sp.Expr] = {}
    for t in sorted(terms, key=lambda t: not t.is_diagonal):
        lead, tail = _split(t)
        sums[tail] = sums.get(tail, sp.Integer(0)) + lead
    return [Term(tail).then(Diag(lead)) for tail, lead in sums.items() if lead != 0]


def _forward_mode(cell: Cell, start: dict[sp.Symbol, list[Term]], stop: str) -> list[Term]:
    """Propagate Jacobians from ``start`` through the equations up to ``stop``."""
    jac = dict(start)
    for eq in cell.equations:
        if eq.lhs in start:
            continue
        terms: list[Term] = []
        if isinstance(eq.rhs, Reduction):
            terms += [t.then(Ones(eq.rhs.mean)) for t in jac.get(eq.rhs.args[0], [])]
        for a in (a for a in elementwise_operands(cell, eq.rhs) if a in jac):
            local = local_derivative(cell, eq.rhs, a)
            terms += [t.then(Diag(local)) for t in jac[a]] if local != 0 else []
        for atom in linear_atoms(eq.rhs):
            w, v = atom.args
            local = local_derivative(cell, eq.rhs, atom) if v in jac else 0
            terms += [t.then(w).then(Diag(local)) for t in jac[v]] if local != 0 else []
        jac[eq.lhs] = _simplify(terms)
        if eq.lhs.name == stop:
            return jac[eq.lhs]
    raise KeyError(stop)


def _vanishes(cell: Cell, term: Term) -> bool:
    """A term with a diagonal that is 0 once the states in it are written by their equations: an sLSTM's
    h = o c / n does not move with the stabiliser m, since c and n scale by the same exp(-m), but ∂h/∂m
    in stored values is o (∂c/∂m) / n - o c (∂n/∂m) / n², with ∂c/∂m = -c and ∂n/∂m = -n."""
    rhs = {eq.lhs: eq.rhs for eq in cell.equations if eq.lhs.name in cell.states}
    return any(isinstance(f, Diag) and sp.cancel(f.expr.xreplace(rhs)) == 0 for f in term.factors)


def jacobian(cell: Cell, total: bool = False) -> Jacobian:
    """d memory_t / d memory_{t-1}, partial or total."""
    mem, out = cell.memory, cell.output
    start = {sp.Symbol(naming.prev(mem)): [Term(())]}
    if total and out != mem:
        within = [t for t in _forward_mode(cell, {sp.Symbol(mem): [Term(())]}, out) if not _vanishes(cell, t)]
        # step t-1's values: its quantities become <name>_prev, and the states it read (an sLSTM's c_prev
        # in dh/dm) <name>_prev_prev, the values of step t-2
        names = [q.name for q in cell.quantities if q.kind != "param"]
        start[sp.Symbol(naming.prev(out))] = [
            Term(tuple(Diag(naming.shift_back(f.expr, names)) if isinstance(f, Diag) else f
                       for f in t.factors))
            for t in within
        ]
    terms = _forward_mode(cell, start, mem)
    return Jacobian(mem, naming.prev(mem), tuple(terms), total and out != mem)
