"""Check a user's forward and backward code called by a :class:`~verify_convention.Convention`.

Part of ``verify-code``.  The right values come from the derivation, evaluated in NumPy per step
(:func:`verify_eval.state_values`); a whole sequence is that step swept forward and back (BPTT).
Values travel to the user's functions in the convention's layout (orientation, stacked and
reordered gate blocks, sequences' axes) and what they return is compared in that layout.  The
user's functions run in the child process of :mod:`verify_run`; the cache their forward returns
stays there, and the backward gets it back by reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import permutations

import numpy as np

from .derive import Derivation, stored_values
from .functions import sigmoid
from .verify_code import TOLERANCES, BackwardReport, QuantityCheck, VerifyCodeError, computed_dtype, rel_error
from .verify_convention import Call, Convention, from_user, to_user
from .verify_eval import random_leaves, state_values
from .verify_mutants import activation_mutants, operand_mutants
from .verify_run import ChildError, Ref

EXTRA_SIZES = {"out": 2}


@dataclass
class Setup:
    convention: Convention
    derivation: Derivation
    sizes: dict
    dtype: str = "float64"
    seed: int = 0
    steps: int = 4
    one_bias: bool = False  # give the whole bias to the first of two (a diagnosis)
    rng: np.random.Generator = field(init=False)

    def __post_init__(self):
        self.rng = np.random.default_rng(self.seed)
        cell = self.derivation.cell
        gates = {q.name.partition("_")[2] for q in cell.params if q.name[:2] in ("W_", "U_", "b_")}
        for p in self.convention.params:
            if set(p.gates) - gates:
                raise VerifyCodeError(f"convention '{self.convention.name}': parameter {p.name} has gates "
                                      f"'{p.gates}', but cell '{cell.name}' has the gates {''.join(sorted(gates))}")

    @property
    def states(self) -> tuple[str, ...]:
        return self.derivation.cell.states

    def orient(self, vector: np.ndarray) -> np.ndarray:
        """A (n, batch) vector in the convention's orientation."""
        return vector if self.convention.orientation == "columns" else vector.T

    def sequence(self, steps: list[np.ndarray]) -> np.ndarray:
        """T vectors (n, batch) as one array with the convention's axes."""
        stacked = np.stack(steps)  # t, f, b
        return np.transpose(stacked, ["tfb".index(a) for a in self.convention.sequence_layout])

    def user_params(self, values: dict, prefix: str = "") -> dict:
        """``prefix=""``: the parameters; ``"d_"``: their gradients, in the user's layout.

        Where the layout has a second bias (part ``bh``, as PyTorch's ``b_hh``), the cell's bias
        b_g is split at random into ``b`` + ``bh``; both gradients are d_b_g."""
        two = {g for p in self.convention.params if "bh" in p.parts for g in p.gates}
        out = {}
        for p in self.convention.params:
            blocks = {}
            for part in p.parts:
                for g in p.gates:
                    value = values[f"{prefix}{'b' if part == 'bh' else part}_{g}"]
                    if not prefix and part in ("b", "bh") and g in two:
                        share = self.bias_share(g, value)
                        value = share if part == "bh" else value - share
                    blocks[f"{part}_{g}"] = value
            out[f"{prefix}{p.name}"] = to_user(p, blocks)
        return out

    def bias_share(self, gate: str, like: np.ndarray) -> np.ndarray:
        """The part of b_gate given as the second bias (the same for every call of one check)."""
        if self.one_bias:
            return np.zeros_like(like)
        seed = self.seed * 1000 + 7 + sum(map(ord, gate))
        return np.random.default_rng(seed).normal(0, 0.3, np.shape(like))

    def extra(self) -> dict:
        rng = np.random.default_rng(self.seed + 1)
        sizes = {**self.sizes, **EXTRA_SIZES}
        return {name: rng.normal(size=tuple(sizes.get(s, s) for s in shape)) for name, shape in self.convention.extra}

    def cast(self, value):
        if isinstance(value, np.ndarray):
            return value.astype(self.dtype)
        if isinstance(value, (list, tuple)):
            return tuple(self.cast(v) for v in value)
        if isinstance(value, dict):
            return {k: self.cast(v) for k, v in value.items()}
        return value


