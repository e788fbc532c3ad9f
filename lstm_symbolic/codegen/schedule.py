"""The pieces of a plan's schedule (Kernel statements → passes and the boundaries between them), for
:mod:`.plan`: the records naming where values live (:class:`Slot`), the passes, and the rule that puts
each assignment in the earliest pass its reads allow.

A boundary ends a pass: a matrix product (its operand must be complete), or a reduction across the
units (:class:`~lstm_symbolic.codegen.kernel.Reduce`: each example's sum is complete only at the end of
the pass that adds it up, and a later pass reads it from a per-example ``row`` slot).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .kernel import Assign, Group, Reduce


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
    """One fused element-wise pass over batch × hidden: loads, assignments in order, stores, sums, and
    the reductions across the units it completes (``(row slot, summand, mean)``: one per example)."""

    loads: tuple[tuple[sp.Symbol, Slot], ...]
    assigns: tuple[Assign, ...]
    stores: tuple[tuple[sp.Symbol, Slot], ...]
    sums: tuple[tuple[Slot, sp.Expr], ...] = ()  # accumulated with +=
    reductions: tuple[tuple[Slot, sp.Expr, bool], ...] = ()


@dataclass(frozen=True)
class Product:
    """``target = source @ stacked(group)^T`` in a step, or ``@ stacked(group)`` (``back``: of its adjoints)."""

    group: Group
    back: bool
    source: Slot
    target: Slot


def schedule(statements, boundary, produced, fixed):
    """Each Assign in the earliest pass its reads allow; a boundary (a product) ends a pass, and so does
    a Reduce, which the pass it ends adds up (``reduces[p]``: the Reduce statements of pass p)."""
    phase, bounds, passes, reduces = dict(fixed), [], [[]], [[]]
    for st in statements:
        if isinstance(st, boundary) or isinstance(st, Reduce):
            bounds.append(st)
            reduces[-1] += [st] if isinstance(st, Reduce) else []
            passes.append([])
            reduces.append([])
            phase.update({s: len(bounds) for s in ([st.lhs] if isinstance(st, Reduce) else produced(st))})
        else:
            phase[st.lhs] = max([phase.get(s, 0) for s in st.rhs.free_symbols], default=0)
            passes[phase[st.lhs]].append(st)
    return passes, [b for b in bounds if not isinstance(b, Reduce)], phase, reduces, bounds


def make_passes(passes, sums, load, stores_of, extra=(), reduces=None) -> list[Pass]:
    """Passes with their loads (what they read and do not compute) and stores; a loaded value with
    somewhere to go (a kept projection block, a gradient given as an adjoint, a reduction kept for the
    backward pass) is stored by the first pass that loads it (pass 0 loads ``extra``)."""
    reduces = reduces or [[] for _ in passes]
    last: dict = {}
    for p, sts in enumerate(passes):
        for s in {s for st in sts + reduces[p] for s in st.rhs.free_symbols} | {
                s for q, _, e in sums if q == p for s in e.free_symbols}:
            last[s] = max(last.get(s, -1), p)
    out, moved = [], set()
    for p, sts in enumerate(passes):
        reads = [s for st in sts for s in sp.ordered(st.rhs.free_symbols)]
        reads += [s for q, _, e in sums if q == p for s in sp.ordered(e.free_symbols)]
        reads += [s for r in reduces[p] for s in sp.ordered(r.rhs.free_symbols)]
        local = {st.lhs for st in sts}
        loaded = [s for s in dict.fromkeys(reads) if s not in local]
        if p == 0:
            loaded += [s for s in extra if s not in loaded and s not in local]
        stores = [(s, slot) for s in loaded if s not in moved for slot in stores_of(s, p, last, True)]
        moved |= {s for s, _ in stores}
        stores += [(st.lhs, slot) for st in sts for slot in stores_of(st.lhs, p, last, False)]
        out.append(Pass(tuple((s, load(s)) for s in loaded), tuple(sts), tuple(stores),
                        tuple((slot, e) for q, slot, e in sums if q == p),
                        tuple((Slot("row", r.lhs.name), r.rhs, r.mean) for r in reduces[p])))
    return out


def interleave(passes: list[Pass], bounds: list) -> tuple:
    """Pass 0, boundary 0, pass 1, ...: the empty passes and the reductions (their pass adds them up)
    left out."""
    ops = [op for pz, b in zip(passes, bounds + [None], strict=True) for op in (pz, b) if op is not None]
    return tuple(op for op in ops if not isinstance(op, (Pass, Reduce))
                 or (isinstance(op, Pass) and (op.assigns or op.sums or op.stores or op.reductions)))
