"""The derivation: a reverse sweep over a cell's equations (Cell → Derivation).

For each equation ``y = rhs``, taken last to first, the adjoint ``d_y`` is complete (every
use of y comes later in the forward order) and is passed on by the chain rule:

* element-wise operand a:  ``d_a += d_y ⊙ ∂rhs/∂a``  (the Jacobian is diagonal);
* linear atom ``W @ v``:    ``d_W += d_lin v^T``  and  ``d_v += W^T d_lin``, where
  ``d_lin = d_y ⊙ ∂rhs/∂(W v)`` (just ``d_y`` for a pre-activation);
* reduction across the units ``r = sum(v)`` / ``r = mean(v)`` (a per-example scalar):
  ``d_v += d_r`` / ``d_v += d_r / n``, broadcast over the units; and where a scalar ``a`` is read by
  a vector equation (it broadcast), its adjoint sums the vector's back: ``d_a += sum(d_y ⊙ ∂rhs/∂a)``.

Local derivatives are written in stored forward values: ``σ(z_f)`` becomes ``f``.  Each
contribution is kept as a :class:`Step` so that the derivation can be printed step by step.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import sympy as sp

from .. import naming
from .cells import Cell
from .functions import MatTVec, MatVec, Outer, Reduction, Units, elementwise_diff, linear_atoms, unit_mean, unit_sum


@dataclass(frozen=True)
class Step:
    """One chain-rule step: the adjoint of ``target`` receives ``term``.

    ``kind`` is ``"elementwise"`` (term = d_via ⊙ local, local = ∂via/∂target),
    ``"matvec"`` (term = W^T d_lin, local = W), ``"outer"`` (term = d_lin v^T, local = v),
    ``"spread"`` (via is a reduction of target: term = d_via · local, local = 1 or 1/n, broadcast) or
    ``"gather"`` (target is a scalar a vector via read: term = sum(d_via ⊙ local)).
    """

    target: sp.Symbol
    via: sp.Symbol
    local: sp.Expr
    kind: str
    term: sp.Expr


@dataclass(frozen=True)
class Adjoint:
    """``name = rhs``: the gradient of the loss w.r.t. ``of`` within one step."""

    of: sp.Expr
    name: sp.Symbol
    rhs: sp.Expr
    steps: tuple[Step, ...]
    seed: sp.Symbol | None = None


@dataclass(frozen=True)
class ParamGrad:
    """A parameter's gradient contribution for one step and one example.

    ``kind`` is ``"matrix"`` (a sum of outer products) or ``"vector"`` (element-wise);
    the layer gradient is its sum over time and batch.
    """

    param: sp.Symbol
    name: sp.Symbol
    rhs: sp.Expr
    kind: str
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Linear:
    """One ``W @ v`` of the forward pass and the adjoint ``d_lin`` that reaches it."""

    atom: MatVec
    adjoint: sp.Symbol

    @property
    def weight(self) -> sp.Symbol:
        return self.atom.args[0]

    @property
    def operand(self) -> sp.Symbol:
        return self.atom.args[1]


@dataclass(frozen=True)
class Derivation:
    """The backward pass of one step: adjoints in the order they are computed."""

    cell: Cell
    seeds: Mapping[str, sp.Symbol]  # read-only: derivations are cached and shared
    adjoints: tuple[Adjoint, ...]
    param_grads: tuple[ParamGrad, ...]
    linears: tuple[Linear, ...]

    def adjoint_of(self, name: str) -> Adjoint:
        for adj in self.adjoints:
            if adj.of == sp.Symbol(name):
                return adj
        raise KeyError(name)

    @property
    def input_adjoints(self) -> tuple[Adjoint, ...]:
        """d_x for each input and d_<s>_prev for each state, in declaration order."""
        names = [q.name for q in self.cell.inputs] + [naming.prev(s) for s in self.cell.states]
        return tuple(self.adjoint_of(n) for n in names)


def stored_values(cell: Cell) -> dict[sp.Expr, sp.Symbol]:
    """``{σ(z_f): f, tanh(z_c): c_tilde, ...}``: function applications the forward pass keeps."""
    return dict(cell.stored)


def local_derivative(cell: Cell, rhs: sp.Expr, wrt: sp.Expr) -> sp.Expr:
    """∂rhs/∂wrt written in stored forward values (σ'(z_f) → f ⊙ (1 − f))."""
    return elementwise_diff(rhs, wrt).xreplace(cell.stored)


def elementwise_operands(cell: Cell, rhs: sp.Expr) -> list[sp.Symbol]:
    """Symbols read element-wise by ``rhs`` (not inside a MatVec), in declaration order.  (Each MatVec
    stands in as a fresh symbol: as 0 it would take ``g`` out of ``g * (W @ x)``.)"""
    stand_ins = {a: sp.Dummy() for a in rhs.atoms(MatVec, Reduction)}
    return cell.in_order(rhs.xreplace(stand_ins).free_symbols - set(stand_ins.values()))


@functools.cache
def derive(cell: Cell) -> Derivation:
    """The reverse sweep over ``cell``'s equations (once per cell and process: the result is frozen)."""
    used = {s.name for eq in cell.equations for s in eq.rhs.free_symbols}
    seeds = {s: sp.Symbol(naming.seed(s, s in used)) for s in cell.states}
    params = {p.symbol for p in cell.params}
    pending: dict[sp.Symbol, list[Step]] = defaultdict(list)
    adjoints: list[Adjoint] = []
    linears: list[Linear] = []
    for eq in reversed(cell.equations):
        adj = _collect(eq.lhs, pending.pop(eq.lhs, []), seeds.get(eq.lhs.name))
        if adj is None:
            continue
        adjoints.append(adj)
        for step in _elementwise_steps(cell, eq.lhs, eq.rhs, adj.name):
            pending[step.target].append(step)
        if isinstance(eq.rhs, Reduction):
            v, local = eq.rhs.args[0], (1 / Units() if isinstance(eq.rhs, unit_mean) else sp.S.One)
            pending[v].append(Step(v, eq.lhs, local, "spread", adj.name * local))
        for atom in linear_atoms(eq.rhs):
            d_lin = _linear_adjoint(cell, eq.lhs, eq.rhs, atom, adj.name, adjoints)
            linears.append(Linear(atom, d_lin))
            w, v = atom.args
            pending[w].append(Step(w, eq.lhs, v, "outer", Outer(d_lin, v)))
            pending[v].append(Step(v, eq.lhs, w, "matvec", MatTVec(w, d_lin)))
    for q in cell.quantities:
        if q.kind in ("input", "state"):
            steps = pending.pop(q.symbol, [])
            adjoints.append(Adjoint(q.symbol, sp.Symbol(naming.adjoint(q.name)), _sum(steps), tuple(steps)))
    grads = []
    for p in cell.params:
        steps = pending.pop(p.symbol, [])
        kind = "matrix" if len(p.shape) == 2 else "vector"
        grads.append(ParamGrad(p.symbol, sp.Symbol(naming.adjoint(p.name)), _sum(steps), kind, tuple(steps)))
    assert not pending or set(pending) <= params, pending
    return Derivation(cell, MappingProxyType(seeds), tuple(adjoints), tuple(grads), tuple(linears))


def _sum(steps: list[Step]) -> sp.Expr:
    """The steps' terms added up, the sums across units as one (``sum(a) + sum(b)`` is ``sum(a + b)``)."""
    gathered = [s.term.args[0] for s in steps if s.kind == "gather"]
    rest = [s.term for s in steps if s.kind != "gather"]
    return sp.Add(*rest, *([unit_sum(sp.Add(*gathered))] if gathered else []))


def _collect(y: sp.Symbol, steps: list[Step], seed: sp.Symbol | None) -> Adjoint | None:
    """The adjoint of ``y`` from the steps that reach it (None for a value nothing reads)."""
    if not steps and seed is None:
        return None
    if not steps:
        return Adjoint(y, seed, seed, (), seed)
    rhs = (seed if seed is not None else 0) + _sum(steps)
    return Adjoint(y, sp.Symbol(naming.adjoint(y.name)), rhs, tuple(steps), seed)


def _elementwise_steps(cell: Cell, y: sp.Symbol, rhs: sp.Expr, d_y: sp.Symbol) -> list[Step]:
    steps, scalars = [], cell.scalars
    for a in elementwise_operands(cell, rhs):
        local = local_derivative(cell, rhs, a)
        if local != 0 and a in scalars and y not in scalars:  # a broadcast: its adjoint sums the units
            steps.append(Step(a, y, local, "gather", unit_sum(d_y * local)))
        elif local != 0:
            steps.append(Step(a, y, local, "elementwise", d_y * local))
    return steps


def _linear_adjoint(cell: Cell, y: sp.Symbol, rhs, atom, d_y, adjoints: list[Adjoint]) -> sp.Symbol:
    """``d_y`` itself for a pre-activation; otherwise a named auxiliary adjoint."""
    local = local_derivative(cell, rhs, atom)
    if local == 1:
        return d_y
    w, v = atom.args
    name = sp.Symbol(naming.adjoint(f"{w.name}_{v.name}"))
    step = Step(atom, y, local, "elementwise", d_y * local)
    adjoints.append(Adjoint(atom, name, d_y * local, (step,)))
    return name