def build(structure, items: dict, where: str):
    """A structure with every item name replaced by its value (lists become tuples)."""
    if isinstance(structure, str):
        if structure not in items:
            raise VerifyCodeError(f"{where}: unknown item '{structure}' (known: {', '.join(sorted(items))})")
        return items[structure]
    if isinstance(structure, (list, tuple)):
        return tuple(build(s, items, where) for s in structure)
    if isinstance(structure, dict):
        return {k: build(s, items, where) for k, s in structure.items()}
    raise VerifyCodeError(f"{where}: {structure!r} is not an item name, a list or a table")


def collect(structure, got, out: dict, missing: list, call: Call, suffix: str = "") -> None:
    """``out[item] = (label, value)`` for every item the result holds; absent dict keys → ``missing``.
    ``suffix`` marks the labels (`` (forward)`` for what a forward returns)."""
    if isinstance(structure, str):
        label, _, item = structure.rpartition("=")
        if structure != "_" and item != "cache":
            out[item] = ((label or item) + suffix, got)
        return
    if isinstance(structure, (list, tuple)):
        if not isinstance(got, list) or len(got) < len(structure):
            raise VerifyCodeError(f"{call.function} returned {_kind(got)}; the convention expects a tuple of "
                                  f"{len(structure)}: {_shape_text(structure)}")
        for sub, value in zip(structure, got, strict=False):
            collect(sub, value, out, missing, call, suffix)
        return
    if not isinstance(got, dict):
        raise VerifyCodeError(f"{call.function} returned {_kind(got)}; the convention expects a dict with "
                              f"{', '.join(structure)}")
    for key, sub in structure.items():
        if key in got:
            sub = f"{key}={sub}" if isinstance(sub, str) and "=" not in sub else sub
            collect(sub, got[key], out, missing, call, suffix)
        else:
            missing.append((key, sub))


def path_of(item: str, structure) -> tuple:
    """Where ``item`` sits in a result structure (indices and keys), or ``()`` for the whole result."""
    if isinstance(structure, str):
        return () if structure.rpartition("=")[2] == item else None
    pairs = structure.items() if isinstance(structure, dict) else enumerate(structure)
    for key, sub in pairs:
        found = path_of(item, sub)
        if found is not None:
            return (key, *found)
    return None


def _kind(value) -> str:
    if isinstance(value, list):
        return f"a tuple of {len(value)}"
    return getattr(value, "type_name", type(value).__name__)


def _shape_text(structure) -> str:
    if isinstance(structure, str):
        return structure.partition("=")[0]
    if isinstance(structure, dict):
        return "{" + ", ".join(structure) + "}"
    return "(" + ", ".join(_shape_text(s) for s in structure) + ")"


def call_user(child, call: Call, args: tuple, keep: str | None = None):
    try:
        return child.call(call.function, *args, keep=keep)
    except ChildError as exc:
        if exc.kind not in ("signature", "exception"):
            raise
        expected = f"{call.function}({', '.join(_shape_text(a) for a in call.args)}) -> {_shape_text(call.returns)}"
        raise VerifyCodeError(f"{exc}; the convention calls {expected}") from None


# -- one step ---------------------------------------------------------------------------------------
def step_items(setup: Setup, values: dict) -> dict:
    """Every item a step's structures can name, in the user's layout (internal values → user)."""
    cell = setup.derivation.cell
    items = {}
    for q in cell.quantities:
        if q.shape == ("hidden",) or q.shape == ("input",):
            if q.name in values:
                items[q.name] = setup.orient(values[q.name])
    for s, seed in setup.derivation.seeds.items():
        items[f"d_{s}"] = setup.orient(values[str(seed)])
    for a in setup.derivation.input_adjoints:
        items[str(a.name)] = setup.orient(values[str(a.name)])
    items.update(setup.user_params(values))
    items.update(setup.user_params(values, "d_"))
    items.update(setup.extra())
    return items


