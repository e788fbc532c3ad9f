"""The schedule of a plan (Kernel statements → passes and the boundaries between them), for
:mod:`.plan`: the rule that puts each assignment in the earliest pass its reads allow, a pass's loads
and stores, and its cut into one pass per width (:func:`.widths.split`).  The records it makes are
those of :mod:`.records`.

A boundary ends a pass: a matrix product (its operand must be complete), or a reduction across the
units (:class:`~lstm_symbolic.codegen.kernel.Reduce`: each example's sum is complete only at the end of
the pass that adds it up, and a later pass reads it from a per-example ``row`` slot).
"""

from __future__ import annotations

import sympy as sp

from .kernel import Reduce
from .records import Pass, Slot
from .widths import split


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


def make_passes(passes, sums, load, stores_of, width, extra=(), reduces=None) -> list[list[Pass]]:
    """Passes with their loads (what they read and do not compute) and stores, each cut into one pass
    per width of its values; a loaded value with somewhere to go (a kept projection block, a gradient
    given as an adjoint, a reduction kept for the backward pass) is stored by the first pass that loads
    it (pass 0 loads ``extra``)."""
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
        whole = Pass(tuple((s, load(s)) for s in loaded), tuple(sts), tuple(stores),
                     tuple((slot, e) for q, slot, e in sums if q == p),
                     tuple((Slot("row", r.lhs.name), r.rhs, r.mean) for r in reduces[p]))
        out.append(split(whole, width, lambda size, *parts: Pass(*parts, size=size)))
    return out


def interleave(passes: list[list[Pass]], bounds: list) -> tuple:
    """Pass 0 (one per width), boundary 0, pass 1, ...: the empty passes and the reductions (their pass
    adds them up) left out."""
    ops = [op for pz, b in zip(passes, bounds + [None], strict=True) for op in (*pz, b) if op is not None]
    return tuple(op for op in ops if not isinstance(op, (Pass, Reduce))
                 or (isinstance(op, Pass) and (op.assigns or op.sums or op.stores or op.reductions)))
