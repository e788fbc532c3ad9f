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
from . import runtime_files

SIZE = {"hidden": "H", "input": "D"}  # I is complex.h's imaginary unit (cblas.h includes it)


class CEmitError(UserError, ValueError):
    """The cell cannot be emitted as C (a name clash with the generated code, an unsupported shape)."""


def _check_names(kernel: Kernel) -> None:
    check_names(kernel)
    cell = kernel.cell
    if len(cell.inputs) != 1:
        raise CEmitError(f"cell '{cell.name}': the C API takes one input sequence (xs), not {len(cell.inputs)}")
    blocks = {g.block(k) for g in kernel.groups for k in range(len(g.weights))}
    for q in kernel.saved:  # (a per-example scalar is kept as a hidden-sized row of its value)
        if q not in blocks and cell.shape(q.name) not in (("hidden",), ()):
            raise CEmitError(f"cell '{cell.name}': the C emitter needs saved value '{q.name}' to be hidden-sized")


def _blocks(n: int) -> str:
    return f"{n} * H" if n > 1 else "H"


def _size(expr: sp.Expr) -> str:
    """A size as C: ``(size_t)4 * T * B * H``."""
    order = {T: 1, B: 2, D: 3, H: 4}
    return "(size_t)" + " * ".join(str(f) for f in sorted(sp.Mul.make_args(expr), key=lambda f: order.get(f, 0)))