def check_step(child, setup: Setup, found: set[str], rtol: float | None) -> BackwardReport:
    conv = setup.convention
    leaves = random_leaves(setup.derivation, setup.sizes, setup.rng, exact=False, batch=setup.sizes["batch"])
    leaves = {k: v.astype(setup.dtype).astype(np.float64) for k, v in leaves.items()}
    values = state_values(setup.derivation, leaves, exact=False)
    items = {k: setup.cast(v) for k, v in step_items(setup, values).items()}
    results, missing = {}, []
    if conv.step_forward and conv.step_forward.function in found:
        got = call_user(child, conv.step_forward, build(conv.step_forward.args, items, "step forward"), keep="cache")
        collect(conv.step_forward.returns, got, results, missing, conv.step_forward, " (forward)")
        items["cache"] = Ref("cache", path_of("cache", conv.step_forward.returns))
    elif conv.step_cache is not None:
        items["cache"] = build(conv.step_cache, items, "step cache")
    elif "cache" in _names(conv.step_backward.args):
        forward = conv.step_forward.function if conv.step_forward else "step forward"
        raise VerifyCodeError(f"the file has no {forward}, which makes the cache {conv.step_backward.function} "
                              "takes (and the convention gives no [step] cache to build instead)")
    back = conv.step_backward
    got = call_user(child, back, build(back.args, items, "step backward"))
    collect(back.returns, got, results, missing, back)
    right = step_items(setup, values)
    diagnosis = _StepDiagnosis(setup, leaves, values)
    out = setup.states[0]
    if out in results and conv.step_forward and not _close(results[out][1], right[out], rtol or 1e-4):
        order = _gate_order(child, setup, values)
        params = {q.name: leaves[q.name] for q in setup.derivation.cell.params}
        diagnosis.note = (f"the code's gate order looks like {order}: pass --gate-order {order}" if order else
                          _forward_note(child, setup, conv.step_forward, items, params, out, right[out]))
    return _report(setup, results, missing, right, rtol, diagnosis)


def _forward_note(child, setup: Setup, fwd: Call, items: dict, params: dict, out: str, want) -> str | None:
    """Why the forward disagrees, when a whole convention mismatch explains it."""
    return _flipped_gate(child, setup, fwd, items, params, out, want) or _one_bias(
        child, setup, fwd, items, params, out, want)


def _one_bias(child, setup: Setup, fwd: Call, items: dict, params: dict, out: str, want) -> str | None:
    """The forward agrees when the second bias (``bh``) is zero: the code adds only one of the two."""
    second = [p.name for p in setup.convention.params if "bh" in p.parts]
    if not second:
        return None
    one = replace(setup, one_bias=True)
    one.rng = setup.rng
    trial = {**items, **{k: setup.cast(v) for k, v in one.user_params(params).items()}}
    got, results = call_user(child, fwd, build(fwd.args, trial, "forward")), {}
    collect(fwd.returns, got, results, [], fwd)
    if out in results and _close(results[out][1], want, 1e-4):
        return (f"the code ignores {', '.join(second)}: it agrees when the whole bias is in the first one "
                "(the layout has two biases per gate; their sum is the cell's)")
    return None


def _flipped_gate(child, setup: Setup, fwd: Call, items: dict, params: dict, out: str, want) -> str | None:
    """A sigmoid gate the user's forward reads as 1 − g (the z ↔ 1 − z conventions): the forward
    agrees once that gate's parameters are negated, since 1 − σ(a) = σ(−a)."""
    for call, stored in stored_values(setup.derivation.cell).items():
        pre = str(call.args[0])
        if call.func != sigmoid or not pre.startswith("z_"):
            continue
        gate = pre[2:]
        flipped = {k: -v if k.partition("_")[2] == gate and k[:2] in ("W_", "U_", "b_") else v
                   for k, v in params.items()}
        trial = {**items, **{k: setup.cast(v) for k, v in setup.user_params(flipped).items()}}
        got, results = call_user(child, fwd, build(fwd.args, trial, "forward")), {}
        collect(fwd.returns, got, results, [], fwd)
        if out in results and _close(results[out][1], want, 1e-4):
            y = stored.name
            return (f"the code reads gate {y} as 1 − {y} (the {y} ↔ 1 − {y} convention): it agrees with "
                    f"W_{gate}, U_{gate}, b_{gate} negated; use a cell spec written that way (--cell)")
    return None


def _gate_order(child, setup: Setup, values: dict) -> str | None:
    """The gate order under which the user's step forward agrees, when the convention's does not."""
    stacked = next((p for p in setup.convention.params if len(p.gates) > 1), None)
    if stacked is None:
        return None
    out = setup.states[0]
    for order in map("".join, permutations(stacked.gates)):
        if order == stacked.gates:
            continue
        other = replace(setup, convention=setup.convention.with_gate_order(order))
        other.rng = setup.rng
        items = {k: other.cast(v) for k, v in step_items(other, values).items()}
        fwd = other.convention.step_forward
        got, results = call_user(child, fwd, build(fwd.args, items, "step forward")), {}
        collect(fwd.returns, got, results, [], fwd)
        if out in results and _close(results[out][1], items[out], 1e-4):
            return order
    return None


