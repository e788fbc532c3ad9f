"""Cells: ordered single-assignment equations over vector quantities (spec → Cell).

A :class:`Cell` is the input of the derivation.  Its quantities are SymPy symbols, one
component each; its equations are assigned in order, each exactly once.  For a state
``s`` the cell reads ``s_prev`` and must assign ``s``.  Shapes are tuples of size names:
``"hidden"``, ``"input"`` and any size the cell declares beyond them (``"proj"``); a state has the
hidden size unless the cell gives it another.  ``()`` is a per-example scalar (a reduction across the
hidden units, ``mu = mean(a)``, or arithmetic on such scalars), which broadcasts when it meets a vector.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import sympy as sp

from ..errors import UserError
from .functions import MatVec, Reduction, Units, check_primitives

SIZES = ("hidden", "input")
# The component-level oracle's sizes (hidden 2, input 3); a size a cell declares beyond them is 2.
ORACLE_SIZES = {"hidden": 2, "input": 3}


class CellError(UserError, ValueError):
    """A cell is not well formed (unknown name, reassignment, shape mismatch, ...)."""


@dataclass(frozen=True)
class Quantity:
    """A named vector or matrix: an input, a previous state, a parameter or an intermediate."""

    name: str
    kind: str  # "input" | "state" | "param" | "intermediate"
    shape: tuple[str, ...]

    @property
    def symbol(self) -> sp.Symbol:
        return sp.Symbol(self.name)


@dataclass(frozen=True)
class Equation:
    """``lhs = rhs``, element-wise apart from MatVec atoms."""

    lhs: sp.Symbol
    rhs: sp.Expr


@dataclass(frozen=True)
class Cell:
    """One recurrent step.  ``states[0]`` is the output (h); ``states[-1]`` is the memory
    whose step Jacobian (dc_t/dc_{t-1}, or dh_t/dh_{t-1} for a GRU) is reported."""

    name: str
    description: str
    inputs: tuple[Quantity, ...]
    states: tuple[str, ...]
    params: tuple[Quantity, ...]
    equations: tuple[Equation, ...]
    sizes: tuple[str, ...] = SIZES  # every size a shape may name: hidden, input, then the cell's own
    state_sizes: tuple[tuple[str, str], ...] = ()  # (state, size) of each state not of the hidden size

    def state_shape(self, state: str) -> tuple[str]:
        """The shape of state ``state`` (and of ``state_prev``): ``("hidden",)`` unless declared."""
        return (dict(self.state_sizes).get(state, "hidden"),)

    def oracle_sizes(self) -> dict[str, int]:
        """Small sizes for the component-level oracle: hidden 2, input 3, every other size 2."""
        return {size: ORACLE_SIZES.get(size, 2) for size in self.sizes}

    @property
    def output(self) -> str:
        return self.states[0]

    @property
    def memory(self) -> str:
        return self.states[-1]

    def prev(self, state: str) -> sp.Symbol:
        return sp.Symbol(f"{state}_prev")

    @cached_property
    def quantities(self) -> tuple[Quantity, ...]:
        """Every named quantity in declaration order: inputs, previous states, parameters,
        then the assigned values in equation order (computed once per cell)."""
        prevs = tuple(Quantity(f"{s}_prev", "state", self.state_shape(s)) for s in self.states)
        shapes = self._known_shapes()
        assigned = tuple(Quantity(eq.lhs.name, "intermediate", shapes[eq.lhs.name]) for eq in self.equations)
        return self.inputs + prevs + self.params + assigned

    def _known_shapes(self) -> dict[str, tuple[str, ...]]:
        shapes = {q.name: q.shape for q in self.inputs + self.params}
        shapes.update({f"{s}_prev": self.state_shape(s) for s in self.states})
        for eq in self.equations:
            shapes[eq.lhs.name] = _shape_of(eq.rhs, shapes)
        return shapes

    def shape(self, name: str) -> tuple[str, ...]:
        return self._known_shapes()[name]

    def order(self) -> dict[sp.Symbol, int]:
        """Declaration rank of every symbol: the one order used whenever symbols are listed."""
        return dict(self._rank)

    @cached_property
    def _rank(self) -> dict[sp.Symbol, int]:
        return {q.symbol: k for k, q in enumerate(self.quantities)}

    def in_order(self, symbols) -> list[sp.Symbol]:
        """``symbols`` sorted in declaration order (without copying the ranks: called per equation)."""
        return sorted(symbols, key=self._rank.__getitem__)

    @cached_property
    def scalars(self) -> frozenset[sp.Symbol]:
        """The per-example scalars (reductions across the units, and arithmetic on them)."""
        return frozenset(sp.Symbol(n) for n, shape in self._known_shapes().items() if shape == ())

    @cached_property
    def stored(self) -> dict[sp.Expr, sp.Symbol]:
        """``{σ(z_f): f, tanh(z_c): c_tilde, ...}``: function applications the forward pass keeps
        (computed once per cell; read-only by convention)."""
        return {eq.rhs: eq.lhs for eq in self.equations
                if isinstance(eq.rhs, sp.Function) and not isinstance(eq.rhs, (MatVec, Reduction))}

    def equation(self, name: str) -> Equation:
        for eq in self.equations:
            if eq.lhs.name == name:
                return eq
        raise KeyError(name)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)


def _shape_of(expr: sp.Expr, shapes: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Shape of an element-wise expression; raises CellError on a mismatch."""
    found: set[tuple[str, ...]] = set()
    for atom in expr.atoms(MatVec):
        w, v = atom.args
        w_shape, v_shape = shapes[w.name], shapes[v.name]
        if len(w_shape) != 2 or v_shape != (w_shape[1],):
            raise CellError(
                f"shape mismatch in {w.name} @ {v.name}: {w.name} is {'×'.join(w_shape)}, "
                f"{v.name} is {'×'.join(v_shape)}"
            )
        found.add((w_shape[0],))
    scalar = bool(expr.atoms(Reduction, Units))
    for atom in expr.atoms(Reduction):
        if not isinstance(atom.args[0], sp.Symbol) or shapes[atom.args[0].name] != ("hidden",):
            raise CellError(f"{type(atom).__name__}: a reduction runs over a named hidden-sized vector, "
                            f"not {atom.args[0]}")
    opaque = expr.xreplace({a: sp.Integer(0) for a in expr.atoms(MatVec, Reduction)})
    for sym in opaque.free_symbols:
        shape = shapes[sym.name]
        if len(shape) == 2:
            raise CellError(f"matrix {sym.name} used element-wise; write {sym.name} @ v")
        scalar = scalar or shape == ()
        found |= {shape} - {()}
    if len(found) > 1:
        listed = ", ".join(sorted("×".join(s) for s in found))
        raise CellError(f"element-wise operands of different sizes ({listed}) in {expr}")
    return found.pop() if found else () if scalar else ("hidden",)


