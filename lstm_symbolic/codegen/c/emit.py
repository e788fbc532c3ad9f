"""The C emitter: a cell's :class:`~lstm_symbolic.codegen.plan.Plan` printed as C (→ .h, .c, _c.py).

The plan decides what runs in which pass and where each value lives; this module names each
slot of the plan as a C array (a cache row ``S_<name>t``, a projection ``proj_<group>``, a
packed adjoint array ``dl_<group>t``...) and prints the passes' expressions with the kernel
printer, once for both real types: the template compiles the kernel twice, in ``double``
(``_f64``) and ``float`` (``_f32``), through the macros ``LSYM_K_REAL`` and ``LSYM_K(name)``.
"""

from __future__ import annotations

import sympy as sp

from ... import naming
from ...errors import UserError
from ...printing.c import REAL_TYPES, kernel_code
from ..kernel import Group, Kernel, check_names
from ..plan import B, D, H, Pass, Plan, Product, Slot, T, build_plan
from ..render import render
from ..widths import extra_sizes
from . import runtime_files

SIZE = {"hidden": "H", "input": "D"}  # I is complex.h's imaginary unit (cblas.h includes it)


def csize(size: str) -> str:
    """A size as the C names it: ``H``, ``D``, ``n_proj_`` for a size a cell declares (an argument)."""
    return SIZE.get(size) or f"n_{size}_"


def _rows(size: str) -> str:
    """B times a size: ``BH`` for the hidden size."""
    return "BH" if size == "hidden" else f"B * {csize(size)}"


def _bounds(size: str) -> tuple[str, str]:
    """The names of a thread's first and end column of a pass over ``size`` (cols_: its share of them)."""
    return ("c0_", "c1_") if size == "hidden" else (f"c0_{size}_", f"c1_{size}_")


def _cmax(values: list[str]) -> str:
    """The largest of C expressions: ``a > b ? a : b``."""
    out = values[0]
    for v in values[1:]:
        out = f"({out}) > {v} ? ({out}) : {v}" if "?" in out else f"{out} > {v} ? {out} : {v}"
    return out


class CEmitError(UserError, ValueError):
    """The cell cannot be emitted as C (a name clash with the generated code, an unsupported shape)."""


def _check_names(kernel: Kernel) -> None:
    check_names(kernel)
    cell = kernel.cell
    if len(cell.inputs) != 1:
        raise CEmitError(f"cell '{cell.name}': the C API takes one input sequence (xs), not {len(cell.inputs)}")
    for p in (p for p in cell.params if len(p.shape) == 1 and p.shape != ("hidden",)):
        raise CEmitError(f"cell '{cell.name}': the C emitter sums vector gradients over the hidden size, and "
                         f"parameter '{p.name}' has the {p.shape[0]} size")


def _blocks(n: int, unit: str = "H") -> str:
    return f"{n} * {unit}" if n > 1 else unit


def _size(expr: sp.Expr) -> str:
    """A size as C: ``(size_t)4 * T * B * H``."""
    order = {T: 1, B: 2, D: 3, H: 4}  # then the cell's own sizes
    factors = sorted(sp.Mul.make_args(expr), key=lambda f: order.get(f, 0 if f.is_Number else 5))
    return "(size_t)" + " * ".join(map(str, factors))


