"""The NumPy emitter: a cell's :class:`~lstm_symbolic.codegen.plan.Plan` printed on whole-sequence arrays
into ``codegen/numpy/module.py.j2`` (Plan → the text of ``<cell>.py``).

Each slot of the plan is one NumPy array: a cache array is ``<name>_seq`` ((T, B, n), a state's
T + 1 rows), a state that is not kept ``<name>_seq`` of two rows, a packed adjoint array
``d_lin_<group>``.  A pass's assignments run one after the other (NumPy fuses nothing); a value
stored in an array is computed into it (``out=``).  Two decisions are NumPy's own: the input's
projection (with its biases) is added into the per-step product's buffer once (the plan's folds),
and a vector gradient that is the sum of one packed adjoint is summed after the loop.
"""

from __future__ import annotations

from pathlib import Path

import sympy as sp

from ... import naming
from ...core.functions import unit_mean, unit_sum
from ..kernel import Group, Kernel, check_names
from ..plan import Pass, Plan, Slot, T, build_plan
from ..render import render
from ..widths import extra_sizes
from .dialect import Dialect, Loop, Row

SIZE_NAMES = {"hidden": "H", "input": "I", "scalar": "1"}  # scalar: a reduction's, one per example


def size_name(size: str) -> str:
    """A size as the module's code names it: ``H``, ``I``, ``_n_proj`` for a size a cell declares."""
    return SIZE_NAMES.get(size, f"_n_{size}")


def _cols(start: int, count: int = 1, unit: str = "H") -> str:
    """The column slice of ``count`` blocks of ``unit`` columns from block ``start``: ``H:2 * H``."""
    def at(k):
        return "" if k == 0 else unit if k == 1 else f"{k} * {unit}"
    return f"{at(start)}:{at(start + count) or '0'}"


class _Printer:
    """Slots as array expressions at step t (or over every step), in a :class:`Dialect`."""

    def __init__(self, plan: Plan, dialect: Dialect):
        self.plan, self.dialect = plan, dialect
        self.deferred = {g.name for g in plan.kernel.deferred}
        cell, groups = plan.kernel.cell, plan.kernel.groups
        rows = {g.name: size_name(cell.shape(g.weights[0].name)[0]) for g in groups}
        by_adjoint = {a: rows[g.name] for g in groups for a in g.adjoints}
        self.unit = {**rows, **{p.name: by_adjoint[p.adjoints[0]] for p in plan.packed}}
        self.cached_output = plan.home(sp.Symbol(plan.kernel.cell.output)).kind == "cache"

    def row(self, slot: Slot) -> Row | None:
        """The row of a sequence array that ``slot`` is at step t; None for another slot."""
        k = slot.kind
        if k == "input":
            return Row("xs")
        if k == "cache":
            return Row(f"{slot.name}_seq", slot.shift)
        if k == "output" and not self.cached_output:
            return Row("hs")
        if k == "dlin" or (k == "proj" and slot.name in self.deferred):  # one row per step
            cols = "" if slot.width == 1 else f", :, {_cols(slot.block, 1, self.unit[slot.name])}"
            return Row(f"d_lin_{slot.name}" if k == "dlin" else f"proj_{slot.name}", 0, cols)
        return None

    def at(self, slot: Slot) -> str | None:
        """The array of ``slot`` at step t as a store writes it; None for a value that is a local of the
        step (temp, back, param)."""
        if row := self.row(slot):
            return row.at_t
        k = slot.kind
        if k == "state":
            return f"{slot.name}_seq[(t + 1) % 2]" if slot.shift else f"{slot.name}_seq[t % 2]"
        if k == "proj":  # a product of the step
            cols = _cols(slot.block, 1, self.unit[slot.name])
            return f"proj_{slot.name}" if slot.width == 1 else f"proj_{slot.name}[:, {cols}]"
        return f"d_state_{slot.name}" if k == "carry" else None

    def read(self, slot: Slot) -> str | None:
        """The array of ``slot`` at step t as the loop reads it."""
        return self.dialect.read(row) if (row := self.row(slot)) else self.at(slot)

    def whole(self, slot: Slot) -> str:
        """The operand of a weight gradient over every step."""
        if slot.kind == "input":
            return "xs"
        if next(a.rows for a in self.plan.cache if a.name == slot.name) == T:
            return f"{slot.name}_seq"
        return f"{slot.name}_seq[1:]" if slot.shift else f"{slot.name}_seq[:-1]"

    def view(self, g: Group) -> Row:
        """``g``'s adjoints (a run of a packed array) at step t."""
        slot, n = self.plan.view(g), len(g.adjoints)
        cols = "" if n == slot.width else f", :, {_cols(slot.block, n, self.unit[slot.name])}"
        return Row(f"d_lin_{slot.name}", 0, cols)


