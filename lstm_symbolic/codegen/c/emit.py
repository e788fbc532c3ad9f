"""The C emitter: a Kernel planned into fused element-wise loops and matrix products (→ .h, .c, _c.py).

Every decision is taken here and handed to ``codegen/c/`` as strings: which statements run
in which pass of a step (a pass ends where a matrix product needs its results), where each
value lives between passes (a local scalar, the forward cache, a projection buffer, a d_lin
buffer or a scratch array), and the workspace layout.  The same plan is printed twice, in
``double`` (``_f64``) and ``float`` (``_f32``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sympy as sp

from ... import naming
from ...errors import UserError
from ...printing.c import REAL_TYPES, c_code
from ..kernel import Assign, BackProject, Group, Kernel, Project
from ..render import render

SIZE = {"hidden": "H", "input": "D"}  # I is complex.h's imaginary unit (cblas.h includes it)


class CEmitError(UserError, ValueError):
    """The cell cannot be emitted as C (a name clash with the generated code, an unsupported shape)."""


@dataclass
class Pass:
    """One fused loop over batch × hidden: loads, statements, stores (all printed)."""

    loads: list = field(default_factory=list)  # (name, C expression)
    assigns: list = field(default_factory=list)  # (name, {ctype: C expression})
    stores: list = field(default_factory=list)  # C statements without the type-dependent part
    sums: list = field(default_factory=list)  # (C lvalue, {ctype: C expression}) accumulated with +=
    rows: list = field(default_factory=list)  # row pointer declarations


class Rows:
    """Row pointers of a step's arrays: ``name_r_ = name + row_ * stride`` (:func:`naming.row`) is set once per
    batch row, so the inner loop indexes every array by ``col_`` (plus a block offset) and vectorizes."""

    def __init__(self):
        self.stride: dict[str, str] = {}

    def at(self, array: str, stride: str = "H", block: int = 0) -> str:
        self.stride[array] = stride
        return f"{naming.row(array)}[{f'{block} * H + ' if block else ''}col_]"

    def pointers(self, pz: Pass) -> list[str]:
        """Declarations of the row pointers a pass uses (writable where it stores through them)."""
        text = "\n".join([e for _, e in pz.loads] + pz.stores + [lhs for lhs, _ in pz.sums])
        written = "\n".join([st.split(" = ")[0] for st in pz.stores] + [lhs for lhs, _ in pz.sums])
        out = []
        for array, stride in self.stride.items():
            if f"{naming.row(array)}[" in text:
                const = "" if f"{naming.row(array)}[" in written else "const "
                out.append(f"{const}@R@ *{naming.row(array)} = {array} + (size_t)row_ * ({stride});")
        return out


def _check_names(kernel: Kernel) -> None:
    cell = kernel.cell
    naming.check_cell(cell, [(w.name, g.name) for g in kernel.groups for w in g.weights])
    if not any(p.shape[0] == "hidden" for p in cell.params):
        raise CEmitError(f"cell '{cell.name}': the generated code reads the hidden size from a parameter "
                         "with hidden rows, and the cell has none")
    if len(cell.inputs) != 1:
        raise CEmitError(f"cell '{cell.name}': the C API takes one input sequence (xs), not {len(cell.inputs)}")
    blocks = {g.block(k) for g in kernel.groups for k in range(len(g.weights))}
    for q in kernel.saved:
        if q not in blocks and cell.shape(q.name) != ("hidden",):
            raise CEmitError(f"cell '{cell.name}': the C emitter needs saved value '{q.name}' to be hidden-sized")


def _nh(g: Group) -> str:
    return f"{len(g.weights)} * H" if len(g.weights) > 1 else "H"


def _op_size(kernel: Kernel, g: Group) -> str:
    return SIZE[kernel.cell.shape(g.name)[0]]


@dataclass
class CacheLayout:
    """The forward cache: its arrays (name, rows: "T" or "T + 1") and where each stored value lives.

    A state whose previous value the backward pass reads keeps T + 1 rows in one array (row t: the
    state before step t), so its value after step t is row t + 1 of the same array: stored once."""

    arrays: list = field(default_factory=list)  # (array name, extra row: 0 or 1)
    where: dict = field(default_factory=dict)  # symbol -> (array name, row shift: 0 or 1)

    def offset(self, k: int) -> str:
        """The C expression of array k's first element in the cache."""
        n1 = sum(extra for _, extra in self.arrays[:k])
        return f"(size_t)({k} * T + {n1}) * BH" if n1 else f"(size_t){k} * T * BH"

    def size(self) -> str:
        n1 = sum(extra for _, extra in self.arrays)
        return f"(size_t)({len(self.arrays)} * T + {n1}) * B * H" if n1 else f"(size_t){len(self.arrays)} * T * B * H"

    def row(self, sym, const: bool = False) -> str:
        """The declaration of ``S_<sym>t``, the row block of step t_."""
        array, shift = self.where[sym]
        row = "(t_ + 1)" if shift else "t_"
        return f"{'const ' if const else ''}@R@ *S_{sym.name}t = C_{array} + (size_t){row} * BH;"

    def state_homes(self, cell) -> dict[str, str]:
        """{state: its cache array} for the states kept there (T + 1 rows): the forward pass reads the
        state before step t from row t and writes the state after it to row t + 1, with no other copy."""
        return {s: f"C_{cell.prev(s).name}" for s in cell.states if (cell.prev(s).name, 1) in self.arrays}