class _Names:
    """Each slot of the plan as a C pointer of step t_ (its declaration) and an element of its row."""

    def __init__(self, plan: Plan):
        self.plan = plan
        cell = plan.kernel.cell
        self.states = set(cell.states)
        self.groups = {g.name: g for g in plan.kernel.groups}
        self.op = {g.name: csize(cell.shape(g.name)[0]) for g in plan.kernel.groups}
        rows = {g.name: cell.shape(g.weights[0].name)[0] for g in plan.kernel.groups}
        by_adjoint = {a: rows[g.name] for g in plan.kernel.groups for a in g.adjoints}
        self.rows = {**rows, **{p.name: by_adjoint[p.adjoints[0]] for p in plan.packed}}  # proj_, dl_: their rows
        self.size = {a.name: a.size for a in plan.cache}  # C_<name>, st_<state>, dst_<state>: their width
        self.size.update({s: cell.state_shape(s)[0] for s in cell.states})

    def pointer(self, slot: Slot) -> tuple[str, str | None, str]:
        """(pointer, its rows of step t_: None for a workspace array of one step, row stride)."""
        k, n, next_ = slot.kind, slot.name, slot.shift == 1
        size = (self.rows if k in ("proj", "dlin") else self.size).get(n, "hidden")
        rows = _rows(size)
        row = f"(size_t)(t_ + 1) * {rows}" if next_ else f"(size_t)t_ * {rows}"
        two = f"(size_t)((t_ + 1) & 1) * {rows}" if next_ else f"(size_t)(t_ & 1) * {rows}"  # a two-row buffer's row
        if k == "cache":
            return (f"S_{n}t" if next_ or n not in self.states else f"prev_{n}"), f"C_{n} + {row}", csize(size)
        if k in ("state", "carry"):
            ptr = {"state": ("prev_", "next_"), "carry": ("dcur_", "dnext_")}[k][next_]
            return f"{ptr}{n}", f"{'st_' if k == 'state' else 'dst_'}{n} + {two}", csize(size)
        if k in ("proj", "dlin"):
            width = _blocks(slot.width, csize(size))
            if k == "proj" and self.groups[n].per_step:
                return f"proj_{n}", None, width
            ptr, base = (f"pj_{n}", f"proj_{n}") if k == "proj" else (f"dl_{n}t", f"dl_{n}")
            return ptr, f"{base} + (size_t)t_ * B * {width}", width
        if k == "row":
            return f"red_{n}", None, "1"
        out = self.size[self.plan.kernel.cell.output]
        return {"input": (f"xt_{n}", "xs + (size_t)t_ * B * D", "D"),
                "temp": (f"tmp_{n}", None, csize(self.plan.width(sp.Symbol(n)))),
                "back": (f"bk_{n}", None, self.op.get(n, "H")),
                "output": ("hs_t", f"hs + (size_t)t_ * {_rows(out)}", csize(out)),
                "dx": (f"dxt_{n}", "d_xs + (size_t)t_ * B * D", "D")}[k]

    def element(self, slot: Slot) -> str:
        if slot.kind == "row":  # one value per example
            return f"red_{slot.name}[row_]"
        if slot.kind in ("param", "grad"):
            return f"{'P' if slot.kind == 'param' else 'GP'}_{slot.name}[col_]"
        ptr = self.pointer(slot)[0]
        unit = csize(self.rows.get(slot.name, "hidden"))
        return f"{naming.row(ptr)}[{f'{slot.block} * {unit} + ' if slot.block else ''}col_]"


def _loop(names: _Names, pz: Pass) -> dict:
    """One element-wise pass, printed: its row pointers, loads, assignments, stores and sums."""
    written = {names.pointer(s)[0] for _, s in pz.stores} | {names.pointer(s)[0] for s, _ in pz.sums
                                                             if s.kind != "grad"}
    rows = {}
    for s in [s for _, s in pz.loads] + [s for _, s in pz.stores] + [s for s, _ in pz.sums]:
        if s.kind not in ("param", "grad", "row"):
            ptr, base, stride = names.pointer(s)
            rows.setdefault(ptr, {"row": naming.row(ptr), "base": base or ptr, "stride": stride,
                                  "const": ptr not in written})
    c0, c1 = _bounds(pz.size)
    return {"kind": "loop", "rows": list(rows.values()), "c0": c0, "c1": c1,
            "loads": [(s.name, names.element(slot)) for s, slot in pz.loads],
            "assigns": [(a.lhs.name, kernel_code(a.rhs)) for a in pz.assigns],
            "stores": [(names.element(slot), s.name) for s, slot in pz.stores],
            "sums": [(names.element(slot), kernel_code(e)) for slot, e in pz.sums],
            "reductions": [(naming.row(f"red_{slot.name}"), names.element(slot), kernel_code(e), mean)
                           for slot, e, mean in pz.reductions]}


def _ops(names: _Names, ops, groups: dict) -> list[dict]:
    """The step's passes and products, printed (a product's source: its rows of step t_)."""
    return [_loop(names, op) if isinstance(op, Pass) else
            {"kind": "product", "back": op.back, "g": groups[op.group.name],
             "src": names.pointer(op.source)[1] or names.pointer(op.source)[0]} for op in ops]


def _group(plan: Plan, names: _Names, g: Group, index: dict) -> dict:
    view = plan.view(g)
    home = plan.home(g.operand)
    if home.kind == "input":
        operand_all = "xs"
    elif home.kind == "cache":
        operand_all = f"C_{home.name} + BH" if home.shift else f"C_{home.name}"
    else:
        raise CEmitError(f"operand '{g.name}' of a per-step product is not in the forward cache")
    size, op = names.rows[g.name], plan.kernel.cell.shape(g.name)[0]
    return {"name": g.name, "n": len(g.weights), "nh": _blocks(len(g.weights), csize(size)), "op": names.op[g.name],
            "unit": csize(size), "c0": _bounds(size)[0], "c1": _bounds(size)[1],
            "op_c0": _bounds(op)[0], "op_c1": _bounds(op)[1],
            "weights": [{"name": w.name, "index": index[w.name], "k": k} for k, w in enumerate(g.weights)],
            "per_step": g.per_step, "operand_all": operand_all, "dl": view.name,
            "dl_off": f" + {_blocks(view.block, csize(size))}" if view.block else "",
            "ldl": _blocks(view.width, csize(size))}