def _rows_only(loop: Loop, e: sp.Expr, params: frozenset) -> sp.Expr | None:
    """A vector gradient's summand at step t over every step, where it reads only rows of sequence arrays
    and parameters (``c_prev*d_z_f`` → ``c_seq[:T]*d_lin_x[:T, :, :H]``); None where it reads a value of
    the step that is no array's row."""
    if not e.free_symbols <= set(loop.rows) | params:
        return None
    return e.xreplace({s: sp.Symbol(loop.rows[s].every_step) for s in e.free_symbols - params})


def _pass_lines(pr: _Printer, pz: Pass, loop: Loop, folded: frozenset = frozenset(), skip_sums: set = frozenset(),
                params: frozenset = frozenset()) -> None:
    """A pass's lines, added to ``loop``'s."""
    d, lines, local = pr.dialect, loop.lines, loop.local
    for s, slot in pz.loads:
        if s not in local and s not in folded and (text := pr.read(slot)) is not None:
            lines.append(f"{s.name} = {text}")
            if row := pr.row(slot):
                loop.rows[s] = row
        local.add(s)
    assigned = {a.lhs for a in pz.assigns}
    arrays: dict = {}  # symbol: the slots it is stored in ((slot, True): an array written in place)
    for s, slot in pz.stores:
        if pr.at(slot) is not None:
            arrays.setdefault(s, []).append((slot, slot.kind != "carry"))
    for s in [s for s in arrays if s not in assigned]:  # a loaded value kept as it is
        lines += [f"{pr.at(out)} = {s.name}" for out, _ in arrays[s]]
    for a in pz.assigns:
        rhs, out = a.rhs.xreplace({s: sp.Integer(0) for s in folded}), arrays.get(a.lhs, [])
        first = pr.read(out[0][0]) if out and out[0][1] else None
        if first and (row := pr.row(out[0][0])):
            loop.rows[a.lhs] = row
        if first and (into := d.code_into(rhs, first)):
            lines.append(f"{a.lhs.name} = {into}")
        elif first:
            lines += [f"{a.lhs.name} = {first}", f"{a.lhs.name}[...] = {d.code(rhs)}"]
        else:
            lines.append(f"{a.lhs.name} = {d.code(rhs)}")
        lines += [f"{pr.at(o)} = {a.lhs.name}" for o, _ in (out[1:] if first else out)]
        local.add(a.lhs)
    for slot, e in pz.sums:
        if slot.kind == "grad" and slot.name not in skip_sums:
            if d.sums_after_loop and (whole := _rows_only(loop, e, params)) is not None:
                loop.after.append(d.summed(f"d_{slot.name}", whole))
            else:
                lines.append(f"d_{slot.name} += ({d.code(e)}).sum(axis=0)")
        elif slot.kind == "dx":
            lines.append(f"d_xs[t] = {d.code(e)}")
    for slot, e, mean in pz.reductions:  # a row reduction: (B, 1), broadcast where it meets (B, H)
        lines.append(f"{slot.name} = {d.code((unit_mean if mean else unit_sum)(e))}")
        local.add(sp.Symbol(slot.name))


def _forward_lines(pr: _Printer) -> Loop:
    plan, d, loop = pr.plan, pr.dialect, Loop()
    for op in plan.forward:
        if isinstance(op, Pass):
            _pass_lines(pr, op, loop, plan.folded)
            continue
        g = op.group
        source = g.operand.name if g.operand in loop.local else (pr.row(op.source) or pr.at(op.source))
        folds = []  # (the columns of the product, the addend at step t)
        for f in (f for f in plan.folds if f.into == g):
            into, src = "", Row(f"proj_{f.source.name}")
            if f.count < len(g.weights):
                into = f"[:, {_cols(f.into_start, f.count, pr.unit[g.name])}]"
            if f.count < len(f.source.weights):
                src = src._replace(cols=f", :, {_cols(f.source_start, f.count, pr.unit[f.source.name])}")
            folds.append((into, src))
        addend = folds.pop(0)[1] if folds and not folds[0][0] else None  # the first adds to the whole product
        loop.lines += d.product(f"proj_{g.name}", source, d.weight(g.name, False), addend)
        loop.lines += [f"proj_{g.name}{into} += {d.read(src)}" for into, src in folds]
    return loop


def _backward_lines(pr: _Printer) -> Loop:
    plan, d, loop = pr.plan, pr.dialect, Loop()
    kernel = plan.kernel
    for s, seed in kernel.seeds:
        loop.lines.append(f"{seed.name} = {d.read(Row('d_hs')) + ' + ' if s == kernel.cell.output else ''}d_state_{s}")
    loop.local |= {seed for _, seed in kernel.seeds}
    summed = {p for p, _, _ in plan.vector_sums}
    params = frozenset(p.symbol for p in kernel.cell.params) - plan.folded
    for op in plan.backward:
        if isinstance(op, Pass):
            _pass_lines(pr, op, loop, skip_sums=summed, params=params)
        else:
            loop.lines += d.product(f"back_{op.group.name}", pr.view(op.group), d.weight(op.group.name, True))
    loop.lines += [f"d_state_{s} = {_zeros(kernel.cell, s, d)}" for s in plan.zero_carries]
    return loop


