"""The NumPy emitter: a Kernel, laid out on whole-sequence arrays, printed into
``codegen/numpy/module.py.j2`` (Kernel → Layout → the text of ``<cell>.py``).

Every value the backward pass reads is written, as it is computed, into one preallocated
``(T, B, n)`` array per quantity (states keep ``T + 1`` rows: row t is the state before step
t), so the forward cache holds only those arrays; the adjoints of the stacked products are
written into the packed arrays of the layout.  The statements are printed here, line by
line; the template only lays them out.
"""

from __future__ import annotations

import sympy as sp

from ... import naming
from ...core.cells import CellError
from ...printing.numpy import numpy_code, numpy_code_into
from ..kernel import Assign, BackProject, Group, Kernel, Project
from ..layout import Layout, layout
from ..render import render

SIZE_NAMES = {"hidden": "H", "input": "I"}


def _cols(start: int, count: int = 1) -> str:
    """The column slice of ``count`` blocks from block ``start``: ``H:2 * H``."""
    def at(k):
        return "" if k == 0 else "H" if k == 1 else f"{k} * H"
    return f"{at(start)}:{at(start + count) or '0'}"


class _Storage:
    """Where the per-step values live: ``name`` at step t, and over the whole sequence."""

    def __init__(self, kernel: Kernel):
        cell = kernel.cell
        self.inputs = {q.symbol for q in cell.inputs}
        self.prevs = {cell.prev(s): s for s in cell.states}
        self.states = {sp.Symbol(s): s for s in cell.states}
        self.shapes = {q.symbol: q.shape for q in cell.quantities}
        self.saved = set(kernel.saved)
        self.order = cell.states
        self.recomputed = _recomputed(kernel, self.saved)

    def at(self, sym: sp.Symbol) -> str:
        if sym in self.inputs:
            return "xs[t]"
        if sym in self.prevs:
            return f"{self.prevs[sym]}_seq[t]"
        if sym in self.states:
            return f"{sym.name}_seq[t + 1]"
        return f"{sym.name}_seq[t]"

    def whole(self, sym: sp.Symbol) -> str:
        if sym in self.inputs:
            return "xs"
        if sym in self.prevs:
            return f"{self.prevs[sym]}_seq[:-1]"
        if sym in self.states:  # its value after each step: rows 1 .. T
            return f"{sym.name}_seq[1:]"
        if sym in self.recomputed:
            rhs = self.recomputed[sym]
            return f"({numpy_code(rhs.xreplace({s: sp.Symbol(self.whole(s)) for s in rhs.free_symbols}))})"
        return f"{sym.name}_seq"

    def stored(self, sym: sp.Symbol) -> bool:
        """Written straight into its sequence array (kept for backward, or a state)."""
        return sym in self.states or sym in self.saved and sym not in self.recomputed

    def intermediates(self) -> list[tuple[str, str]]:
        """(name, size) of the kept values that are neither inputs nor states."""
        out = [s for s in sorted(self.saved, key=str)
               if s not in self.inputs | set(self.prevs) | set(self.states) | set(self.recomputed)]
        return [(s.name, SIZE_NAMES[self.shapes.get(s, ("hidden",))[0]]) for s in out]

    def cached_states(self) -> list[str]:
        return [s for s in self.order if sp.Symbol(s) in self.saved or sp.Symbol(naming.prev(s)) in self.saved]


def _recomputed(kernel: Kernel, saved: set) -> dict[sp.Symbol, sp.Expr]:
    """Values the backward pass reads that are cheaper to recompute there than to keep:
    arithmetic without function calls or products on kept values and parameters (1 - i)."""
    params = {p.symbol for p in kernel.cell.params}
    states = {sp.Symbol(s) for s in kernel.cell.states}
    out: dict[sp.Symbol, sp.Expr] = {}
    for st in kernel.forward:
        if (isinstance(st, Assign) and st.lhs in saved and st.lhs not in states and not st.rhs.atoms(sp.Function)
                and st.rhs.free_symbols <= (saved - set(out)) | params):
            out[st.lhs] = st.rhs
    return out