def _cache_layout(kernel: Kernel) -> CacheLayout:
    cell = kernel.cell
    saved = list(kernel.saved)
    prevs = {cell.prev(s): sp.Symbol(s) for s in cell.states}
    lay = CacheLayout()
    for q in saved:
        if q in prevs:  # the state before each step, and after the last: T + 1 rows
            lay.arrays.append((q.name, 1))
            lay.where[q] = (q.name, 0)
            lay.where[prevs[q]] = (q.name, 1)
    for q in saved:
        if q not in lay.where:
            lay.arrays.append((q.name, 0))
            lay.where[q] = (q.name, 0)
    return lay


def _printed(expr) -> dict[str, str]:
    return {ctype: c_code(sp.sympify(expr), ctype) for ctype in REAL_TYPES}


def _schedule(statements, boundary, produced, fixed):
    """Put each Assign in the earliest pass its reads allow; a boundary statement (a matrix
    product) ends a pass and makes ``produced(st)`` available from the next one.

    Returns (passes of Assigns, boundaries in order, phase of every defined symbol)."""
    phase = dict(fixed)
    bounds, passes = [], [[]]
    for st in statements:
        if isinstance(st, boundary):
            bounds.append(st)
            passes.append([])
            for sym in produced(st):
                phase[sym] = len(bounds)
            continue
        p = max([phase.get(s, 0) for s in st.rhs.free_symbols], default=0)
        passes[p].append(st)
        phase[st.lhs] = p
    return passes, bounds, phase


def _last_reads(passes, extra) -> dict:
    """The last pass that reads each symbol (statements and extra (phase, expr) pairs)."""
    last: dict = {}
    for p, sts in enumerate(passes):
        for st in sts:
            for s in st.rhs.free_symbols:
                last[s] = max(last.get(s, -1), p)
    for p, expr in extra:
        for s in sp.sympify(expr).free_symbols:
            last[s] = max(last.get(s, -1), p)
    return last


def _fill(passes, load, stores_of, sums, rows: Rows, on_load=lambda s: []):
    """Printed passes: loads for what a pass reads but does not define, then its statements."""
    out = []
    for p, sts in enumerate(passes):
        pz = Pass()
        reads = []
        for st in sts:
            reads += [s for s in sp.ordered(st.rhs.free_symbols) if s not in reads]
        for _, _, expr in (x for x in sums if x[0] == p):
            reads += [s for s in sp.ordered(sp.sympify(expr).free_symbols) if s not in reads]
        local = {st.lhs for st in sts}
        pz.loads = [(s.name, load(s)) for s in reads if s not in local]
        pz.stores += [line for s in reads if s not in local for line in on_load(s)]
        for st in sts:
            pz.assigns.append((st.lhs.name, _printed(st.rhs)))
            pz.stores += stores_of(st.lhs, p)
        pz.sums = [(lhs, _printed(expr)) for q, lhs, expr in sums if q == p]
        pz.rows = rows.pointers(pz)
        out.append(pz)
    return out