def _zeros(cell, state: str, dialect: Dialect) -> str:
    """Zeros of ``state``'s shape: ``zeros`` (the module's (B, H) array) for a state of the hidden size."""
    size = cell.state_shape(state)[0]
    return "zeros" if size == "hidden" else dialect.zeros(size_name(size))


# The argument checks, written once: the C binding loads this file from beside its C, and every NumPy module
# carries a copy of it from the line that opens the checks on (the module imports what the lines above import).
CHECKS = Path(__file__).resolve().parent.parent / "c" / "runtime" / "lsym_checks.py"
CHECKS_FROM = "# -- argument checks"


def _checks_source() -> str:
    text = CHECKS.read_text()
    return text[text.index("\n" + CHECKS_FROM) + 1:].rstrip("\n")


def _params(plan: Plan, ops) -> list[str]:
    params = {p.symbol for p in plan.kernel.cell.params}
    read = {s for op in ops if isinstance(op, Pass) for a in op.assigns for s in a.rhs.free_symbols}
    read |= {s for op in ops if isinstance(op, Pass) for _, e in op.sums for s in e.free_symbols}
    return sorted(p.name for p in read & params - plan.folded)


def module_data(kernel: Kernel, dialect: Dialect | None = None) -> dict:
    """What a whole-sequence template prints of ``kernel``'s plan (names and printed lines) in ``dialect``
    (NumPy's by default)."""
    check_names(kernel)
    plan = build_plan(kernel)
    cell, pr = kernel.cell, _Printer(plan, dialect or Dialect())
    forward, forward_setup = pr.dialect.loop(lambda: _forward_lines(pr))
    backward, backward_setup = pr.dialect.loop(lambda: _backward_lines(pr))
    states = {s: plan.home(sp.Symbol(s)).kind == "cache" for s in cell.states}
    shapes = {q.name: q.shape for q in cell.quantities}
    extra = extra_sizes(cell)
    return dict(
        cell=cell.name,
        description=cell.description,
        params=[(p.name, p.shape) for p in cell.params],
        states=cell.states,
        sizes=extra,
        size_names="".join(f", {size_name(s)}" for s in extra),
        state_sizes={s: cell.state_shape(s)[0] for s in cell.states if cell.state_shape(s) != ("hidden",)},
        state_size={s: size_name(cell.state_shape(s)[0]) for s in cell.states},
        zeros={s: _zeros(cell, s, pr.dialect) for s in cell.states},
        param_size={p.name: size_name(p.shape[0]) for p in cell.params},
        state_rows={s: "T + 1" if kept else "2" for s, kept in states.items()},
        last_row={s: "T" if kept else "T % 2" for s, kept in states.items()},
        output=cell.output,
        output_cached=pr.cached_output,
        blocks=max((len(g.weights) for g in kernel.groups), default=1),
        stacks=[(g.name, tuple(w.name for w in g.weights)) for g in kernel.groups],
        biases=[(g.name, tuple(b.name for b in bs)) for g, bs in plan.biases],
        forward_params=_params(plan, plan.forward),
        backward_params=_params(plan, plan.backward),
        deferred=[(g.name, any(b == g for b, _ in plan.biases)) for g in kernel.deferred],
        intermediates=[(a.name, size_name((shapes.get(a.name, ("hidden",)) or ("scalar",))[0]))
                       for a in plan.cache if a.name not in states],
        cached_states=[s for s, kept in states.items() if kept],
        forward_setup=forward_setup,
        forward_lines=forward.lines,
        packed=[(f"d_lin_{p.name}", len(p.adjoints)) for p in plan.packed],
        packed_units={f"d_lin_{p.name}": pr.unit[p.name] for p in plan.packed},
        step_sums=[p for p, _ in kernel.vector_grads if p not in {q for q, _, _ in plan.vector_sums}],
        backward_setup=backward_setup,
        backward_lines=backward.lines,
        after_loop=backward.after,
        summed_arrays=sorted({f"d_lin_{name}" for _, name, _ in plan.vector_sums}),
        vector_sums=[(p, f"d_lin_{name}", _cols(k, 1, pr.unit[name])) for p, name, k in plan.vector_sums],
        weight_grads=[{
            "group": g.name, "d_lin": pr.view(g).rows, "operand": pr.whole(plan.home(g.operand)),
            "blocks": [(w.name, _cols(k, 1, pr.unit[g.name])) for k, w in enumerate(g.weights)],
        } for g in kernel.groups],
        per_step_input=any(e != 0 for _, e in kernel.input_grads),
        input_back=[(pr.view(g).rows, g.name) for g in kernel.deferred],
    )


def numpy_module(kernel: Kernel) -> str:
    """The standalone NumPy module of DESIGN.md's API for ``kernel``'s cell."""
    return render("codegen/numpy/module.py.j2", checks=_checks_source(), **module_data(kernel))


def numpy_files(kernel: Kernel) -> dict[str, str]:
    return {f"{naming.module_name(kernel.cell.name)}.py": numpy_module(kernel)}
