"""The width of every value of a step (Kernel → {symbol: size}), for the plan and the emitters.

A cell's vectors have sizes: ``hidden``, ``input`` and those it declares (``proj``).  An element-wise
expression reads values of one size and gives one of that size; a product ``W @ v`` gives one of
``W``'s rows.  So every value of the kernel's statements has one width, found in statement order, and
a pass of the plan, which loops over batch × width, holds values of one width: :func:`split` cuts a
pass whose values have several into one pass per width.  A reduction across the units gives a
per-example scalar: it adds up hidden values, and only hidden values read it (a cell that mixes it with
another size is refused).
"""

from __future__ import annotations

import sympy as sp

from ..core.cells import CellError
from .kernel import Assign, Kernel, Reduce

T, B, D, H = sp.symbols("T B D H", positive=True, integer=True)
SIZES = {"hidden": H, "input": D}


def extra_sizes(cell) -> tuple[str, ...]:
    """The sizes beyond hidden and input in the order the generated APIs take them: as the parameters first
    have them (the generated code reads each size from a parameter)."""
    return tuple(dict.fromkeys(s for p in cell.params for s in p.shape if s not in SIZES))


def size_symbol(size: str) -> sp.Symbol:
    """A size as a symbol of the plan's buffer sizes: ``H``, ``D``, ``n_proj_`` (the C's name of it)."""
    return SIZES.get(size) or sp.Symbol(f"n_{size}_", positive=True, integer=True)


def widths(kernel: Kernel, extra: dict | None = None) -> dict[sp.Symbol, str]:
    """{symbol: size} for every vector value of ``kernel``'s forward and backward statements (and of the
    ``extra`` assignments {symbol: rhs}, read before the backward statements); a per-example scalar's is
    hidden."""
    cell = kernel.cell
    out = {q.symbol: q.shape[0] for q in cell.quantities if len(q.shape) == 1}
    for g in kernel.groups:
        rows = cell.shape(g.weights[0].name)[0]
        out.update({g.block(k): rows for k in range(len(g.weights))})
        out.update({a: rows for a in g.adjoints})
        out[g.back] = cell.shape(g.operand.name)[0]
    out.update({seed: cell.state_shape(s)[0] for s, seed in kernel.seeds})
    assigns = [Assign(s, e) for s, e in (extra or {}).items()] + [
        st for st in kernel.forward + kernel.backward if isinstance(st, (Assign, Reduce))]
    scalars = set()  # per-example scalars (reductions, arithmetic on them only): in hidden-width passes
    for st in assigns:
        vectors = [s for s in sp.ordered(st.rhs.free_symbols) if s in out and s not in scalars]
        out.setdefault(st.lhs, out[vectors[0]] if vectors else "hidden")
        if (isinstance(st, Reduce) or st.rhs.free_symbols & scalars) and out[st.lhs] != "hidden":
            raise CellError(f"cell '{cell.name}': {st.lhs} mixes a reduction across the units with values of "
                            f"the size {out[st.lhs]}; the generated code takes reductions over hidden values only")
        scalars |= {st.lhs} if isinstance(st, Reduce) or not vectors else set()
    return out


def expr_width(expr: sp.Expr, width: dict[sp.Symbol, str]) -> str:
    """The width of an element-wise expression: that of the values it reads (hidden when none)."""
    return next((width[s] for s in sp.ordered(sp.sympify(expr).free_symbols) if s in width), "hidden")


def split(op, width: dict[sp.Symbol, str], make) -> list:
    """The pass ``op`` as one pass per width of its values (in the order the widths first appear), each
    with the loads, assignments, stores, sums and reductions of that width (a reduction's: that of the
    values it adds up); ``make(size, loads, assigns, stores, sums, reductions)`` builds one."""
    def of(sym):
        return width.get(sym, "hidden")
    sizes = list(dict.fromkeys([of(a.lhs) for a in op.assigns] + [of(s) for s, _ in op.loads + op.stores]
                               + [expr_width(e, width) for _, e in op.sums]
                               + [expr_width(e, width) for _, e, _ in op.reductions])) or ["hidden"]
    return [make(size, tuple(x for x in op.loads if of(x[0]) == size),
                 tuple(a for a in op.assigns if of(a.lhs) == size), tuple(x for x in op.stores if of(x[0]) == size),
                 tuple(x for x in op.sums if expr_width(x[1], width) == size),
                 tuple(x for x in op.reductions if expr_width(x[1], width) == size)) for size in sizes]


def size_sources(cell) -> dict[str, tuple[str, int]]:
    """{size: (parameter, axis)}: where generated code that reads its sizes off the parameters finds each
    size but input (hidden: the first parameter with hidden rows; a declared size: the first that has it)."""
    out = {"hidden": next((p.name, 0) for p in cell.params if p.shape[0] == "hidden")}
    for size in extra_sizes(cell):
        out[size] = next((p.name, p.shape.index(size)) for p in cell.params if size in p.shape)
    return out