def _ops(printed, calls) -> list[dict]:
    """Passes and matrix products interleaved (pass 0, call 0, pass 1, ...); empty passes dropped."""
    ops = []
    for k, pz in enumerate(printed):
        if pz.assigns or pz.sums:
            ops.append({"kind": "loop", "pass": pz})
        if k < len(calls):
            ops.append({"kind": "call", "code": calls[k]})
    return ops


def _forward_plan(kernel: Kernel, cache: CacheLayout):
    """The forward step: (ops, per-step pointer declarations, scratch arrays)."""
    cell = kernel.cell
    blocks = {g.block(k): (g, k) for g in kernel.groups for k in range(len(g.weights))}
    fixed = {b: 0 for b, (g, _) in blocks.items() if not g.per_step}
    passes, projects, _ = _schedule(
        kernel.forward, Project, lambda st: [st.group.block(k) for k in range(len(st.group.weights))], fixed)
    last = _last_reads(passes, [])
    operands = {st.group.operand for st in projects}
    saved = set(kernel.saved)
    stored = set(cache.where)  # the saved values, and the states whose previous value is saved
    states = {sp.Symbol(s): s for s in cell.states}
    prevs = {cell.prev(s): s for s in cell.states}
    inputs = {q.symbol for q in cell.inputs}
    vectors = {p.symbol for p in cell.params if p.shape == ("hidden",)}
    homes = cache.state_homes(cell)
    tmps = []
    rows = Rows()

    def home(sym):
        if sym in prevs:
            return f"prev_{prevs[sym]}"
        if sym in inputs:
            return f"xt_{sym.name}"
        return f"S_{sym.name}t" if sym in saved else f"tmp_{sym.name}"

    def load(sym):
        if sym in blocks:
            g, k = blocks[sym]
            return rows.at(f"{'proj' if g.per_step else 'pj'}_{g.name}", _nh(g), k)
        return f"P_{sym.name}[col_]" if sym in vectors else rows.at(home(sym))

    def stores_of(sym, p):
        out = []
        if sym in stored:
            out.append(f"{rows.at(f'S_{sym.name}t')} = {sym.name};")
        elif last.get(sym, -1) > p or sym in operands:
            tmps.append(sym.name)
            out.append(f"{rows.at(f'tmp_{sym.name}')} = {sym.name};")
        if sym in states and states[sym] not in homes:  # (a state's row t + 1 in its home is the next prev)
            out.append(f"{rows.at(f'next_{states[sym]}')} = {sym.name};")
        if sym in states and states[sym] == cell.output:
            out.append(f"{rows.at('hs_t')} = {sym.name};")
        return out

    def on_load(sym):  # a projection block the backward pass reads (r * (U_n h + b) of a GRU)
        return [f"{rows.at(f'S_{sym.name}t')} = {sym.name};"] if sym in blocks and sym in saved else []

    printed = _fill(passes, load, stores_of, [], rows, on_load)
    calls = [_project(kernel, st.group, home(st.group.operand)) for st in projects]
    return _ops(printed, calls), _forward_decls(kernel, cache), tmps


def _project(kernel: Kernel, g: Group, source: str) -> str:
    """``proj_g = source @ stkw_g^T`` for the thread's rows r0_..r1_ of one step: on pkf_g (the stacked
    weights stkw_g, transposed and packed) when the call packs them (pk_), else on stkw_g; with the
    hidden units shared out (cols_), the thread's columns c0_..c1_ of each block, on stkw_g (packing
    them, a transposing copy, cost more than it saved at every length measured), once every thread
    has written its part of the source."""
    op, nh, k = _op_size(kernel, g), _nh(g), len(g.weights)
    a, c = f"{source} + (size_t)r0_ * {op}, {op}", f"proj_{g.name} + (size_t)r0_ * ({nh}), {nh}"
    cols = (f"stkw_{g.name} + ((size_t)g_ * H + c0_) * {op}, {op}, (@R@)0, "
            f"proj_{g.name} + (size_t)r0_ * ({nh}) + (size_t)g_ * H + c0_, {nh}")
    return (f"if (pk_) {{\n    mm_pk_@S@(Bs_, {nh}, {op}, {a}, pkf_{g.name}, {c}, 0);\n"
            f"}} else if (cols_) {{\n    LSTM_BARRIER\n    for (g_ = 0; g_ < {k}; ++g_)\n"
            f"        mm_nt_@S@(Bs_, c1_ - c0_, {op}, {a}, {cols});\n"
            f"}} else {{\n    mm_nt_@S@(Bs_, {nh}, {op}, {a}, stkw_{g.name}, {op}, (@R@)0, {c});\n}}")


