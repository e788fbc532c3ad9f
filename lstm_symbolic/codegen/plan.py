"""Where each value of a step lives, and in which pass it is computed (Kernel → Plan): one plan per
cell, printed by every emitter; data only (sympy symbols and expressions, records naming arrays).

* **Storage.**  A value the backward pass reads is kept in a cache array of T rows; a state whose value
  is read keeps T + 1 (row t: before step t, row t + 1: after it), another state two rows (before and
  after the step).  Arithmetic on kept values without function calls (``1 - i``) is recomputed.
* **Schedule.**  A step is element-wise passes and matrix products: an assignment runs in the earliest
  pass its reads allow, a product ends a pass, and so does a reduction across the units (the pass adds
  it up per example into a (B,) row; later passes read it there; :mod:`.schedule`).
  A pass loads what it reads and does not compute and
  stores what a later pass, step, the backward pass or the caller reads (a value crossing passes and
  kept nowhere else: in a scratch array, ``temp``).
* **Adjoints.**  A product's adjoints are written straight into the packed arrays of :mod:`layout`
  (a group whose adjoints are a run of another group's reads a view of its array).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .kernel import Assign, BackProject, Group, Kernel, Project, Reduce, reads
from .layout import Packed, ProjectionFold, layout
from .records import Buffer, CacheArray, Pass, Product, Slot
from .schedule import interleave, make_passes, schedule
from .widths import SIZES, B, D, H, T, size_symbol, widths

__all__ = ["SIZES", "B", "D", "H", "T", "Buffer", "CacheArray", "Pass", "Plan", "Product", "Slot", "build_plan"]


@dataclass(frozen=True)
class Plan:
    kernel: Kernel
    cache: tuple[CacheArray, ...]
    homes: tuple[tuple[sp.Symbol, Slot], ...]  # where each forward value read across passes or steps lives
    recomputed: tuple[tuple[sp.Symbol, sp.Expr], ...]  # read by the backward pass, recomputed there
    biases: tuple  # (input group, one bias per block): foldable into its projection (whole-array emitters)
    folds: tuple[ProjectionFold, ...]  # input projections foldable into per-step products
    packed: tuple[Packed, ...]
    views: tuple[tuple[Group, Packed, int], ...]  # each group's adjoints: (group, packed array, first block)
    forward: tuple  # Pass | Product, in order
    backward: tuple  # Pass | Product, in order
    vector_sums: tuple[tuple[str, str, int], ...]  # (param, packed array, block): its gradient sums that block
    zero_carries: tuple[str, ...]  # states whose gradient passed to step t - 1 is 0
    workspace: tuple[Buffer, ...]
    widths: tuple[tuple[sp.Symbol, str], ...] = ()  # the size of every vector value

    def width(self, sym: sp.Symbol) -> str:
        return dict(self.widths).get(sym, "hidden")

    def home(self, sym: sp.Symbol) -> Slot:
        return dict(self.homes)[sym]

    def view(self, group: Group) -> Slot:
        """The adjoints of ``group``'s blocks, as one run of a packed array."""
        p, start = next((p, s) for g, p, s in self.views if g == group)
        return Slot("dlin", p.name, start, len(p.adjoints))

    @property
    def folded(self) -> frozenset[sp.Symbol]:
        """The bias and block terms a whole-array emitter adds into the products' buffers instead."""
        return frozenset({b for _, bs in self.biases for b in bs}
                         | {f.source.block(f.source_start + n) for f in self.folds for n in range(f.count)})


def _recomputed(kernel: Kernel) -> dict[sp.Symbol, sp.Expr]:
    """Kept values that are arithmetic, without function calls, on other kept values and parameters (1 - i);
    not a state and not the operand of a product (its weight gradient reads it over all steps)."""
    saved, params = set(kernel.saved), {p.symbol for p in kernel.cell.params}
    keep = {sp.Symbol(s) for s in kernel.cell.states} | {g.operand for g in kernel.groups}
    out: dict[sp.Symbol, sp.Expr] = {}
    for st in kernel.forward:
        if (isinstance(st, Assign) and st.lhs in saved - keep and not st.rhs.atoms(sp.Function)
                and st.rhs.free_symbols <= (saved - set(out)) | params):
            out[st.lhs] = st.rhs
    return out