# -- a whole sequence -------------------------------------------------------------------------------
def bptt(setup: Setup, params: dict, xs: list, state0: dict, d_outs: list, d_last: dict,
         drop: frozenset = frozenset(), only_step: int | None = None) -> dict:
    """Forward over the steps, then back: ``{"states": {s: [..]}, "d_xs": [..], "d_<s>0", "d_<param>"}``.

    ``drop``: states whose gradient is not carried to the step before; ``only_step``: the weight
    gradients of that step alone (both: the planted time-loop bugs the diagnoses look for)."""
    d, out = setup.derivation, setup.states[0]
    states, steps = dict(state0), []
    for x in xs:
        zeros = {str(seed): np.zeros_like(states[s]) for s, seed in d.seeds.items()}
        values = state_values(d, {**params, "x": x, **{f"{s}_prev": v for s, v in states.items()}, **zeros},
                              exact=False)
        steps.append(values)
        states = {s: values[s] for s in setup.states}
    carried = {s: d_last.get(s, np.zeros_like(state0[s])) for s in setup.states}
    grads = {f"d_{p}": np.zeros_like(v) for p, v in params.items()}
    d_xs = [None] * len(xs)
    for t in reversed(range(len(xs))):
        seeds = {str(seed): carried[s] + (d_outs[t] if s == out else 0) for s, seed in d.seeds.items()}
        kept = {k: v for k, v in steps[t].items() if not k.startswith("d_")}
        values = state_values(d, {**kept, **seeds}, exact=False)
        d_xs[t] = values["d_x"]
        carried = {s: values[f"d_{s}_prev"] * (s not in drop) for s in setup.states}
        if only_step is None or only_step == t:
            grads = {k: grads[k] + values[k] for k in grads}
    result = {"states": {s: [v[s] for v in steps] for s in setup.states}, "d_xs": d_xs}
    result.update({f"d_{s}0": carried_value for s, carried_value in carried.items()})
    result.update(grads)
    return result


def sequence_items(setup: Setup, params: dict, ref: dict, inputs: dict) -> dict:
    items = {"xs": setup.sequence(inputs["xs"]), f"d_{setup.states[0]}s": setup.sequence(inputs["d_outs"])}
    for s in setup.states:
        items[f"{s}0"] = setup.orient(inputs["state0"][s])
        items[f"d_{s}_last"] = setup.orient(inputs["d_last"].get(s, np.zeros_like(inputs["state0"][s])))
        items[f"{s}s"] = setup.sequence(ref["states"][s])
        items[f"{s}_last"] = setup.orient(ref["states"][s][-1])
        items[f"d_{s}0"] = setup.orient(ref[f"d_{s}0"])
    items["d_xs"] = setup.sequence(ref["d_xs"])
    items.update(setup.user_params(params))
    items.update(setup.user_params(ref, "d_"))
    items.update(setup.extra())
    return items


