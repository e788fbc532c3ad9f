"""The JAX emitter: a cell's :class:`~lstm_symbolic.codegen.plan.Plan` printed as the bodies of two
``lax.scan`` steps into ``codegen/jax/module.py.j2`` (Plan → the text of ``<cell>_jax.py``).

JAX arrays are values, not places: a slot of the plan is where a step finds a value or what it hands on.
Forward, the state before the step is the scan's carry, the input and the input projection are the
scan's per-step inputs, and every cache array the plan keeps is a per-step output (a state's T + 1
rows: the initial state before them).  Backward (a reverse scan), the carry is the gradient of each
state, the cache rows are per-step inputs, and the blocks stored into a packed adjoint array are
joined into one per-step output; the weight gradients, the vector gradients that sum one packed array
and the input's projected gradient are taken over all steps after the scan, as in the NumPy module.
A step's values are its locals: a load of a value the step already holds prints nothing.
"""

from __future__ import annotations

import sympy as sp

from ... import naming
from ...core.functions import unit_mean, unit_sum
from ...printing.jax import jax_code
from ..kernel import Kernel, check_names
from ..numpy.emit import size_name
from ..plan import Pass, Plan, Slot, T, build_plan
from ..render import render
from ..widths import extra_sizes, size_sources


def _cols(start: int, count: int = 1, unit: str = "H") -> str:
    """The column slice of ``count`` blocks of ``unit`` columns from block ``start``: ``H:2 * H``."""
    def at(k):
        return "" if k == 0 else unit if k == 1 else f"{k} * {unit}"
    return f"{at(start)}:{at(start + count) or '0'}"


def _units(plan: Plan) -> dict[str, str]:
    """{group or packed array: the size of its blocks as the code names it (``H``, ``_n_proj``)}."""
    cell, groups = plan.kernel.cell, plan.kernel.groups
    rows = {g.name: size_name(cell.shape(g.weights[0].name)[0]) for g in groups}
    by_adjoint = {a: rows[g.name] for g in groups for a in g.adjoints}
    return {**rows, **{p.name: by_adjoint[p.adjoints[0]] for p in plan.packed}}


def _block(text: str, slot: Slot, plan: Plan) -> str:
    return text if slot.width == 1 else f"{text}[..., {_cols(slot.block, 1, _units(plan)[slot.name])}]"


class _Step:
    """The lines of one scan step, and what it reads and hands on: {key: the whole-sequence array} of its
    per-step inputs, the states it carries, {key: value} of its per-step outputs, the packed blocks."""

    def __init__(self, plan: Plan):
        self.plan, self.lines, self.local = plan, [], set()
        self.inputs: dict[str, str] = {}
        self.carry: dict[str, str] = {}
        self.outputs: dict[str, str] = {}
        self.blocks: dict[str, dict[int, str]] = {p.name: {} for p in plan.packed}
        self.alias: dict[sp.Symbol, sp.Symbol] = {}  # a local assigned another local: the first name
        self.same: dict[str, str] = {}  # a packed array whose blocks are another's: that array

    def row(self, key: str, whole: str) -> str:
        """The step's row of the sequence ``whole`` (a per-step input of the scan)."""
        self.inputs[key] = whole
        return f'_at["{key}"]'

    def cache_row(self, slot: Slot) -> str:
        rows = next(a.rows for a in self.plan.cache if a.name == slot.name)
        if rows == T:
            return self.row(f"{slot.name}_seq[t]", f"{slot.name}_seq")
        whole = f"{slot.name}_seq[1:]" if slot.shift else f"{slot.name}_seq[:-1]"
        return self.row(f"{slot.name}_seq[t + {slot.shift}]" if slot.shift else f"{slot.name}_seq[t]", whole)

    def load(self, sym: sp.Symbol, text: str | None) -> None:
        if sym in self.local:
            return
        if text is None:
            raise ValueError(f"the JAX emitter finds no value for {sym.name}: the plan loads it from nowhere "
                             "a scan step reads")
        self.lines.append(f"{sym.name} = {text}")
        self.local.add(sym)

    def assign(self, lhs: sp.Symbol, rhs: sp.Expr) -> None:
        self.lines.append(f"{lhs.name} = {jax_code(rhs)}")
        self.local.add(lhs)
        if isinstance(rhs, sp.Symbol) and rhs in self.local:
            self.alias[lhs] = self.alias.get(rhs, rhs)

    def store_block(self, sym: sp.Symbol, slot: Slot) -> None:
        """Stored under its first name, so that packed arrays of the same blocks print alike."""
        self.blocks[slot.name][slot.block] = self.alias.get(sym, sym).name

    def joined(self, packed: str, start: int, count: int) -> str:
        """Blocks ``[start, +count)`` of a packed array at this step, as one array."""
        try:
            names = [self.blocks[packed][k] for k in range(start, start + count)]
        except KeyError as missing:
            raise ValueError(f"the plan reads block {missing} of d_lin_{packed} before it stores it") from None
        return names[0] if count == 1 else f"jnp.concatenate([{', '.join(names)}], axis=-1)"