def _assign(lhs: sp.Symbol, rhs: sp.Expr, out: str | None) -> list[str]:
    if out is None:
        return [f"{lhs.name} = {numpy_code(rhs)}"]
    into = numpy_code_into(rhs, out)
    return [f"{lhs.name} = {into}"] if into else [f"{lhs.name} = {out}", f"{lhs.name}[...] = {numpy_code(rhs)}"]


def _reads(statements) -> set[sp.Symbol]:
    return {s for st in statements if isinstance(st, Assign) for s in st.rhs.free_symbols}


def _forward_lines(lay: Layout, store: _Storage) -> list[str]:
    kernel = lay.kernel
    reads = _reads(kernel.forward)
    operands = {g.operand for g in kernel.recurrent}
    lines = [f"{p.name} = {store.at(p)}" for p in store.prevs if p in reads | operands]
    lines += [f"{x.name} = {store.at(x)}" for x in store.inputs if x in reads | operands]
    for g in kernel.deferred:
        for k, b in enumerate(g.block(k) for k in range(len(g.weights))):
            lines += [f"{b.name} = proj_{g.name}[t, :, {_cols(k)}]"] if b in reads or store.stored(b) else []
            lines += [f"{store.at(b)} = {b.name}"] if store.stored(b) else []  # the backward pass reads it
    for st in kernel.forward:
        if isinstance(st, Project):
            lines += _project(lay, st.group, reads, store)
        else:
            lines += _assign(st.lhs, st.rhs, store.at(st.lhs) if store.stored(st.lhs) else None)
    return lines


def _project(lay: Layout, g: Group, reads: set, store: _Storage) -> list[str]:
    lines = [f"proj_{g.name} = {g.operand.name} @ stacked[\"{g.name}\"].T"]
    for f in (f for f in lay.folds if f.into == g):
        into, source = f"proj_{g.name}", f"proj_{f.source.name}[t]"
        if f.count < len(g.weights):
            into += f"[:, {_cols(f.into_start, f.count)}]"
        if f.count < len(f.source.weights):
            source = f"proj_{f.source.name}[t, :, {_cols(f.source_start, f.count)}]"
        lines.append(f"{into} += {source}")
    blocks = [g.block(k) for k in range(len(g.weights))]
    lines += [f"{b.name} = proj_{g.name}[:, {_cols(k)}]" for k, b in enumerate(blocks) if b in reads | store.saved]
    lines += [f"{store.at(b)} = {b.name}" for b in blocks if b in store.saved]
    return lines


def _where(lay: Layout) -> dict[sp.Symbol, list[tuple[str, int]]]:
    """{adjoint: [(packed array, block), ...]}, the first being where it is computed."""
    out: dict[sp.Symbol, list[tuple[str, int]]] = {}
    for p in lay.packed:
        for k, a in enumerate(p.adjoints):
            out.setdefault(a, []).append((p.name, k))
    return out


def _d_lin(lay: Layout, g: Group, t: str = "t") -> str:
    """The adjoints of ``g``'s blocks at step t (``t=""``: every step)."""
    p, start = lay.view_of(g)
    if start == 0 and len(g.adjoints) == len(p.adjoints):
        return f"{p.name}[{t}]" if t else p.name
    return f"{p.name}[{t or ':'}, :, {_cols(start, len(g.adjoints))}]"


def _backward_lines(lay: Layout, store: _Storage, summed: set) -> list[str]:
    kernel = lay.kernel
    where = _where(lay)
    reads = _reads(kernel.backward) | {s for p, e in kernel.vector_grads if p not in summed for s in e.free_symbols}
    lines = []
    for state, seed in kernel.seeds:
        outside = "d_hs[t] + " if state == kernel.cell.output else ""
        lines.append(f"{seed.name} = {outside}d_state_{state}")
    recomputed = [(s, e) for s, e in store.recomputed.items() if s in reads]
    needed = reads | {s for _, e in recomputed for s in e.free_symbols}
    lines += [f"{s.name} = {store.at(s)}" for s in kernel.saved if s in needed and s not in store.recomputed]
    lines += [f"{s.name} = {numpy_code(e)}" for s, e in recomputed]
    defined = {st.lhs for st in kernel.backward if isinstance(st, Assign)}
    for a in (a for a in where if a not in defined):  # an adjoint given, not computed, in the step
        lines += [f"{name}[t, :, {_cols(k)}] = {a.name}" for name, k in where[a]]
    for st in kernel.backward:
        if isinstance(st, BackProject):
            lines.append(f"back_{st.group.name} = {_d_lin(lay, st.group)} @ stacked[\"{st.group.name}\"]")
            continue
        spots = where.get(st.lhs, [])
        out = f"{spots[0][0]}[t, :, {_cols(spots[0][1])}]" if spots else None
        lines += _assign(st.lhs, st.rhs, out)
        lines += [f"{name}[t, :, {_cols(k)}] = {st.lhs.name}" for name, k in spots[1:]]
    lines += [f"d_{p} += ({numpy_code(e)}).sum(axis=0)" for p, e in kernel.vector_grads if p not in summed]
    lines += [f"d_xs[t] = {numpy_code(e)}" for _, e in kernel.input_grads if e != 0]
    carry = [f"d_state_{s}" for s, _ in kernel.state_grads]
    values = [numpy_code(e) if e != 0 else "zeros" for _, e in kernel.state_grads]
    lines.append(f"{', '.join(carry)} = {', '.join(values)}")
    return lines


