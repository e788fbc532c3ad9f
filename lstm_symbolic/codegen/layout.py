"""Array layout of a sequence kernel (Kernel → Layout), for emitters that work on whole arrays.

Two decisions on top of the :class:`~lstm_symbolic.codegen.kernel.Kernel` plan, both about memory
traffic rather than maths:

* **Folds.**  A bias added to an input's projection is added once for all steps, before the
  time loop; an input projection added to a per-step product (``W_f x + U_f h_prev``) is
  added to that product in one pass over its stacked rows.  The folded terms leave the
  forward statements, so ``z_f = W_f_x + U_f_h_prev + b_f`` becomes ``z_f = U_f_h_prev``,
  where ``U_f_h_prev`` now stands for the whole sum.
* **Packed adjoints.**  The adjoints of a group's blocks (``d_z_f .. d_z_o``) are written
  straight into one ``(T, B, k·H)`` array; a group whose adjoints are a contiguous run of
  another group's uses a view of that array instead of an array of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sympy as sp

from .kernel import Assign, Group, Kernel


@dataclass(frozen=True)
class ProjectionFold:
    """Blocks ``[source_start, +count)`` of ``source``'s projection (an input, all steps)
    are added to blocks ``[into_start, +count)`` of ``into``'s per-step product."""

    into: Group
    into_start: int
    source: Group
    source_start: int
    count: int


@dataclass(frozen=True)
class Packed:
    """One ``(T, B, len(adjoints)·H)`` array holding the adjoints of one or more groups."""

    name: str
    adjoints: tuple[sp.Symbol, ...]


@dataclass(frozen=True)
class Layout:
    kernel: Kernel  # forward statements without the folded terms
    biases: tuple[tuple[Group, tuple[sp.Symbol, ...]], ...]  # (input group, one bias per block)
    folds: tuple[ProjectionFold, ...]
    packed: tuple[Packed, ...]
    views: tuple[tuple[Group, Packed, int], ...]  # each group's d_lin: (group, array, first block)

    def view_of(self, group: Group) -> tuple[Packed, int]:
        return next((p, start) for g, p, start in self.views if g == group)


def _terms(kernel: Kernel) -> dict[sp.Symbol, Assign]:
    """{symbol: the one forward assignment it is an additive term of} for symbols read exactly once."""
    count: dict[sp.Symbol, int] = {}
    where: dict[sp.Symbol, Assign] = {}
    for st in kernel.forward:
        if not isinstance(st, Assign):
            continue
        for s in st.rhs.free_symbols:
            count[s] = count.get(s, 0) + 1
        if isinstance(st.rhs, sp.Add):
            where.update({a: st for a in st.rhs.args if isinstance(a, sp.Symbol)})
    saved = set(kernel.saved)  # a value the backward pass reads keeps its meaning
    return {s: st for s, st in where.items() if count[s] == 1 and s not in saved}


def _biases(kernel: Kernel, terms) -> tuple:
    """Input groups whose every block has a bias parameter added beside it."""
    vectors = {p.symbol for p in kernel.cell.params if len(p.shape) == 1}
    out = []
    for g in kernel.deferred:
        beside = []
        for k in range(len(g.weights)):
            st = terms.get(g.block(k))
            bias = [a for a in st.rhs.args if a in vectors and terms.get(a) == st] if st else []
            beside.append(sorted(bias, key=str)[0] if bias else None)
        if None not in beside and len(set(beside)) == len(beside):
            out.append((g, tuple(beside)))
    return tuple(out)


def _folds(kernel: Kernel, terms) -> tuple[ProjectionFold, ...]:
    """Runs of per-step blocks each added to a block of an input's projection, in the same order."""
    folds = []
    for g in kernel.recurrent:
        pairs = []
        for k in range(len(g.weights)):
            st = terms.get(g.block(k))
            partner = [(d, j) for d in kernel.deferred for j in range(len(d.weights))
                       if st is not None and terms.get(d.block(j)) == st]
            pairs.append(partner[0] if len(partner) == 1 else None)
        k = 0
        while k < len(pairs):
            if pairs[k] is None:
                k += 1
                continue
            d, j = pairs[k]
            n = 1
            while k + n < len(pairs) and pairs[k + n] == (d, j + n):
                n += 1
            folds.append(ProjectionFold(g, k, d, j, n))
            k += n
    return tuple(folds)


def _packing(kernel: Kernel) -> tuple[tuple[Packed, ...], tuple]:
    """One array per group, except where a group's adjoints are a run inside an earlier array."""
    packed: list[Packed] = []
    views = []
    for g in sorted(kernel.groups, key=lambda g: -len(g.adjoints)):
        n = len(g.adjoints)
        found = next(((p, s) for p in packed for s in range(len(p.adjoints) - n + 1)
                      if p.adjoints[s:s + n] == g.adjoints), None)
        if found is None:
            found = (Packed(f"d_lin_{g.name}", g.adjoints), 0)
            packed.append(found[0])
        views.append((g, *found))
    order = {g: k for k, g in enumerate(kernel.groups)}
    return tuple(packed), tuple(sorted(views, key=lambda v: order[v[0]]))


def layout(kernel: Kernel) -> Layout:
    """Fold biases and input projections, and pack the adjoints of the stacked products."""
    terms = _terms(kernel)
    biases = _biases(kernel, terms)
    folds = _folds(kernel, terms)
    gone = {b for _, bs in biases for b in bs}
    gone |= {f.source.block(f.source_start + n) for f in folds for n in range(f.count)}
    forward = tuple(
        Assign(st.lhs, st.rhs.xreplace({s: sp.Integer(0) for s in gone})) if isinstance(st, Assign) else st
        for st in kernel.forward
    )
    packed, views = _packing(kernel)
    return Layout(replace(kernel, forward=forward), biases, folds, packed, views)
