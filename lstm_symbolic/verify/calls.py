"""Check a user's forward and backward code called by a :class:`~lstm_symbolic.verify.convention.Convention`.

Part of ``verify-code``.  The right values come from the derivation, evaluated in NumPy per step
(:func:`verify_eval.state_values`); a whole sequence is that step swept forward and back (BPTT).
Values travel to the user's functions in the convention's layout (orientation, stacked and
reordered gate blocks, sequences' axes) and what they return is compared in that layout.  The
user's functions run in the child process of :mod:`verify_run`; the cache their forward returns
stays there, and the backward gets it back by reference.  Values and calls: :mod:`verify_layout`;
what a wrong value is explained by: :mod:`verify_explain`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..core.derive import Derivation
from .code import TOLERANCES, BackwardReport, QuantityCheck, VerifyCodeError, computed_dtype, rel_error
from .convention import Call, Convention
from .eval import random_leaves, state_values
from .explain import SequenceDiagnosis, StepDiagnosis, forward_note, gate_order
from .layout import Setup, bptt, build, call_user, close, collect, names_in, path_of, sequence_items, step_items
from .run import Ref


# -- one step ---------------------------------------------------------------------------------------
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
    elif "cache" in names_in(conv.step_backward.args):
        forward = conv.step_forward.function if conv.step_forward else "step forward"
        raise VerifyCodeError(f"the file has no {forward}, which makes the cache {conv.step_backward.function} "
                              "takes (and the convention gives no [step] cache to build instead)")
    back = conv.step_backward
    got = call_user(child, back, build(back.args, items, "step backward"))
    collect(back.returns, got, results, missing, back)
    right = step_items(setup, values)
    diagnosis = StepDiagnosis(setup, leaves, values)
    out = setup.states[0]
    if out in results and conv.step_forward and not close(results[out][1], right[out], rtol or 1e-4):
        order = gate_order(child, setup, values)
        params = {q.name: leaves[q.name] for q in setup.derivation.cell.params}
        diagnosis.note = (f"the code's gate order looks like {order}: pass --gate-order {order}" if order else
                          forward_note(child, setup, conv.step_forward, items, params, out, right[out]))
    return _report(setup, results, missing, right, rtol, diagnosis)


# -- a whole sequence ---------------------------------------------------------------------------------
def check_sequence(child, setup: Setup, found: set[str], rtol: float | None) -> BackwardReport:
    conv, sizes, T = setup.convention, setup.sizes, setup.steps
    leaves = random_leaves(setup.derivation, sizes, setup.rng, exact=False, batch=sizes["batch"])
    leaves = {k: v.astype(setup.dtype).astype(np.float64) for k, v in leaves.items()}
    params = {q.name: leaves[q.name] for q in setup.derivation.cell.params}
    rand = lambda size: setup.rng.normal(0, 0.6, (size, sizes["batch"])).astype(setup.dtype).astype(float)  # noqa: E731
    given = names_in(conv.sequence_forward.args) if conv.sequence_forward else set()
    inputs = {"xs": [rand(sizes["input"]) for _ in range(T)],
              "state0": {s: rand(sizes["hidden"]) * (f"{s}0" in given) for s in setup.states},
              "d_outs": [rand(sizes["hidden"]) for _ in range(T)],
              "d_last": {s: rand(sizes["hidden"]) for s in setup.states}}
    uses_last = names_in(conv.sequence_backward.args) & {f"d_{s}_last" for s in setup.states}
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
    diagnosis = SequenceDiagnosis(setup, args, ref)
    out = f"{setup.states[0]}s"
    if out in results and not close(results[out][1], right[out], rtol or 1e-4):
        diagnosis.note = forward_note(child, setup, fwd, items, params, out, right[out])
    return _report(setup, results, missing, right, rtol, diagnosis)


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
        for name in names_in(sub) - {"_"}:
            if name.rpartition("=")[2] in right:
                checks.append(QuantityCheck(key, "missing", None, "not returned"))
                break
    if not checks:
        raise VerifyCodeError("the functions returned none of the values the convention names")
    return BackwardReport(tuple(checks), dtype, rtol, setup.seed)


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