def _forward_decls(kernel: Kernel, cache: CacheLayout) -> list[str]:
    """The pointers of step t_ in the forward pass (the unused ones are dropped later)."""
    cell = kernel.cell
    homes = cache.state_homes(cell)
    decls = [f"const @R@ *prev_{s} = {homes[s]} + (size_t)t_ * BH;" if s in homes
             else f"const @R@ *prev_{s} = st_{s} + (size_t)(t_ & 1) * BH;" for s in cell.states]
    decls += [f"@R@ *next_{s} = st_{s} + (size_t)((t_ + 1) & 1) * BH;" for s in cell.states if s not in homes]
    decls += ["@R@ *hs_t = hs + (size_t)t_ * BH;"]
    decls += [f"const @R@ *xt_{q.name} = xs + (size_t)t_ * B * {SIZE[q.shape[0]]};" for q in cell.inputs]
    decls += [f"const @R@ *pj_{g.name} = proj_{g.name} + (size_t)t_ * B * {_nh(g)};"
              for g in kernel.groups if not g.per_step]
    prevs = {cell.prev(s) for s in cell.states}  # read as prev_<s> above
    return decls + [cache.row(q) for q in sp.ordered(cache.where) if q not in prevs]


def _backward_plan(kernel: Kernel, buffers: dict[str, str], cache: CacheLayout):
    """The backward step: (ops, per-step pointer declarations, prologue, scratch arrays)."""
    cell = kernel.cell
    backs = {g.back: g for g in kernel.groups}
    seeds = {sym: s for s, sym in kernel.seeds}
    saved = set(kernel.saved)
    vectors = {p.symbol for p in cell.params if p.shape == ("hidden",)}
    slots: dict = {}
    for g in kernel.groups:
        for k, a in enumerate(g.adjoints):
            slots.setdefault(a, {})[buffers[g.name]] = (k, _nh(g))
    fixed = {s: 0 for s in list(seeds) + list(saved) + list(vectors)}
    rows = Rows()
    statements = _backward_statements(kernel, seeds, slots)
    passes, bps, phase = _schedule(statements, BackProject, lambda st: [st.group.back], fixed)

    def when(e):
        return max([phase.get(s, 0) for s in sp.sympify(e).free_symbols], default=0)

    sums = [(when(e), f"GP_{p}[col_]", e) for p, e in kernel.vector_grads]  # the thread's partial sums
    sums += [(when(e), rows.at(f"dxt_{n}"), e) for n, e in kernel.input_grads if e != 0]
    last = _last_reads(passes, [(p, e) for p, _, e in sums])
    state_of = {sym: s for s, sym in kernel.state_grads if sym != 0}
    tmps = []

    def load(sym):
        if sym in seeds:
            return rows.at(f"dcur_{seeds[sym]}")
        if sym in saved:
            return rows.at(f"S_{sym.name}t")
        if sym in backs:
            return rows.at(f"bk_{backs[sym].name}", _op_size(kernel, backs[sym]))
        if sym in vectors:
            return f"P_{sym.name}[col_]"
        if sym in slots:
            buf, (k, nh) = next(iter(slots[sym].items()))
            return rows.at(f"dl_{buf}t", nh, k)
        return rows.at(f"tmp_{sym.name}")

    def stores_of(sym, p):
        out = [f"{rows.at(f'dl_{buf}t', nh, k)} = {sym.name};"
               for buf, (k, nh) in slots.get(sym, {}).items()]
        if sym not in slots and last.get(sym, -1) > p:
            tmps.append(sym.name)
            out.append(f"{rows.at(f'tmp_{sym.name}')} = {sym.name};")
        if sym in state_of:
            out.append(f"{rows.at(f'dnext_{state_of[sym]}')} = {sym.name};")
        return out

    printed = _fill(passes, load, stores_of, sums, rows)
    calls = [_back_project(kernel, st.group, buffers[st.group.name]) for st in bps]
    prologue = [f"if (d_hs)\n    for (row_ = r0_; row_ < r1_; ++row_)\n"
                f"        for (col_ = c0_; col_ < c1_; ++col_)\n"
                f"            dcur_{cell.output}[(size_t)row_ * H + col_] += "
                f"d_hs[(size_t)t_ * BH + (size_t)row_ * H + col_];"]
    prologue += [f"for (row_ = r0_; row_ < r1_; ++row_)\n    memset(dnext_{s} + (size_t)row_ * H + c0_, 0, "
                 f"(size_t)(c1_ - c0_) * sizeof(@R@));" for s, sym in kernel.state_grads if sym == 0]
    return _ops(printed, calls), _backward_decls(kernel, buffers, cache), prologue, tmps