def _vector_sums(lay: Layout) -> dict[str, tuple[str, int]]:
    """Vector gradients that are the batch-and-time sum of one packed adjoint: {param: (array, block)}."""
    where = _where(lay)
    named = {st.rhs: st.lhs for st in lay.kernel.backward if isinstance(st, Assign) and st.lhs in where}
    return {p: where[named.get(e, e)][0] for p, e in lay.kernel.vector_grads if named.get(e, e) in where}


def _check(kernel: Kernel) -> None:
    """The names and sizes the module needs (the spec's checks, again, for cells made in Python)."""
    cell = kernel.cell
    naming.check_cell(cell, [(w.name, g.name) for g in kernel.groups for w in g.weights])
    if not any(p.shape[0] == "hidden" for p in cell.params):
        raise CellError(f"cell '{cell.name}': the generated code reads the hidden size from a parameter "
                        "with hidden rows, and the cell has none")


def numpy_module(kernel: Kernel) -> str:
    """The standalone NumPy module of DESIGN.md's API for ``kernel``'s cell."""
    _check(kernel)
    lay = layout(kernel)
    kernel = lay.kernel
    cell = kernel.cell
    store = _Storage(kernel)
    sums = _vector_sums(lay)
    params = {p.symbol for p in cell.params}
    return render(
        "codegen/numpy/module.py.j2",
        cell=cell.name,
        description=cell.description,
        params=[(p.name, p.shape) for p in cell.params],
        states=cell.states,
        stacks=[(g.name, tuple(w.name for w in g.weights)) for g in kernel.groups],
        biases=[(g.name, tuple(b.name for b in bs)) for g, bs in lay.biases],
        blocks=max((len(g.weights) for g in kernel.groups), default=1),
        forward_params=sorted(p.name for p in _reads(kernel.forward) & params),
        backward_params=sorted(p.name for p in (_reads(kernel.backward) | {
            s for e in [e for _, e in kernel.vector_grads] + list(store.recomputed.values())
            for s in e.free_symbols}) & params),
        deferred=[(g.name, any(b == g for b, _ in lay.biases)) for g in kernel.deferred],
        intermediates=store.intermediates(),
        cached_states=store.cached_states(),
        forward_lines=_forward_lines(lay, store),
        packed=[(p.name, len(p.adjoints)) for p in lay.packed],
        step_sums=[p for p, _ in kernel.vector_grads if p not in sums],
        backward_lines=_backward_lines(lay, store, set(sums)),
        summed_arrays=sorted({name for name, _ in sums.values()}),
        vector_sums=[(p, name, _cols(k)) for p, (name, k) in sums.items()],
        weight_grads=[{
            "group": g.name, "d_lin": _d_lin(lay, g, ""), "operand": store.whole(g.operand),
            "blocks": [(w.name, _cols(k)) for k, w in enumerate(g.weights)],
        } for g in kernel.groups],
        per_step_input=any(e != 0 for _, e in kernel.input_grads),
        input_back=[(_d_lin(lay, g, ""), g.name) for g in kernel.deferred],
    )


def numpy_files(kernel: Kernel) -> dict[str, str]:
    return {f"{naming.module_name(kernel.cell.name)}.py": numpy_module(kernel)}