class _Names:
    """Each slot of the plan as a C pointer of step t_ (its declaration) and an element of its row."""

    def __init__(self, plan: Plan):
        self.plan = plan
        cell = plan.kernel.cell
        self.states = set(cell.states)
        self.groups = {g.name: g for g in plan.kernel.groups}
        self.op = {g.name: SIZE[cell.shape(g.name)[0]] for g in plan.kernel.groups}

    def pointer(self, slot: Slot) -> tuple[str, str | None, str]:
        """(pointer, its rows of step t_: None for a workspace array of one step, row stride)."""
        k, n, next_ = slot.kind, slot.name, slot.shift == 1
        row = "(size_t)(t_ + 1) * BH" if next_ else "(size_t)t_ * BH"
        two = "(size_t)((t_ + 1) & 1) * BH" if next_ else "(size_t)(t_ & 1) * BH"  # a two-row buffer's row
        if k == "cache":
            return (f"S_{n}t" if next_ or n not in self.states else f"prev_{n}"), f"C_{n} + {row}", "H"
        if k in ("state", "carry"):
            ptr = {"state": ("prev_", "next_"), "carry": ("dcur_", "dnext_")}[k][next_]
            return f"{ptr}{n}", f"{'st_' if k == 'state' else 'dst_'}{n} + {two}", "H"
        if k in ("proj", "dlin"):
            width = _blocks(slot.width)
            if k == "proj" and self.groups[n].per_step:
                return f"proj_{n}", None, width
            ptr, base = (f"pj_{n}", f"proj_{n}") if k == "proj" else (f"dl_{n}t", f"dl_{n}")
            return ptr, f"{base} + (size_t)t_ * B * {width}", width
        if k == "row":
            return f"red_{n}", None, "1"
        return {"input": (f"xt_{n}", "xs + (size_t)t_ * B * D", "D"), "temp": (f"tmp_{n}", None, "H"),
                "back": (f"bk_{n}", None, self.op.get(n, "H")), "output": ("hs_t", "hs + (size_t)t_ * BH", "H"),
                "dx": (f"dxt_{n}", "d_xs + (size_t)t_ * B * D", "D")}[k]

    def element(self, slot: Slot) -> str:
        if slot.kind == "row":  # one value per example
            return f"red_{slot.name}[row_]"
        if slot.kind in ("param", "grad"):
            return f"{'P' if slot.kind == 'param' else 'GP'}_{slot.name}[col_]"
        ptr = self.pointer(slot)[0]
        return f"{naming.row(ptr)}[{f'{slot.block} * H + ' if slot.block else ''}col_]"


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
    return {"kind": "loop", "rows": list(rows.values()),
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
    return {"name": g.name, "n": len(g.weights), "nh": _blocks(len(g.weights)), "op": names.op[g.name],
            "weights": [{"name": w.name, "index": index[w.name], "k": k} for k, w in enumerate(g.weights)],
            "per_step": g.per_step, "operand_all": operand_all, "dl": view.name,
            "dl_off": f" + {_blocks(view.block)}" if view.block else "", "ldl": _blocks(view.width)}


def _workspace(plan: Plan, groups: list[dict], projected: set, backs: set, vgrads: int):
    """Workspace arrays of the forward and the backward pass: (name, size in elements).  ``stk_<group>``: the
    stacked weights (when not the caller's, adjacent); ``pkf_``, ``pkb_<group>``: a group's stacked weights
    packed for the time loop's tiles; ``wpa_``, ``wpb_``: one block of each operand of the weight gradients'
    products, packed; ``gpart_``: the vector gradients' partial sums of threads 1.. of the time loop."""
    prefix = {"proj": "proj_", "state": "st_", "temp": "tmp_", "dlin": "dl_", "back": "bk_", "carry": "dst_",
              "row": "red_"}
    stacks = [(f"stk_{g['name']}", f"(size_t){g['n']} * H * {g['op']}") for g in groups if g["n"] > 1]
    fwd = stacks + [(prefix[b.kind] + b.name, _size(b.size)) for b in plan.workspace if b.phase == "forward"]
    fwd += [(f"pkf_{g['name']}", f"PK_COLS_({g['nh']}) * {g['op']}") for g in groups
            if not g["per_step"] or g["name"] in projected]
    bwd = stacks + [(prefix[b.kind] + b.name, _size(b.size)) for b in plan.workspace if b.phase == "backward"]
    bwd += [(f"pkb_{g['name']}", f"PK_COLS_({g['op']}) * ({g['nh']})") for g in groups
            if not g["per_step"] or g["name"] in backs]
    n_max = max((g["n"] for g in groups), default=1)
    bwd += [("wpa_", f"(size_t)LSTM_KC * PK_ROWS_({n_max} * H)"), ("wpb_", "(size_t)LSTM_KC * PK_COLS_(D > H ? D : H)")]
    if vgrads:
        bwd.append(("gpart_", f"(size_t)(LSTM_MAX_THREADS - 1) * {vgrads} * H"))
    return fwd, bwd


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
    offsets, n1 = [], 0
    for k, a in enumerate(plan.cache):
        offsets.append(f"(size_t)({k} * T + {n1}) * BH" if n1 else f"(size_t){k} * T * BH")
        n1 += a.rows != T
    prefix = naming.module_name(cell.name)
    homes = {s: plan.home(sp.Symbol(s)) for s in cell.states}
    return {
        "cell": cell.name,
        "prefix": prefix,
        "guard": prefix.upper() + "_H",
        "description": cell.description,
        "params": [{"name": p.name, "index": k, "shape": " x ".join(p.shape),
                    "size": " * ".join(SIZE[s] for s in p.shape), "repr": repr(p.shape),
                    "elements": "(size_t)" + " * ".join(SIZE[s] for s in p.shape)}
                   for k, p in enumerate(cell.params)],
        "states": list(cell.states),
        "states_repr": repr(cell.states),
        "hidden_param": next(p.name for p in cell.params if p.shape[0] == "hidden"),
        "blocks": max((len(g.weights) for g in kernel.groups), default=1),
        "output": cell.output,
        "cache_arrays": [{"name": a.name, "offset": offsets[k], "rows": "T" if a.rows == T else "T + 1",
                          "note": "" if a.rows == T else f" (row t: {a.name} before step t)"}
                         for k, a in enumerate(plan.cache)],
        "cache_size": (f"(size_t)({len(plan.cache)} * T + {n1}) * B * H" if n1
                       else f"(size_t){len(plan.cache)} * T * B * H"),
        "state_bufs": [{"name": s, "buf": f"C_{s}" if h.kind == "cache" else f"st_{s}",
                        "last": "(size_t)T * BH" if h.kind == "cache" else "(size_t)(T & 1) * BH"}
                       for s, h in homes.items()],
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