def _storage(kernel: Kernel, recomputed, width) -> tuple[tuple[CacheArray, ...], dict[sp.Symbol, Slot]]:
    cell, cache, homes = kernel.cell, [], {q.symbol: Slot("input", q.name) for q in kernel.cell.inputs}
    saved = [s for s in kernel.saved if s not in recomputed]
    for s in cell.states:
        now, prev = sp.Symbol(s), cell.prev(s)
        kind = "cache" if now in saved or prev in saved else "state"
        cache += [CacheArray(s, T + 1, ((prev, 0), (now, 1)), cell.state_shape(s)[0])] if kind == "cache" else []
        homes.update({prev: Slot(kind, s), now: Slot(kind, s, shift=1)})
    for q in (q for q in saved if q not in homes):
        cache.append(CacheArray(q.name, T, ((q, 0),), width[q]))
        homes[q] = Slot("cache", q.name)
    return tuple(cache), homes


def _forward(kernel: Kernel, homes: dict, width: dict) -> tuple:
    cell, temps = kernel.cell, {}
    blocks = {g.block(k): Slot("proj", g.name, k, len(g.weights)) for g in kernel.groups for k in range(len(g.weights))}
    fixed = {g.block(k): 0 for g in kernel.deferred for k in range(len(g.weights))}
    passes, projects, _, reduces, bounds = schedule(
        kernel.forward, Project, lambda st: [st.group.block(k) for k in range(len(st.group.weights))], fixed)
    operands = {st.group.operand for st in projects}
    rows = {r.lhs: Slot("row", r.lhs.name) for r in bounds if isinstance(r, Reduce)}
    vectors = {p.symbol for p in cell.params if len(p.shape) == 1}
    states = {sp.Symbol(s) for s in cell.states}

    def load(sym):
        return (blocks.get(sym) or rows.get(sym) or (Slot("param", sym.name) if sym in vectors else
                                                     homes.get(sym) or temps[sym]))

    def stores_of(sym, p, last, loaded):
        if loaded:  # a kept projection block (r * (U_n h + b)) or reduction is stored where it is loaded
            return [homes[sym]] if (sym in blocks or sym in rows) and sym in homes else []
        out = [homes[sym]] if sym in homes else []
        if not out and (last.get(sym, -1) > p or sym in operands):
            temps[sym] = Slot("temp", sym.name)
            out.append(temps[sym])
        return out + ([Slot("output", cell.output)] if sym in states and sym.name == cell.output else [])

    printed = make_passes(passes, [], load, stores_of, width, reduces=reduces)
    ops = [Product(st.group, False, load(st.group.operand), Slot("proj", st.group.name, 0, len(st.group.weights)))
           if isinstance(st, Project) else st for st in bounds]
    homes.update(temps)
    return interleave(printed, ops)


def _backward_statements(kernel: Kernel, recomputed: dict, adjoints: set) -> list:
    """The backward statements, the recomputed values first, without those nothing reads."""
    statements = [Assign(s, e) for s, e in recomputed.items()] + list(kernel.backward)
    kept = {s for _, e in kernel.vector_grads + kernel.input_grads for s in sp.sympify(e).free_symbols}
    kept |= {sym for _, sym in kernel.state_grads} | adjoints
    while True:
        read = kept | {s for st in statements for s in reads(st)}
        live = [st for st in statements if not isinstance(st, (Assign, Reduce)) or st.lhs in read]
        if len(live) == len(statements):
            return live
        statements = live


