"""Diagnoses for ``verify-code`` with a convention: what a wrong value matches names the mistake.

A forward that disagrees is first explained as a whole (another gate order, a gate read as 1 − g,
one of two biases left out: :func:`forward_note`).  One step's wrong gradient is then compared with
a transpose, the planted-mistake variants of :mod:`verify_mutants`, its own gate blocks, and the
step with a seed set to zero; a sequence's with the time-loop variants of :func:`verify_layout.bptt`
(a carried gradient dropped, one step's weight term only) and the step where it first goes wrong.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import permutations

import numpy as np

from .. import naming
from ..core.derive import stored_values
from ..core.functions import sigmoid
from ..interop import conventions as frameworks
from .convention import Call, from_user
from .eval import state_values
from .layout import Setup, bptt, build, call_user, close, collect, sequence_items, step_items
from .mutants import activation_mutants, operand_mutants, swap_mutants


def forward_note(child, setup: Setup, fwd: Call, items: dict, params: dict, out: str, want) -> str | None:
    """Why the forward disagrees, when a whole convention mismatch explains it."""
    return _flipped_gate(child, setup, fwd, items, params, out, want) or _one_bias(
        child, setup, fwd, items, params, out, want)


def _one_bias(child, setup: Setup, fwd: Call, items: dict, params: dict, out: str, want) -> str | None:
    """The forward agrees when the second bias (``bh``) is zero: the code adds only one of the two."""
    second = [p.name for p in setup.convention.params if "bh" in p.parts]
    one = replace(setup, one_bias=True)
    one.rng = setup.rng
    if setup.convention.framework:  # the arrays that hold none of the bias when it is not split
        plain, split = one.user_params(params), setup.user_params(params)
        changed = [k for k in plain if not np.array_equal(plain[k], split[k])]
        second = [k for k in changed if not np.any(plain[k])] or changed
    if not second:
        return None
    trial = {**items, **{k: setup.cast(v) for k, v in one.user_params(params).items()}}
    got, results = call_user(child, fwd, build(fwd.args, trial, "forward")), {}
    collect(fwd.returns, got, results, [], fwd)
    if out in results and close(results[out][1], want, 1e-4):
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
        if out in results and close(results[out][1], want, 1e-4):
            y = stored.name
            return (f"the code reads gate {y} as 1 − {y} (the {y} ↔ 1 − {y} convention): it agrees with "
                    f"W_{gate}, U_{gate}, b_{gate} negated; use a cell spec written that way (--cell)")
    return None


def gate_order(child, setup: Setup, values: dict) -> str | None:
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
        if out in results and close(results[out][1], items[out], 1e-4):
            return order
    return None


class StepDiagnosis:
    """Why one step's returned value is wrong.  Both ``verify-code`` paths use it: a convention's
    items (``step_items``), and the one-function path's, named as in a notation (``items``: the
    values → the notation's names; ``names``: that notation, for the seeds' names)."""

    note: str | None = None  # why the forward disagrees (a gate order, a flipped gate): says it all
    mutants: list | None = None

    def __init__(self, setup: Setup, leaves: dict, values: dict, items=None, names=None):
        self.setup, self.leaves, self.values = setup, leaves, values
        self.items = items or (lambda v: step_items(setup, v))
        self.names = names

    def _internal(self, item: str) -> str:
        inside = self.names.internal(item) if self.names else (item,)
        return inside[0] if len(inside) == 1 else ""

    def _seed(self, name: str) -> str:
        return self.names.user().get(name, name) if self.names else name

    def explain(self, item: str, value, rtol: float) -> str:
        if self.note:
            return self.note
        right = self.items(self.values)[item]
        blocks = _blocks(self.setup, item, value, right, rtol)
        if "swapped" in blocks:  # in the user's gate letters: says more than the swapped gradients
            return blocks
        return (_transposed(value, right, rtol) or self._mutant(item, value, rtol) or blocks
                or self._forgets_next(item, value, rtol) or self._before_update(item, value, rtol))

    def _mutant(self, item: str, value, rtol: float) -> str:
        """The sentence of the planted-mistake variant the value equals (σ′ for tanh′, ...)."""
        if self.mutants is None:
            d = self.setup.derivation
            self.mutants = (activation_mutants(d, self.leaves, self.values) + operand_mutants(d, self.values)
                            + swap_mutants(d, self.leaves, self.values))
        for mutant in self.mutants:
            try:
                wrong = self.items(mutant.values)[item]
            except (KeyError, ValueError):
                continue
            if close(value, wrong, rtol):
                return mutant.sentence
        return ""

    def _before_update(self, item: str, value, rtol: float) -> str:
        """A carried gradient (d_c_prev) taken before the output's path was added to it."""
        d = self.setup.derivation
        out = self.setup.states[0]
        inside = self._internal(item)
        if inside not in [f"d_{s}_prev" for s in self.setup.states[1:]]:
            return ""
        seed = str(d.seeds[out])
        without = state_values(d, {**self.leaves, seed: self.leaves[seed] * 0}, exact=False)
        if close(value, self.items(without)[item], rtol):
            return (f"right only when {self._seed(seed)} = 0: computed from d_{inside[2:-5]} before the {out} "
                    "path is added to it (take it after the +=)")
        return ""

    def _forgets_next(self, item: str, value, rtol: float) -> str:
        d = self.setup.derivation
        nexts = [str(seed) for s, seed in d.seeds.items() if s != self.setup.states[0]]
        if not nexts:
            return ""
        last = state_values(d, {**self.leaves, **{k: self.leaves[k] * 0 for k in nexts}}, exact=False)
        if close(value, self.items(last)[item], rtol):
            seeds = [self._seed(k) for k in nexts] if self.names else [f"d_{s}" for s in self.setup.states[1:]]
            return f"right only when {', '.join(seeds)} = 0: forgets the gradient from step t+1"
        return ""