def _params_of(plan: Plan) -> set[sp.Symbol]:
    return {p.symbol for p in plan.kernel.cell.params}


def _compute(step: _Step, op: Pass, params, at) -> None:
    """A pass's loads (parameters excepted: read whole), its assignments in order, then its row reductions."""
    for sym, slot in op.loads:
        if sym not in params:
            step.load(sym, at(slot))
    for a in op.assigns:
        step.assign(a.lhs, a.rhs)
    for slot, e, mean in op.reductions:  # a row reduction, (B, 1): the pass's last value
        step.assign(sp.Symbol(slot.name), (unit_mean if mean else unit_sum)(e))


def _forward_step(plan: Plan) -> _Step:
    step, cell = _Step(plan), plan.kernel.cell
    deferred = {g.name for g in plan.kernel.deferred}
    states, params = set(cell.states), _params_of(plan)
    output_cached = plan.home(sp.Symbol(cell.output)).kind == "cache"  # hs: the rows of its cache array

    def at(slot: Slot) -> str | None:
        if slot.kind == "input":
            return step.row("xs[t]", "xs")
        if slot.kind == "proj":
            whole = step.row(f"proj_{slot.name}[t]", f"proj_{slot.name}") if slot.name in deferred \
                else f"proj_{slot.name}"
            return _block(whole, slot, plan)
        if slot.kind in ("state", "cache") and slot.name in states and not slot.shift:
            return f'_carry["{slot.name}"]'
        return None

    for op in plan.forward:
        if not isinstance(op, Pass):
            g = op.group
            source = g.operand.name if g.operand in step.local else at(op.source)
            step.lines.append(f'proj_{g.name} = {source} @ stacked["{g.name}"].T')
            continue
        _compute(step, op, params, at)
        for sym, slot in op.stores:
            if slot.kind in ("state", "cache") and slot.name in states and slot.shift:
                step.carry[slot.name] = sym.name
            if slot.kind == "cache":
                step.outputs[slot.name] = sym.name
            elif slot.kind == "output" and not output_cached:
                step.outputs["hs"] = sym.name
    return step


def _backward_step(plan: Plan) -> _Step:
    step, kernel = _Step(plan), plan.kernel
    params, summed = _params_of(plan), {p for p, _, _ in plan.vector_sums}
    for s, seed in kernel.seeds:
        d_out = f'{step.row("d_hs[t]", "d_hs")} + ' if s == kernel.cell.output else ""
        step.lines.append(f'{seed.name} = {d_out}_carry["{s}"]')
        step.local.add(seed)

    def at(slot: Slot) -> str | None:
        if slot.kind == "cache":
            return step.cache_row(slot)
        return step.row("xs[t]", "xs") if slot.kind == "input" else None

    for op in plan.backward:
        if not isinstance(op, Pass):
            view = plan.view(op.group)
            joined = step.joined(view.name, view.block, len(op.group.adjoints))
            step.lines.append(f'back_{op.group.name} = {joined} @ stacked["{op.group.name}"]')
            step.local.add(op.group.back)
            continue
        _compute(step, op, params, at)
        for sym, slot in op.stores:
            if slot.kind == "dlin":
                step.store_block(sym, slot)
            elif slot.kind == "carry":
                step.carry[slot.name] = sym.name
        for slot, e in op.sums:
            if slot.kind == "grad" and slot.name not in summed:
                step.outputs[f"d_{slot.name}"] = f"({jax_code(e)}).sum(axis=-2)"
            elif slot.kind == "dx":
                step.outputs["d_xs"] = jax_code(e)
    for s in plan.zero_carries:
        step.carry[s] = f'jnp.zeros_like(_carry["{s}"])'
    first: dict[str, str] = {}  # a packed array's blocks at the step -> the first array of them
    for p in plan.packed:
        joined = step.joined(p.name, 0, len(p.adjoints))
        if joined in first:  # the same values (sLSTM: x's and h_prev's adjoints): one per-step output
            step.same[p.name] = first[joined]
        else:
            first[joined] = p.name
            step.outputs[f"d_lin_{p.name}"] = joined
    return step


