"""The records of a plan (:mod:`lstm_symbolic.codegen.plan`): where a value lives (:class:`Slot`), a fused
element-wise pass, a matrix product of a step, a cache array, a workspace buffer.  Data only (the rules
that make them: :mod:`.schedule`, :mod:`.widths`)."""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .kernel import Assign, Group


@dataclass(frozen=True)
class Slot:
    """A place a value is loaded from or stored to at step t, by ``kind``: ``input`` (sequence ``name``),
    ``param`` (a vector parameter), ``cache`` (cache array ``name``, row t + ``shift``), ``state`` (state
    ``name``'s two rows: before the step, ``shift`` 1 after it), ``proj`` (block ``block`` of the
    ``width``-block projection of group ``name``), ``temp`` (a (B, H) scratch array), ``carry`` (the
    gradient of state ``name`` reaching step t; ``shift`` 1: passed to step t - 1), ``dlin`` (block
    ``block`` of packed adjoint array ``name``), ``back`` (group ``name``'s back-projection), ``output``
    (hs), ``grad`` (the summed gradient of vector parameter ``name``), ``dx`` (input ``name``'s gradient),
    ``row`` (a (B,) array: reduction ``name``'s value for each example)."""

    kind: str
    name: str
    block: int = 0
    width: int = 1
    shift: int = 0


@dataclass(frozen=True)
class Pass:
    """One fused element-wise pass over batch × ``size`` (every value of a pass has that width):
    loads, assignments in order, stores, sums, and the reductions across the units it completes
    (``(row slot, summand, mean)``: one per example)."""

    loads: tuple[tuple[sp.Symbol, Slot], ...]
    assigns: tuple[Assign, ...]
    stores: tuple[tuple[sp.Symbol, Slot], ...]
    sums: tuple[tuple[Slot, sp.Expr], ...] = ()  # accumulated with +=
    reductions: tuple[tuple[Slot, sp.Expr, bool], ...] = ()
    size: str = "hidden"


@dataclass(frozen=True)
class Product:
    """``target = source @ stacked(group)^T`` in a step, or ``@ stacked(group)`` (``back``: of its adjoints)."""

    group: Group
    back: bool
    source: Slot
    target: Slot


@dataclass(frozen=True)
class CacheArray:
    """One array of the forward cache, (rows, B, size)."""

    name: str
    rows: sp.Expr  # T or T + 1
    values: tuple[tuple[sp.Symbol, int], ...]  # (symbol, row shift) it holds
    size: str = "hidden"


@dataclass(frozen=True)
class Buffer:
    """A workspace array of one pass (``forward`` or ``backward``), ``size`` elements."""

    name: str
    kind: str  # proj | state | temp | dlin | back | carry | row
    size: sp.Expr
    phase: str