def _backward(kernel: Kernel, packed, views, homes: dict, recomputed: dict, width: dict) -> tuple:
    cell, temps = kernel.cell, {}
    backs = {g.back: g for g in kernel.groups}
    seeds = {sym: s for s, sym in kernel.seeds}
    vectors = {p.symbol for p in cell.params if len(p.shape) == 1}
    slots = {a: [Slot("dlin", p.name, k, len(p.adjoints)) for p in packed for k, b in enumerate(p.adjoints) if b == a]
             for p in packed for a in p.adjoints}
    kept = {q for q in kernel.saved if q not in recomputed}
    fixed = {s: 0 for s in list(seeds) + list(kept) + list(vectors)}
    statements = _backward_statements(kernel, recomputed, set(slots))
    passes, _, phase, reduces, bounds = schedule(statements, BackProject, lambda st: [st.group.back], fixed)

    sums = [(Slot("grad", p), sp.sympify(e)) for p, e in kernel.vector_grads]
    sums = [(max([phase.get(s, 0) for s in e.free_symbols], default=0), slot, e) for slot, e in sums + [
        (Slot("dx", n), sp.sympify(e)) for n, e in kernel.input_grads if e != 0]]
    state_of = {sym: s for s, sym in kernel.state_grads if sym != 0}

    known = {**{a: s[0] for a, s in slots.items()}, **{s: homes[s] for s in kept},
             **{v: Slot("param", v.name) for v in vectors}, **{b: Slot("back", g.name) for b, g in backs.items()},
             **{sym: Slot("carry", s) for sym, s in seeds.items()},
             **{r.lhs: Slot("row", r.lhs.name) for r in bounds if isinstance(r, Reduce)}}

    def load(sym):
        return known.get(sym) or temps.setdefault(sym, Slot("temp", sym.name))

    def stores_of(sym, p, last, loaded):
        if loaded:  # a gradient given to the step that is, as it is, a product's adjoint
            return slots.get(sym, []) if sym in seeds else []
        out = list(slots.get(sym, []))
        if not out and last.get(sym, -1) > p:
            out.append(temps.setdefault(sym, Slot("temp", sym.name)))
        return out + ([Slot("carry", state_of[sym], shift=1)] if sym in state_of else [])

    printed = make_passes(passes, sums, load, stores_of, width, [s for s in seeds if s in slots], reduces)
    view = {g: Slot("dlin", p.name, s, len(p.adjoints)) for g, p, s in views}
    ops = [Product(st.group, True, view[st.group], Slot("back", st.group.name)) if isinstance(st, BackProject)
           else st for st in bounds]
    return interleave(printed, ops)


def _vector_sums(kernel: Kernel, packed) -> tuple:
    """Vector gradients that are the batch-and-time sum of one packed adjoint."""
    where = {a: (p.name, k) for p in reversed(packed) for k, a in enumerate(p.adjoints)}
    named = {st.rhs: st.lhs for st in kernel.backward if isinstance(st, Assign) and st.lhs in where}
    return tuple((p, *where[named.get(e, e)]) for p, e in kernel.vector_grads if named.get(e, e) in where)


def _workspace(kernel: Kernel, forward, backward, packed, homes, n) -> tuple[Buffer, ...]:
    fwd, bwd = ({op.group for op in ops if isinstance(op, Product)} for ops in (forward, backward))
    cell = kernel.cell
    out = [Buffer(g.name, "proj", (B if g.per_step else T * B) * len(g.weights) * size_symbol(n[g.block(0)]), "forward")
           for g in kernel.groups if not g.per_step or g in fwd]
    out += [Buffer(s, "state", 2 * B * size_symbol(cell.state_shape(s)[0]), "forward") for s in cell.states
            if homes[sp.Symbol(s)].kind == "state"]
    for phase, ops in (("forward", forward), ("backward", backward)):
        temps = {slot.name: op.size for op in ops if isinstance(op, Pass)
                 for _, slot in op.stores if slot.kind == "temp"}
        out += [Buffer(name, "temp", B * size_symbol(temps[name]), phase) for name in sorted(temps)]
        out += [Buffer(slot.name, "row", B, phase) for op in ops if isinstance(op, Pass)
                for slot, _, _ in op.reductions]
    out += [Buffer(p.name, "dlin", T * B * len(p.adjoints) * size_symbol(n[p.adjoints[0]]), "backward") for p in packed]
    out += [Buffer(g.name, "back", B * size_symbol(n[g.back]), "backward") for g in kernel.groups if g in bwd]
    return tuple(out + [Buffer(s, "carry", 2 * B * size_symbol(cell.state_shape(s)[0]), "backward")
                        for s in cell.states])


def build_plan(kernel: Kernel) -> Plan:
    """The storage and schedule of ``kernel``'s step, forward and backward."""
    lay = layout(kernel)
    renamed = {p: Packed(next(g.name for g, q, s in lay.views if q == p and s == 0 and g.adjoints == p.adjoints),
                         p.adjoints) for p in lay.packed}  # each array after the group it was made for
    packed, views = tuple(renamed.values()), tuple((g, renamed[p], s) for g, p, s in lay.views)
    recomputed = _recomputed(kernel)
    width = widths(kernel, recomputed)
    cache, homes = _storage(kernel, recomputed, width)
    forward = _forward(kernel, homes, width)  # (it adds the scratch arrays of the values crossing its passes)
    backward = _backward(kernel, packed, views, homes, recomputed, width)
    return Plan(kernel, cache, tuple(homes.items()), tuple(recomputed.items()), lay.biases, lay.folds, packed, views,
                forward, backward, _vector_sums(kernel, packed), tuple(s for s, sym in kernel.state_grads if sym == 0),
                _workspace(kernel, forward, backward, packed, homes, width), tuple(width.items()))