class SequenceDiagnosis:
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
            if close(value, sequence_items(setup, params, variant, self._inputs())[item], rtol):
                (s,) = drop
                return f"the gradient d_{s}_next is not carried to the step before (d_{s}_prev never updated)"
        for t, where in ((0, "the first"), (setup.steps - 1, "the last")):
            variant = bptt(setup, *self.args, only_step=t)
            if naming.is_adjoint(item) and item not in ("d_xs",) and not item.endswith("0") and close(
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
            first = next(t for t in range(len(steps)) if not close(got[t].T if rows else got[t], steps[t], rtol))
            return f"right for the first {first} step(s), wrong from step {first + 1} on" if first else \
                "wrong from the first step on"
        for back, t in enumerate(reversed(range(len(steps)))):
            if not close(got[t].T if rows else got[t], steps[t], rtol):
                if back == 0:
                    return "wrong from the last step (T) on: the step's own term"
                return (f"right for the last {back} step(s), wrong from step T-{back} on: what is carried "
                        "from the step after (d_h_next, d_c_next)")
        return ""


def _transposed(value, right, rtol) -> str:
    if np.ndim(right) == 2 and close(np.transpose(value), right, rtol):
        return "is transposed"
    return ""


def _framework_blocks(setup: Setup, item: str, value, right, rtol) -> str:
    """:func:`_blocks` for an array of a framework's layout, read back into the cell's gate blocks."""
    try:
        got, want = setup.framework_part(item, value), setup.framework_part(item, right)
    except (StopIteration, ValueError):
        return ""
    gates = {}
    for name in want:
        if np.any(want[name]) or np.any(got[name]):
            gates.setdefault(name.partition("_")[2], []).append(name)
    bad = [g for g, names in gates.items() if not all(close(got[n], want[n], rtol) for n in names)]
    order = frameworks.GATE_ORDERS.get((setup.convention.framework, setup.derivation.cell.name), "")
    if len(bad) >= 2 and all(any(all(close(got[n], want[n.replace(f"_{g}", f"_{h}")], rtol)
                                     for n in gates[g] if n.replace(f"_{g}", f"_{h}") in want)
                                 for h in bad if h != g) for g in bad):
        return f"the gate blocks {', '.join(bad)} are swapped ({setup.convention.framework}'s order is {order})"
    if bad and len(bad) < len(gates):
        return f"the block of gate{'s' if len(bad) > 1 else ''} {', '.join(bad)} disagree{'s' * (len(bad) == 1)}"
    return ""


def _blocks(setup: Setup, item: str, value, right, rtol) -> str:
    """For a parameter gradient: which gate blocks are wrong, or swapped."""
    if setup.convention.framework:
        return _framework_blocks(setup, item, value, right, rtol)
    param = next((p for p in setup.convention.params if f"d_{p.name}" == item), None)
    if param is None:
        return ""
    try:
        got, want = from_user(param, value, setup.sizes), from_user(param, right, setup.sizes)
    except ValueError:
        return ""
    bad = [g for g in param.gates if not all(close(got[f"{p}_{g}"], want[f"{p}_{g}"], rtol) for p in param.parts)]
    if len(param.gates) > 1 and len(bad) >= 2:
        swapped = all(any(close(got[f"{p}_{g}"], want[f"{p}_{h}"], rtol) for h in bad if h != g)
                      for g in bad for p in param.parts)
        if swapped:
            return f"the gate blocks {', '.join(bad)} are swapped (is the gate order {param.gates}?)"
    if len(param.gates) == 1 and bad:
        return f"gate {bad[0]}'s terms disagree"
    if len(param.gates) > 1 and bad and len(bad) < len(param.gates):
        return f"the block of gate{'s' if len(bad) > 1 else ''} {', '.join(bad)} disagree{'s' * (len(bad) == 1)}"
    return ""