def check_sequence(child, setup: Setup, found: set[str], rtol: float | None) -> BackwardReport:
    conv, sizes, T = setup.convention, setup.sizes, setup.steps
    leaves = random_leaves(setup.derivation, sizes, setup.rng, exact=False, batch=sizes["batch"])
    leaves = {k: v.astype(setup.dtype).astype(np.float64) for k, v in leaves.items()}
    params = {q.name: leaves[q.name] for q in setup.derivation.cell.params}
    rand = lambda size: setup.rng.normal(0, 0.6, (size, sizes["batch"])).astype(setup.dtype).astype(float)  # noqa: E731
    given = _names(conv.sequence_forward.args) if conv.sequence_forward else set()
    inputs = {"xs": [rand(sizes["input"]) for _ in range(T)],
              "state0": {s: rand(sizes["hidden"]) * (f"{s}0" in given) for s in setup.states},
              "d_outs": [rand(sizes["hidden"]) for _ in range(T)],
              "d_last": {s: rand(sizes["hidden"]) for s in setup.states}}
    uses_last = _names(conv.sequence_backward.args) & {f"d_{s}_last" for s in setup.states}
    inputs["d_last"] = {s: v for s, v in inputs["d_last"].items() if f"d_{s}_last" in uses_last}
    args = (params, inputs["xs"], inputs["state0"], inputs["d_outs"], inputs["d_last"])
    ref = bptt(setup, *args)
    items = {k: setup.cast(v) for k, v in sequence_items(setup, params, ref, inputs).items()}
    results, missing = {}, []
    fwd, back = conv.sequence_forward, conv.sequence_backward
    if fwd is None or fwd.function not in found:
        raise VerifyCodeError(f"the file has no {fwd.function if fwd else 'sequence forward'}, which makes "
                              f"the cache {back.function} takes")
    got = call_user(child, fwd, build(fwd.args, items, "sequence forward"), keep="cache")
    collect(fwd.returns, got, results, missing, fwd, " (forward)")
    items["cache"] = Ref("cache", path_of("cache", fwd.returns))
    got = call_user(child, back, build(back.args, items, "sequence backward"))
    collect(back.returns, got, results, missing, back)
    right = sequence_items(setup, params, ref, inputs)
    diagnosis = _SequenceDiagnosis(setup, args, ref)
    out = f"{setup.states[0]}s"
    if out in results and not _close(results[out][1], right[out], rtol or 1e-4):
        diagnosis.note = _forward_note(child, setup, fwd, items, params, out, right[out])
    return _report(setup, results, missing, right, rtol, diagnosis)


def _names(structure) -> set[str]:
    if isinstance(structure, str):
        return {structure}
    values = structure.values() if isinstance(structure, dict) else structure
    return set().union(*(_names(s) for s in values)) if values else set()


# -- the report -------------------------------------------------------------------------------------
def _report(setup: Setup, results: dict, missing: list, right: dict, rtol, diagnosis) -> BackwardReport:
    dtype = computed_dtype([np.asarray(v) if isinstance(v, np.ndarray) else v for _, v in results.values()],
                           setup.dtype)
    rtol = TOLERANCES[dtype] if rtol is None else rtol
    checks = []
    for item, (label, value) in results.items():
        if item not in right:
            continue
        err = rel_error(value, right[item])
        if err is None:
            checks.append(QuantityCheck(label, "wrong", None, f"shape {np.shape(value)}, expected "
                                        f"{np.shape(right[item])}"))
        elif err <= rtol:
            checks.append(QuantityCheck(label, "agrees", err, ""))
        else:
            checks.append(QuantityCheck(label, "wrong", err, diagnosis.explain(item, value, rtol)))
    for key, sub in missing:
        for name in _names(sub) - {"_"}:
            if name.rpartition("=")[2] in right:
                checks.append(QuantityCheck(key, "missing", None, "not returned"))
                break
    if not checks:
        raise VerifyCodeError("the functions returned none of the values the convention names")
    return BackwardReport(tuple(checks), dtype, rtol, setup.seed)


def _close(got, want, rtol) -> bool:
    err = rel_error(got, want)
    return err is not None and err <= rtol


class _StepDiagnosis:
    note: str | None = None  # why the forward disagrees (a gate order, a flipped gate): says it all
    mutants: list | None = None

    def __init__(self, setup: Setup, leaves: dict, values: dict):
        self.setup, self.leaves, self.values = setup, leaves, values

    def explain(self, item: str, value, rtol: float) -> str:
        if self.note:
            return self.note
        right = step_items(self.setup, self.values)[item]
        return (_transposed(value, right, rtol) or self._mutant(item, value, rtol)
                or _blocks(self.setup, item, value, right, rtol) or self._forgets_next(item, value, rtol)
                or self._before_update(item, value, rtol))

    def _mutant(self, item: str, value, rtol: float) -> str:
        """The sentence of the planted-mistake variant the value equals (σ′ for tanh′, ...)."""
        if self.mutants is None:
            d = self.setup.derivation
            self.mutants = activation_mutants(d, self.leaves, self.values) + operand_mutants(d, self.values)
        for mutant in self.mutants:
            try:
                wrong = step_items(self.setup, mutant.values)[item]
            except (KeyError, ValueError):
                continue
            if _close(value, wrong, rtol):
                return mutant.sentence
        return ""

    def _before_update(self, item: str, value, rtol: float) -> str:
        """A carried gradient (d_c_prev) taken before the output's path was added to it."""
        d = self.setup.derivation
        out = self.setup.states[0]
        if item not in [f"d_{s}_prev" for s in self.setup.states[1:]]:
            return ""
        seed = str(d.seeds[out])
        without = state_values(d, {**self.leaves, seed: self.leaves[seed] * 0}, exact=False)
        if _close(value, step_items(self.setup, without)[item], rtol):
            return (f"right only when d_{out} = 0: computed from d_{item[2:-5]} before the {out} path is "
                    f"added to it (take it after the +=)")
        return ""

    def _forgets_next(self, item: str, value, rtol: float) -> str:
        d = self.setup.derivation
        nexts = [str(seed) for s, seed in d.seeds.items() if s != self.setup.states[0]]
        if not nexts:
            return ""
        last = state_values(d, {**self.leaves, **{k: self.leaves[k] * 0 for k in nexts}}, exact=False)
        if _close(value, step_items(self.setup, last)[item], rtol):
            return f"right only when {', '.join(f'd_{s}' for s in self.setup.states[1:])} = 0: " \
                   "forgets the gradient from step t+1"
        return ""