def _read_params(plan: Plan, ops) -> list[str]:
    """The vector parameters a step reads (the weights it reads stacked)."""
    read = {s for op in ops if isinstance(op, Pass) for a in op.assigns for s in a.rhs.free_symbols}
    read |= {s for op in ops if isinstance(op, Pass) for _, e in op.sums for s in e.free_symbols}
    return sorted(p.name for p in read & _params_of(plan))


def _whole(plan: Plan, slot: Slot) -> str:
    """The operand of a weight gradient over every step."""
    if slot.kind == "input":
        return "xs"
    if next(a.rows for a in plan.cache if a.name == slot.name) == T:
        return f"{slot.name}_seq"
    return f"{slot.name}_seq[1:]" if slot.shift else f"{slot.name}_seq[:-1]"


def _view(plan: Plan, group) -> str:
    """``group``'s adjoints over every step (a run of a packed array)."""
    slot, n = plan.view(group), len(group.adjoints)
    return f"d_lin_{slot.name}" if n == slot.width else \
        f"d_lin_{slot.name}[..., {_cols(slot.block, n, _units(plan)[slot.name])}]"


def jax_module(kernel: Kernel) -> str:
    """The standalone JAX module (``forward`` with a custom VJP) of ``kernel``'s cell."""
    check_names(kernel)
    plan = build_plan(kernel)
    cell, units = kernel.cell, _units(plan)
    fwd, bwd = _forward_step(plan), _backward_step(plan)
    names = [name for _, name, _ in plan.vector_sums]
    summed = {name for name in names if names.count(name) > 1}  # summed whole once, then sliced
    state_cached = {s: next((a for a in plan.cache if a.name == s), None) is not None for s in cell.states}
    return render(
        "codegen/jax/module.py.j2",
        cell=cell.name,
        description=cell.description,
        params=[(p.name, p.shape) for p in cell.params],
        states=cell.states,
        sizes=extra_sizes(cell),
        size_sources=size_sources(cell),
        size_lines=[f'{size_name(s)} = params["{p}"].shape[{k}]' for s, (p, k) in size_sources(cell).items()],
        state_sizes={s: cell.state_shape(s)[0] for s in cell.states if cell.state_shape(s) != ("hidden",)},
        stacks=[(g.name, tuple(w.name for w in g.weights)) for g in kernel.groups],
        deferred=[g.name for g in kernel.deferred],
        forward_params=_read_params(plan, plan.forward),
        forward=fwd,
        cache=[(a.name, state_cached.get(a.name, False)) for a in plan.cache],
        output=f"{cell.output}_seq[1:]" if "hs" not in fwd.outputs else '_ys["hs"]',
        backward_params=_read_params(plan, plan.backward),
        backward=bwd,
        weight_grads=[{"group": g.name, "d_lin": _view(plan, g), "operand": _whole(plan, plan.home(g.operand)),
                       "blocks": [(w.name, _cols(k, 1, units[g.name])) for k, w in enumerate(g.weights)]}
                      for g in kernel.groups],
        vector_sums=[(p, name in summed, name, _cols(k, 1, units[name])) for p, name, k in plan.vector_sums],
        summed=sorted(summed),
        step_sums=[p for p, _ in kernel.vector_grads if f"d_{p}" in bwd.outputs],
        input_grads=[f"{_view(plan, g)} @ stacked[\"{g.name}\"]" for g in kernel.deferred]
        + (['_ys["d_xs"]'] if "d_xs" in bwd.outputs else []),
    )


def jax_files(kernel: Kernel) -> dict[str, str]:
    return {f"{naming.module_name(kernel.cell.name)}_jax.py": jax_module(kernel)}