def _workspace(plan: Plan, groups: list[dict], projected: set, backs: set, vgrads: int):
    """Workspace arrays of the forward and the backward pass: (name, size in elements).  ``stk_<group>``: the
    stacked weights (when not the caller's, adjacent); ``pkf_``, ``pkb_<group>``: a group's stacked weights
    packed for the time loop's tiles; ``wpa_``, ``wpb_``: one block of each operand of the weight gradients'
    products, packed; ``gpart_``: the vector gradients' partial sums of threads 1.. of the time loop."""
    prefix = {"proj": "proj_", "state": "st_", "temp": "tmp_", "dlin": "dl_", "back": "bk_", "carry": "dst_",
              "row": "red_"}
    stacks = [(f"stk_{g['name']}", f"(size_t){g['n']} * {g['unit']} * {g['op']}") for g in groups if g["n"] > 1]
    fwd = stacks + [(prefix[b.kind] + b.name, _size(b.size)) for b in plan.workspace if b.phase == "forward"]
    fwd += [(f"pkf_{g['name']}", f"PK_COLS_({g['nh']}) * {g['op']}") for g in groups
            if not g["per_step"] or g["name"] in projected]
    bwd = stacks + [(prefix[b.kind] + b.name, _size(b.size)) for b in plan.workspace if b.phase == "backward"]
    bwd += [(f"pkb_{g['name']}", f"PK_COLS_({g['op']}) * ({g['nh']})") for g in groups
            if not g["per_step"] or g["name"] in backs]
    units = list(dict.fromkeys(["H"] + [g["unit"] for g in groups]))
    n_max = [f"{max((g['n'] for g in groups if g['unit'] == u), default=1)} * {u}" for u in units]
    ops = list(dict.fromkeys(["D", "H"] + [g["op"] for g in groups]))
    bwd += [("wpa_", f"(size_t)LSTM_KC * PK_ROWS_({_cmax(n_max)})"),
            ("wpb_", f"(size_t)LSTM_KC * PK_COLS_({_cmax(ops)})")]
    if vgrads:
        bwd.append(("gpart_", f"(size_t)(LSTM_MAX_THREADS - 1) * {vgrads} * H"))
    return fwd, bwd


def _cache_offsets(plan: Plan) -> tuple[list[str], str]:
    """Where each cache array starts, and the cache's size, as C: ``(size_t)(2 * T + 1) * BH``."""
    if all(a.size == "hidden" for a in plan.cache):
        offsets, n1 = [], 0
        for k, a in enumerate(plan.cache):
            offsets.append(f"(size_t)({k} * T + {n1}) * BH" if n1 else f"(size_t){k} * T * BH")
            n1 += a.rows != T
        k = len(plan.cache)
        return offsets, f"(size_t)({k} * T + {n1}) * B * H" if n1 else f"(size_t){k} * T * B * H"
    terms, offsets = {}, []
    for a in plan.cache + (None,):
        text = " + ".join(f"(size_t)({sp.sstr(rows)}) * {_rows(size)}" for size, rows in terms.items() if rows != 0)
        offsets.append(text or "0")
        if a is not None:
            terms[a.size] = terms.get(a.size, 0) + a.rows
    return offsets[:-1], offsets[-1].replace("BH", "B * H")  # (the cache size's function has no BH)


def _read_params(plan: Plan, ops) -> list[str]:
    """The vector parameters the passes read (as ``P_<name>[col_]``)."""
    read = {slot.name for op in ops if isinstance(op, Pass) for _, slot in op.loads if slot.kind == "param"}
    return [p.name for p in plan.kernel.cell.params if p.name in read]