class _SequenceDiagnosis:
    note: str | None = None

    def __init__(self, setup: Setup, args: tuple, ref: dict):
        self.setup, self.args, self.ref = setup, args, ref

    def explain(self, item: str, value, rtol: float) -> str:
        if self.note:
            return self.note
        setup = self.setup
        params, _, _, _, _ = self.args
        right = sequence_items(setup, params, self.ref, self._inputs())[item]
        if found := _transposed(value, right, rtol):
            return found
        for drop in ({s} for s in setup.states):
            variant = bptt(setup, *self.args, drop=frozenset(drop))
            if _close(value, sequence_items(setup, params, variant, self._inputs())[item], rtol):
                (s,) = drop
                return f"the gradient d_{s}_next is not carried to the step before (d_{s}_prev never updated)"
        for t, where in ((0, "the first"), (setup.steps - 1, "the last")):
            variant = bptt(setup, *self.args, only_step=t)
            if item.startswith("d_") and item not in ("d_xs",) and not item.endswith("0") and _close(
                    value, sequence_items(setup, params, variant, self._inputs())[item], rtol):
                return f"has {where} step's term only: = where += belongs (not summed over time)"
        return _blocks(setup, item, value, right, rtol) or self._first_step(item, value, rtol)

    def _inputs(self) -> dict:
        _, xs, state0, d_outs, d_last = self.args
        return {"xs": xs, "state0": state0, "d_outs": d_outs, "d_last": d_last}

    def _first_step(self, item: str, value, rtol: float) -> str:
        """For a per-step quantity: the first step, counting back from T, where it goes wrong."""
        if item != "d_xs" and not (item.endswith("s") and item[:-1] in self.setup.states):
            return ""
        layout = self.setup.convention.sequence_layout
        try:
            got = np.moveaxis(np.asarray(value, dtype=float), layout.index("t"), 0)
        except (ValueError, np.exceptions.AxisError):
            return ""
        steps = self.ref["d_xs"] if item == "d_xs" else self.ref["states"][item[:-1]]
        rows = layout.replace("t", "") == "bf"
        if item != "d_xs":  # a forward value goes wrong forward in time
            first = next(t for t in range(len(steps)) if not _close(got[t].T if rows else got[t], steps[t], rtol))
            return f"right for the first {first} step(s), wrong from step {first + 1} on" if first else \
                "wrong from the first step on"
        for back, t in enumerate(reversed(range(len(steps)))):
            if not _close(got[t].T if rows else got[t], steps[t], rtol):
                if back == 0:
                    return "wrong from the last step (T) on: the step's own term"
                return (f"right for the last {back} step(s), wrong from step T-{back} on: what is carried "
                        "from the step after (d_h_next, d_c_next)")
        return ""


def _transposed(value, right, rtol) -> str:
    if np.ndim(right) == 2 and np.shape(right)[0] != np.shape(right)[1] and _close(np.transpose(value), right, rtol):
        return "is transposed"
    return ""