def _backward_statements(kernel: Kernel, seeds: dict, slots: dict) -> list:
    """The backward statements to print: a gradient given to the step that is, as it is, the adjoint
    of a product (h = U @ v + ...: d_h) is copied into the product's d_lin slot by a statement of its
    own (``slots`` is updated); an adjoint that nothing reads (d_f of a gate that cancelled out, a
    d_h_prev = 0) is left out, as C's -Wunused-variable wants."""
    statements = list(kernel.backward)
    for a in [a for a in slots if a in seeds]:
        copy = sp.Symbol(f"{a.name}_lin_")
        slots[copy] = slots.pop(a)
        statements.insert(0, Assign(copy, a))
    kept = {s for _, e in kernel.vector_grads + kernel.input_grads for s in sp.sympify(e).free_symbols}
    kept |= {sym for _, sym in kernel.state_grads} | set(slots)
    while True:
        read = kept | {s for st in statements if isinstance(st, Assign) for s in st.rhs.free_symbols}
        live = [st for st in statements if not isinstance(st, Assign) or st.lhs in read]
        if len(live) == len(statements):
            return live
        statements = live


def _back_project(kernel: Kernel, g: Group, buffer: str) -> str:
    """``bk_g = d_lin_g @ stkw_g`` for the thread's rows r0_..r1_ of one step: on pkb_g (stkw_g packed)
    when the call packs it (pk_), else on stkw_g; with the hidden units shared out (cols_), the
    thread's columns c0_..c1_, on the panels of pkb_g it packed, once every thread has written its
    part of d_lin."""
    op, nh = _op_size(kernel, g), _nh(g)
    a, c = f"dl_{buffer}t + (size_t)r0_ * ({nh}), {nh}", f"bk_{g.name} + (size_t)r0_ * {op}, {op}"
    cols = (f"pkb_{g.name} + (size_t)(c0_ / PK_NR_@S@) * ({nh}) * PK_NR_@S@, "
            f"bk_{g.name} + (size_t)r0_ * {op} + c0_, {op}, 0")
    return (f"if (pk_) {{\n    mm_pk_@S@(Bs_, {op}, {nh}, {a}, pkb_{g.name}, {c}, 0);\n"
            f"}} else if (cols_) {{\n    LSTM_BARRIER\n    mm_pk_@S@(Bs_, c1_ - c0_, {nh}, {a}, {cols});\n"
            f"}} else {{\n    mm_nn_@S@(Bs_, {op}, {nh}, {a}, stkw_{g.name}, {op}, (@R@)0, {c});\n}}")


def _backward_decls(kernel: Kernel, buffers: dict[str, str], cache: CacheLayout) -> list[str]:
    """The pointers of step t_ in the backward pass (the unused ones are dropped later)."""
    cell = kernel.cell
    decls = [f"@R@ *dcur_{s} = dst_{s} + (size_t)(t_ & 1) * BH;" for s in cell.states]
    decls += [f"@R@ *dnext_{s} = dst_{s} + (size_t)((t_ + 1) & 1) * BH;" for s in cell.states]
    decls += [cache.row(s, const=True) for s in kernel.saved]
    decls += [f"@R@ *dl_{b}t = dl_{b} + (size_t)t_ * B * {_nh(g)};"
              for g in kernel.groups for b in [buffers[g.name]] if b == g.name]
    return decls + [f"@R@ *dxt_{q.name} = d_xs + (size_t)t_ * B * {SIZE[q.shape[0]]};" for q in cell.inputs]