def c_context(kernel: Kernel) -> dict:
    """Everything the C templates lay out, printed."""
    _check_names(kernel)
    cell = kernel.cell
    plan = build_plan(kernel)
    names = _Names(plan)
    index = {p.name: k for k, p in enumerate(cell.params)}
    groups = [_group(plan, names, g, index) for g in kernel.groups]
    by_name = {g["name"]: g for g in groups}
    fwd, bwd = _ops(names, plan.forward, by_name), _ops(names, plan.backward, by_name)
    projected = {op.group.name for op in plan.forward if isinstance(op, Product)}
    backs = {op.group.name for op in plan.backward if isinstance(op, Product)}
    fwd_layout, bwd_layout = _workspace(plan, groups, projected, backs, len(kernel.vector_grads))
    offsets, cache_size = _cache_offsets(plan)
    prefix = naming.module_name(cell.name)
    homes = {s: plan.home(sp.Symbol(s)) for s in cell.states}
    return {
        "cell": cell.name,
        "prefix": prefix,
        "guard": prefix.upper() + "_H",
        "description": cell.description,
        "params": [{"name": p.name, "index": k, "shape": " x ".join(p.shape),
                    "size": " * ".join(map(csize, p.shape)), "repr": repr(p.shape),
                    "elements": "(size_t)" + " * ".join(map(csize, p.shape))}
                   for k, p in enumerate(cell.params)],
        "states": list(cell.states),
        "states_repr": repr(cell.states),
        "state_sizes_repr": repr(dict(cell.state_sizes)) if cell.state_sizes else "",
        "extra_kw": ", ".join(f"{s}_size" for s in extra_sizes(cell)),
        "hidden_param": next(p.name for p in cell.params if p.shape[0] == "hidden"),
        "blocks": max((len(g.weights) for g in kernel.groups), default=1),
        "output": cell.output,
        "cache_arrays": [{"name": a.name, "offset": offsets[k], "rows": "T" if a.rows == T else "T + 1",
                          "size": csize(a.size), "note": "" if a.rows == T else f" (row t: {a.name} before step t)"}
                         for k, a in enumerate(plan.cache)],
        "cache_size": cache_size,
        "state_bufs": [{"name": s, "buf": f"C_{s}" if h.kind == "cache" else f"st_{s}", "rows": _rows(names.size[s]),
                        "last": f"(size_t){'T' if h.kind == 'cache' else '(T & 1)'} * {_rows(names.size[s])}"}
                       for s, h in homes.items()],
        "state_rows": {s: _rows(names.size[s]) for s in cell.states},
        "state_size": {s: csize(names.size[s]) for s in cell.states},
        "out_bounds": _bounds(names.size[cell.output]),
        "state_bounds": {s: _bounds(names.size[s]) for s in cell.states},
        "extra": [csize(s) for s in extra_sizes(cell)],
        # hidden units are shared out between threads only when every size is a multiple of 32 (else: H = 1)
        "threads_h": f"{' || '.join(f'{csize(s)} % 32' for s in extra_sizes(cell))} ? 1 : H" if extra_sizes(cell)
                     else "H",
        "extra_args": "".join(f", int {csize(s)}" for s in extra_sizes(cell)),
        "extra_names": "".join(f", {csize(s)}" for s in extra_sizes(cell)),
        "bounds": [(size, *_bounds(size), csize(size)) for size in dict.fromkeys(extra_sizes(cell) + tuple(
            op.size for op in plan.forward + plan.backward if isinstance(op, Pass) and op.size == "input"))],
        "groups": groups,
        "deferred": [g for g in groups if not g["per_step"]],
        "packed_fwd": [g for g in groups if g["per_step"] and g["name"] in projected],
        "packed_bwd": [g for g in groups if g["name"] in backs],
        "forward": fwd,
        "forward_params": _read_params(plan, plan.forward),
        "backward_params": _read_params(plan, plan.backward),
        "fwd_layout": fwd_layout,
        "bwd_layout": bwd_layout,
        "backward": bwd,
        "zero_carries": list(plan.zero_carries),
        # a reduction across the units needs each example's units in one thread: threads split the batch
        "rows_only": any(b.kind == "row" for b in plan.workspace),
        "vgrads": [{"name": p, "index": index[p]} for p, _ in kernel.vector_grads],
        "reals": [{"ctype": ct, "sfx": sfx, "tanh": "tanh" if ct == "double" else "tanhf",
                   "blas": "d" if ct == "double" else "s"} for ct, (_, sfx) in REAL_TYPES.items()],
    }


def c_files(kernel: Kernel) -> dict[str, str]:
    """``<m>.h``, ``<m>.c`` and the ctypes binding ``<m>_c.py`` of ``kernel``'s cell, and the C runtime they
    include (the same files for every cell)."""
    ctx = c_context(kernel)
    m = ctx["prefix"]
    return {
        f"{m}.h": render("codegen/c/header.h.j2", **ctx),
        f"{m}.c": render("codegen/c/source.c.j2", **ctx),
        f"{m}_c.py": render("codegen/c/binding.py.j2", **ctx),
        **runtime_files(),
    }