def _blocks(setup: Setup, item: str, value, right, rtol) -> str:
    """For a parameter gradient: which gate blocks are wrong, or swapped."""
    param = next((p for p in setup.convention.params if f"d_{p.name}" == item), None)
    if param is None:
        return ""
    try:
        got, want = from_user(param, value, setup.sizes), from_user(param, right, setup.sizes)
    except ValueError:
        return ""
    bad = [g for g in param.gates if not all(_close(got[f"{p}_{g}"], want[f"{p}_{g}"], rtol) for p in param.parts)]
    if len(param.gates) > 1 and len(bad) >= 2:
        swapped = all(any(_close(got[f"{p}_{g}"], want[f"{p}_{h}"], rtol) for h in bad if h != g)
                      for g in bad for p in param.parts)
        if swapped:
            return f"the gate blocks {', '.join(bad)} are swapped (is the gate order {param.gates}?)"
    if len(param.gates) == 1 and bad:
        return f"gate {bad[0]}'s terms disagree"
    if len(param.gates) > 1 and bad and len(bad) < len(param.gates):
        return f"the block of gate{'s' if len(bad) > 1 else ''} {', '.join(bad)} disagree{'s' * (len(bad) == 1)}"
    return ""


# -- the command ------------------------------------------------------------------------------------
def check_file(child, convention: Convention, derivation: Derivation, function: str | None = None, *,
               seed: int = 0, dtype: str = "float64", rtol: float | None = None, steps: int = 4,
               hidden: int = 3, input_size: int = 4, batch: int = 2) -> list[tuple[str, BackwardReport]]:
    """Load the file in ``child`` and check every step and sequence pair of the convention it has.

    ``function`` (``FILE.py:FUNC``) names the backward to check: the sequence backward if it is
    the convention's sequence backward's name, the step backward otherwise."""
    conv = convention
    if function and conv.sequence_backward and function == conv.sequence_backward.function:
        conv = _only(conv, sequence=True)
    elif function and conv.step_backward:
        conv = _only(conv, sequence=False, step_backward=function)
    elif function:
        conv = _only(conv, sequence=True, sequence_backward=function)
    found = set(child.load(conv.functions()))
    sizes = {"hidden": hidden, "input": input_size, "batch": batch}
    reports = []
    if conv.step_backward and conv.step_backward.function in found:
        setup = Setup(conv, derivation, sizes, dtype, seed)
        names = [c.function for c in (conv.step_forward, conv.step_backward) if c and c.function in found]
        reports.append((f"one step: {', '.join(names)}", check_step(child, setup, found, rtol)))
    if conv.sequence_backward and conv.sequence_backward.function in found:
        setup = Setup(conv, derivation, sizes, dtype, seed, steps)
        names = [c.function for c in (conv.sequence_forward, conv.sequence_backward) if c]
        reports.append((f"a sequence of {steps} steps: {', '.join(names)}", check_sequence(child, setup, found, rtol)))
    if not reports:
        wanted = [c.function for c in (conv.step_backward, conv.sequence_backward) if c]
        raise NoFunctions(f"{child.path} defines none of the backward functions convention '{conv.name}' "
                              f"calls ({', '.join(wanted)}); name one with FILE.py:FUNCTION")
    return reports


def check_files(child, pairs: list[tuple[Convention, Derivation]], function: str | None = None,
                **options) -> list[tuple[str, BackwardReport]]:
    """:func:`check_file` for each (convention, derivation) whose functions the file has; the first
    one's error when none has any."""
    if function:  # the convention that names it, else the first one (FUNC as its step backward)
        pairs = [p for p in pairs if function in p[0].functions()] or pairs[:1]
    reports, first = [], None
    for convention, derivation in pairs:
        try:
            reports += check_file(child, convention, derivation, function, **options)
        except NoFunctions as exc:
            first = first or exc
    if not reports:
        raise first
    return reports


class NoFunctions(VerifyCodeError):
    """The file defines none of a convention's backward functions."""


def _only(conv: Convention, *, sequence: bool, **names) -> Convention:
    if sequence:
        back = conv.sequence_backward or Call("", ("d_hs", "cache"), {})
        return replace(conv, step_forward=None, step_backward=None,
                       sequence_backward=replace(back, function=names.get("sequence_backward", back.function)))
    return replace(conv, sequence_forward=None, sequence_backward=None,
                   step_backward=replace(conv.step_backward, function=names["step_backward"]))


def report_text(reports: list[tuple[str, BackwardReport]]) -> tuple[str, int]:
    """The reports one after the other, and the exit status (1 if any gradient is wrong)."""
    text = "\n".join(f"{title}\n{report.text()}" for title, report in reports)
    return text, max(r.exit_code for _, r in reports)