def _used(decls: list[str], texts: list[str]) -> list[str]:
    """The declarations whose pointer name the step's code uses."""
    body = "\n".join(texts)
    return [d for d in decls if re.search(r"\b" + re.escape(d.split("=")[0].split("*")[-1].strip()) + r"\b", body)]


def _texts(ops, prologue) -> list[str]:
    out = list(prologue)
    for op in ops:
        if op["kind"] == "call":
            out.append(op["code"])
        else:
            pz = op["pass"]
            out += pz.rows
    return out


def _buffers(kernel: Kernel) -> dict[str, str]:
    """Each group's d_lin buffer: groups with the same adjoints share one."""
    first: dict = {}
    return {g.name: first.setdefault(g.adjoints, g.name) for g in kernel.groups}


def _group_info(kernel: Kernel, cache: CacheLayout) -> list[dict]:
    index = {p.name: k for k, p in enumerate(kernel.cell.params)}
    saved = {s.name: s for s in kernel.saved}
    out = []
    for g in kernel.groups:
        op = g.name
        if op in {q.name for q in kernel.cell.inputs}:
            operand_all = "xs"
        elif op in saved:
            array, shift = cache.where[saved[op]]
            operand_all = f"C_{array} + BH" if shift else f"C_{array}"
        else:
            raise CEmitError(f"operand '{op}' of a per-step product is not in the forward cache")
        out.append({
            "name": op,
            "weights": [{"name": w.name, "index": index[w.name], "k": k} for k, w in enumerate(g.weights)],
            "n": len(g.weights),
            "nh": _nh(g),
            "op": _op_size(kernel, g),
            "per_step": g.per_step,
            "operand_all": operand_all,
            # C conditions: the group's weights (gradients) lie one after the other in memory
            "params_adjacent": " && ".join(f"P_{b.name} == P_{a.name} + (size_t)H * {_op_size(kernel, g)}"
                                           for a, b in zip(g.weights, g.weights[1:], strict=False)),
            "grads_adjacent": " && ".join(f"G_{b.name} == G_{a.name} + (size_t)H * {_op_size(kernel, g)}"
                                          for a, b in zip(g.weights, g.weights[1:], strict=False)),
        })
    return out


def _calls_use(ops, name: str) -> bool:
    return any(op["kind"] == "call" and re.search(rf"\b{name}\b", op["code"]) for op in ops)


def _layouts(groups, projections_groups, back_groups, dl_buffers, states, homes, ftmps, btmps, n_vgrads):
    """Workspace buffers of the forward and the backward pass: (name, size in elements).  ``pkf_``,
    ``pkb_<group>``: a group's stacked weights packed for the time loop's tiles; ``wpa_``, ``wpb_``: one block of
    each operand of the weight gradients' products, packed; ``gpart_``: the vector gradients' partial
    sums of threads 1.. of the batch-parallel time loop."""
    stacks = [(f"stk_{g['name']}", f"(size_t){g['n']} * H * {g['op']}") for g in groups if g["n"] > 1]
    fwd = stacks + [(f"proj_{g['name']}", f"(size_t){'T * B' if not g['per_step'] else 'B'} * {g['n']} * H")
                    for g in groups if not g["per_step"] or g["name"] in projections_groups]
    fwd += [(f"pkf_{g['name']}", f"PK_COLS_({g['nh']}) * {g['op']}") for g in groups
            if not g["per_step"] or g["name"] in projections_groups]
    fwd += [(f"st_{s}", "(size_t)2 * B * H") for s in states if s not in homes]
    fwd += [(f"tmp_{n}", "(size_t)B * H") for n in ftmps]
    bwd = stacks + [(f"dl_{g['name']}", f"(size_t)T * B * {g['n']} * H") for g in dl_buffers]
    bwd += [(f"bk_{g['name']}", f"(size_t)B * {g['op']}") for g in back_groups]
    bwd += [(f"pkb_{g['name']}", f"PK_COLS_({g['op']}) * ({g['nh']})") for g in groups
            if not g["per_step"] or g in back_groups]
    bwd += [(f"dst_{s}", "(size_t)2 * B * H") for s in states] + [(f"tmp_{n}", "(size_t)B * H") for n in btmps]
    n_max = max((g["n"] for g in groups), default=1)  # a cell without W @ v: none
    bwd += [("wpa_", f"(size_t)LSTM_KC * PK_ROWS_({n_max} * H)"), ("wpb_", "(size_t)LSTM_KC * PK_COLS_(D > H ? D : H)")]
    if n_vgrads:
        bwd.append(("gpart_", f"(size_t)(LSTM_MAX_THREADS - 1) * {n_vgrads} * H"))
    return fwd, bwd