def make_cell(
    name: str,
    description: str,
    *,
    inputs: dict[str, tuple[str, ...]],
    states: tuple[str, ...],
    params: dict[str, tuple[str, ...]],
    equations: list[tuple[str, sp.Expr]],
    sizes: tuple[str, ...] = (),
    state_sizes: dict[str, str] | None = None,
) -> Cell:
    """Build and check a cell: every name known, defined before use, assigned once.  ``sizes``: the
    sizes beyond hidden and input; ``state_sizes``: the size of each state not of the hidden size."""
    cell = Cell(
        name=name,
        description=description,
        inputs=tuple(Quantity(n, "input", s) for n, s in inputs.items()),
        states=tuple(states),
        params=tuple(Quantity(n, "param", s) for n, s in params.items()),
        equations=tuple(Equation(sp.Symbol(lhs), rhs) for lhs, rhs in equations),
        sizes=SIZES + tuple(s for s in sizes if s not in SIZES),
        state_sizes=tuple((s, n) for s, n in (state_sizes or {}).items() if n != "hidden"),
    )
    check_cell(cell)
    return cell


def check_cell(cell: Cell) -> None:
    """Raise CellError on the first thing that makes ``cell`` unusable."""
    known = {q.name for q in cell.inputs + cell.params} | {f"{s}_prev" for s in cell.states}
    for q in cell.inputs + cell.params:
        if set(q.shape) - set(cell.sizes):
            raise CellError(f"{q.name}: unknown size in shape {q.shape}; use {'/'.join(cell.sizes)}")
    for state, size in cell.state_sizes:
        if state not in cell.states or size not in cell.sizes:
            raise CellError(f"state size {state} = {size}: {state} must be a state and {size} a declared size")
    for eq in cell.equations:
        check_primitives(eq.rhs)
        if eq.rhs.atoms(Reduction) and not isinstance(eq.rhs, Reduction):
            raise CellError(f"{eq.lhs.name}: write a reduction as an equation of its own "
                            f"({eq.lhs.name}_mean = mean(v)) and use its name")
        for atom in eq.rhs.atoms(MatVec):
            if not all(isinstance(a, sp.Symbol) for a in atom.args):
                raise CellError(f"{eq.lhs.name}: the operands of @ must be names; name the product's "
                                "operand in an equation of its own")
        for sym in sorted(eq.rhs.free_symbols, key=lambda s: s.name):
            if sym.name not in known:
                raise CellError(f"{eq.lhs.name}: '{sym.name}' is used before it is defined")
        if eq.lhs.name in known:
            raise CellError(f"'{eq.lhs.name}' is assigned twice (or shadows an input)")
        known.add(eq.lhs.name)
    read = {sym.name for eq in cell.equations for sym in eq.rhs.free_symbols}
    for q in cell.params:
        if q.name not in read:
            raise CellError(f"parameter '{q.name}' is declared but no equation uses it: remove it or use it")
    for state in cell.states:
        if state not in {eq.lhs.name for eq in cell.equations}:
            raise CellError(f"state '{state}' is never updated: add an equation '{state} = ...'")
    shapes = cell._known_shapes()
    for state in cell.states:
        if shapes[state] != cell.state_shape(state):
            raise CellError(f"state '{state}' must have the {cell.state_shape(state)[0]} size, not {shapes[state]}")