def c_context(kernel: Kernel) -> dict:
    """Everything the C templates lay out, printed."""
    _check_names(kernel)
    cell = kernel.cell
    buffers = _buffers(kernel)
    cache = _cache_layout(kernel)
    fwd, fdecls, ftmps = _forward_plan(kernel, cache)
    bwd, bdecls, bpro, btmps = _backward_plan(kernel, buffers, cache)
    groups = _group_info(kernel, cache)
    state_rows = {array: next(q.name for q, (a, shift) in cache.where.items() if a == array and shift)
                  for array, extra in cache.arrays if extra}
    back_groups = [g for g in groups if _calls_use(bwd, f"bk_{g['name']}")]
    projected = {g["name"] for g in groups if _calls_use(fwd, f"proj_{g['name']}")}
    dl_buffers = [g for g in groups if buffers[g["name"]] == g["name"]]
    prefix = naming.module_name(cell.name)
    ftmps, btmps = sorted(set(ftmps)), sorted(set(btmps))
    fwd_layout, bwd_layout = _layouts(groups, projected, back_groups, dl_buffers,
                                      cell.states, cache.state_homes(cell), ftmps, btmps, len(kernel.vector_grads))
    return {
        "cell": cell.name,
        "prefix": prefix,
        "guard": prefix.upper() + "_H",
        "description": cell.description,
        "params": [{"name": p.name, "index": k, "shape": " x ".join(p.shape),
                    "size": " * ".join(SIZE[s] for s in p.shape), "repr": repr(p.shape)}
                   for k, p in enumerate(cell.params)],
        "states": list(cell.states),
        "states_repr": repr(cell.states),
        "hidden_param": next(p.name for p in cell.params if p.shape[0] == "hidden"),
        "blocks": max((len(g.weights) for g in kernel.groups), default=1),
        "output": cell.output,
        "cache_arrays": [{"name": a, "offset": cache.offset(k), "rows": "T + 1" if extra else "T",
                          "note": f" (row t + 1: {state_rows[a]} after step t)" if extra else ""}
                         for k, (a, extra) in enumerate(cache.arrays)],
        "cache_size": cache.size(),
        "state_homes": cache.state_homes(cell),
        "groups": groups,
        "deferred": [g for g in groups if not g["per_step"]],
        "packed_fwd": [g for g in groups if g["per_step"] and g["name"] in projected],
        "packed_bwd": back_groups,
        "forward": fwd,
        "forward_decls": _used(fdecls, _texts(fwd, [])),
        "fwd_layout": fwd_layout,
        "bwd_layout": bwd_layout,
        "backward": bwd,
        "backward_decls": _used(bdecls, _texts(bwd, bpro)),
        "backward_prologue": bpro,
        "buffers": buffers,
        "vgrads": [p for p, _ in kernel.vector_grads],
        "reals": [{"ctype": ct, "sfx": sfx, "tanh": "tanh" if ct == "double" else "tanhf",
                   "blas": "d" if ct == "double" else "s"} for ct, (_, sfx) in REAL_TYPES.items()],
    }


def c_files(kernel: Kernel) -> dict[str, str]:
    """``<m>.h``, ``<m>.c`` and the ctypes binding ``<m>_c.py`` of ``kernel``'s cell."""
    ctx = c_context(kernel)
    m = ctx["prefix"]
    return {
        f"{m}.h": render("codegen/c/header.h.j2", **ctx),
        f"{m}.c": render("codegen/c/source.c.j2", **ctx),
        f"{m}_c.py": render("codegen/c/binding.py.j2", **ctx),
    }
