"""Arrays from a user (issue 15): every argument of the generated NumPy module and of the C binding that does
not fit the call is refused before any work (in the binding: before any address reaches C) with the same
ArgumentError and the same one-line message in both; what both accept, both compute alike.

One table, CASES, runs against both modules.  Its C side also runs under AddressSanitizer in a child process
(the binding's library compiled once per session with -fsanitize=address, libasan preloaded into Python),
where a single read outside an array ends the run; a canary child bypasses the checks to show that the
sanitizer does see the overflows the checks prevent.

Run as a script (``python test_hostile_arrays.py table|canary NUMPY_MODULE C_BINDING``), this file is that child.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
if __name__ == "__main__":  # the child: the tests folder and the checkout on the path, as under pytest
    sys.path[:0] = [str(HERE), str(HERE.parent)]

from conftest import COMPILERS, rel_err  # noqa: E402

from lstm_symbolic.gradcheck import load_module, random_problem  # noqa: E402

T, B, I, H = 5, 2, 3, 4  # distinct sizes: a transposed array never fits by accident
RTOL = {np.float64: 1e-10, np.float32: 1e-4}


class Problem(NamedTuple):
    params: dict
    xs: np.ndarray
    s0: dict
    g: np.ndarray
    gT: dict


def problem(m, hidden=H) -> Problem:
    """The same arrays at every call (a fresh set, so that no case sees another's)."""
    return Problem(*random_problem(m, T=T, B=B, input_size=I, hidden_size=hidden, seed=3))


class Case(NamedTuple):
    id: str
    call: Callable[[Any, Any, Problem], Any]  # (module, the other module, problem) -> what the call returns
    want: str | None  # the start of the message (a regex) of a refusal; None: both run, and agree


def _with(params, **changed):
    return {**params, **changed}


def _backward(m, p, d_hs=None, d_state_T=None, *, params=None):
    _, _, cache = m.forward(p.params, p.xs, p.s0)
    return m.backward(p.params if params is None else params, cache, p.g if d_hs is None else d_hs, d_state_T)


def _other_sizes(m, p):
    """A cache of a call with hidden size 5, handed to backward with the hidden size 4 parameters."""
    q = problem(m, hidden=5)
    _, _, cache = m.forward(q.params, q.xs)
    return m.backward(p.params, cache, p.g)


def _other_cache(m, other, p):
    _, _, cache = other.forward(p.params, p.xs)
    return m.backward(p.params, cache, p.g)


def _step(m, p, x=None, state=None, d_new_state=None, cache_from_sequence=False):
    if cache_from_sequence:
        _, _, cache = m.forward(p.params, p.xs)
    else:
        _, cache = m.step_forward(p.params, p.xs[0] if x is None else x, p.s0 if state is None else state)
    return m.step_backward(p.params, cache, {"h": p.g[0]} if d_new_state is None else d_new_state)


CACHE = r"T, B and hidden as in the forward call that made the cache"
CASES = [
    # xs: dims, sizes, dtypes, things that are not arrays
    Case("xs-without-steps", lambda m, o, p: m.forward(p.params, p.xs[0]),
         r"forward: xs has shape \(2, 3\); expected \(T, B, input\) = \(T, B, 3\), input as in W_f, every other"),
    Case("xs-4d", lambda m, o, p: m.forward(p.params, p.xs[None]), r"forward: xs has shape \(1, 5, 2, 3\); expected"),
    Case("xs-other-input-size", lambda m, o, p: m.forward(p.params, p.xs[..., :2]),
         r"forward: xs has shape \(5, 2, 2\); expected \(T, B, input\) = \(T, B, 3\)"),
    Case("xs-transposed", lambda m, o, p: m.forward(p.params, p.xs.transpose(0, 2, 1)),
         r"forward: xs has shape \(5, 3, 2\); expected"),
    Case("xs-no-steps", lambda m, o, p: m.forward(p.params, p.xs[:0]),
         r"forward: xs has shape \(0, 2, 3\); expected \(T, B, input\) = \(T, B, 3\), input as in W_f, every other "
         r"size at least 1$"),
    Case("xs-no-rows", lambda m, o, p: m.forward(p.params, p.xs[:, :0]), r"forward: xs has shape \(5, 0, 3\)"),
    Case("xs-int", lambda m, o, p: m.forward(p.params, p.xs.astype(np.int64)),
         r"forward: xs has dtype int64; expected float32 or float64 \(convert with \.astype\(np\.float64\)\)$"),
    Case("xs-bool", lambda m, o, p: m.forward(p.params, p.xs > 0), r"forward: xs has dtype bool; expected"),
    Case("xs-float16", lambda m, o, p: m.forward(p.params, p.xs.astype(np.float16)), r"forward: xs has dtype float16"),
    Case("xs-longdouble", lambda m, o, p: m.forward(p.params, p.xs.astype(np.longdouble)),
         r"forward: xs has dtype float(128|96|64); expected float32 or float64"
         if np.dtype(np.longdouble).itemsize > 8 else None),
    Case("xs-complex", lambda m, o, p: m.forward(p.params, p.xs.astype(np.complex128)),
         r"forward: xs has dtype complex128; expected"),
    Case("xs-object", lambda m, o, p: m.forward(p.params, p.xs.astype(object)), r"forward: xs has dtype object"),
    Case("xs-ragged-list", lambda m, o, p: m.forward(p.params, [[[1.0, 2.0, 3.0]], [[1.0]]]),
         r"forward: xs is a list that NumPy cannot read as an array; expected float32 or float64 numbers$"),
    Case("xs-text", lambda m, o, p: m.forward(p.params, "xs"), r"forward: xs has dtype '<U2'; expected"),
    Case("xs-none", lambda m, o, p: m.forward(p.params, None), r"forward: xs has dtype object; expected"),
    Case("xs-scalar", lambda m, o, p: m.forward(p.params, 1.0), r"forward: xs has shape \(\); expected"),
    Case("xs-too-large-for-c-ints", lambda m, o, p: m.forward(p.params, np.broadcast_to(np.float64(0), (2**29, 1, 3))),
         r"forward: xs has shape \(536870912, 1, 3\) with hidden size 4: too large; expected T \* B \* 4 \* "
         r"max\(input, hidden\) at most 2147483647"),
    Case("xs-list", lambda m, o, p: m.forward(p.params, p.xs.tolist(), p.s0), None),
    Case("xs-strided", lambda m, o, p: m.forward(p.params, np.asfortranarray(p.xs), p.s0), None),
    Case("xs-big-endian", lambda m, o, p: m.forward(p.params, p.xs.astype(">f8"), p.s0), None),
    Case("xs-float32-runs-in-float32", lambda m, o, p: m.forward(p.params, p.xs.astype(np.float32), p.s0), None),
    # params: keys, container, shapes, dtypes
    Case("params-missing-key", lambda m, o, p: m.forward({k: v for k, v in p.params.items() if k != "U_c"}, p.xs),
         r"forward: params lacks U_c; expected the keys W_f, W_i, W_c, W_o, U_f, U_i, U_c, U_o, b_f, b_i, b_c, b_o$"),
    Case("params-extra-key", lambda m, o, p: m.forward(_with(p.params, W_x=p.params["W_f"]), p.xs),
         r"forward: params has the key 'W_x'; expected the keys W_f, "),
    Case("params-key-not-a-name", lambda m, o, p: m.forward({**p.params, 0: 1}, p.xs),
         r"forward: params has the key 0; expected the keys"),
    Case("params-key-with-control-characters", lambda m, o, p: m.forward({**p.params, "\x1b[2J\n" * 20: 1}, p.xs),
         r"forward: params has the key '(\\x1b\[2J\\n)+\.\.\.; expected the keys"),
    Case("params-list", lambda m, o, p: m.forward(list(p.params.values()), p.xs),
         r"forward: params is a list; expected a dict with the keys W_f, "),
    Case("params-none", lambda m, o, p: m.forward(None, p.xs), r"forward: params is a NoneType; expected a dict"),
    Case("param-transposed", lambda m, o, p: m.forward(_with(p.params, W_i=p.params["W_i"].T), p.xs),
         r"forward: params\['W_i'\] has shape \(3, 4\); expected \(hidden, input\) = \(4, 3\), "
         r"hidden and input as in W_f$"),
    Case("first-param-transposed", lambda m, o, p: m.forward(_with(p.params, W_f=p.params["W_f"].T), p.xs),
         r"forward: params\['W_i'\] has shape \(4, 3\); expected \(hidden, input\) = \(3, 4\), hidden and input as "
         r"in W_f$"),
    Case("recurrent-weight-too-wide", lambda m, o, p: m.forward(_with(p.params, U_f=np.zeros((H, H + 1))), p.xs),
         r"forward: params\['U_f'\] has shape \(4, 5\); expected \(hidden, hidden\) = \(4, 4\), hidden as in W_f$"),
    Case("bias-as-a-row", lambda m, o, p: m.forward(_with(p.params, b_f=p.params["b_f"][None]), p.xs),
         r"forward: params\['b_f'\] has shape \(1, 4\); expected \(hidden,\) = \(4,\), hidden as in W_f$"),
    Case("bias-as-a-column", lambda m, o, p: m.forward(_with(p.params, b_o=p.params["b_o"][:, None]), p.xs),
         r"forward: params\['b_o'\] has shape \(4, 1\); expected \(hidden,\) = \(4,\)"),
    Case("bias-scalar", lambda m, o, p: m.forward(_with(p.params, b_c=0.5), p.xs),
         r"forward: params\['b_c'\] has shape \(\); expected \(hidden,\) = \(4,\)"),
    Case("param-int", lambda m, o, p: m.forward(_with(p.params, U_o=np.ones((H, H), dtype=np.int32)), p.xs),
         r"forward: params\['U_o'\] has dtype int32; expected float32 or float64"),
    Case("param-complex", lambda m, o, p: m.forward(_with(p.params, W_c=p.params["W_c"] + 0j), p.xs),
         r"forward: params\['W_c'\] has dtype complex128"),
    Case("params-of-size-zero", lambda m, o, p: m.forward(
        {k: np.zeros(tuple(0 if s == "hidden" else I for s in shape)) for k, shape in m.PARAMS.items()}, p.xs),
         r"forward: params\['W_f'\] has shape \(0, 3\); expected \(hidden, input\), every size at least 1$"),
    Case("params-float32-converted", lambda m, o, p: m.forward({k: v.astype(np.float32) for k, v in p.params.items()},
                                                               p.xs, p.s0), None),
    Case("params-strided", lambda m, o, p: m.forward({k: np.asfortranarray(v) for k, v in p.params.items()}, p.xs,
                                                     p.s0), None),
    Case("params-read-only-mapping", lambda m, o, p: m.forward(MappingProxyType(p.params), p.xs, p.s0), None),
    # state0
    Case("state-broadcast-row", lambda m, o, p: m.forward(p.params, p.xs, {"h": p.s0["h"][:1]}),
         r"forward: state0\['h'\] has shape \(1, 4\); expected \(B, hidden\) = \(2, 4\), B as in xs; hidden as in "
         r"W_f$"),
    Case("state-vector", lambda m, o, p: m.forward(p.params, p.xs, {"c": p.s0["c"][0]}),
         r"forward: state0\['c'\] has shape \(4,\); expected \(B, hidden\) = \(2, 4\)"),
    Case("state-scalar", lambda m, o, p: m.forward(p.params, p.xs, {"h": 0.5}),
         r"forward: state0\['h'\] has shape \(\); expected \(B, hidden\) = \(2, 4\)"),
    Case("state-transposed", lambda m, o, p: m.forward(p.params, p.xs, {"h": p.s0["h"].T}),
         r"forward: state0\['h'\] has shape \(4, 2\)"),
    Case("state-extra-key", lambda m, o, p: m.forward(p.params, p.xs, {**p.s0, "n": p.s0["h"]}),
         r"forward: state0 has the key 'n'; expected keys among h, c$"),
    Case("state-tuple", lambda m, o, p: m.forward(p.params, p.xs, (p.s0["h"], p.s0["c"])),
         r"forward: state0 is a tuple; expected a dict of \(B, hidden\) arrays with keys among h, c$"),
    Case("state-int", lambda m, o, p: m.forward(p.params, p.xs, {"h": np.zeros((B, H), dtype=np.int8)}),
         r"forward: state0\['h'\] has dtype int8"),
    Case("state-partial", lambda m, o, p: m.forward(p.params, p.xs, {"c": p.s0["c"]}), None),
    Case("state-none-entry", lambda m, o, p: m.forward(p.params, p.xs, {"h": None, "c": p.s0["c"]}), None),
    Case("state-empty", lambda m, o, p: m.forward(p.params, p.xs, {}), None),
    # backward: d_hs, d_state_T, the cache
    Case("d_hs-transposed", lambda m, o, p: _backward(m, p, p.g.transpose(0, 2, 1)),
         rf"backward: d_hs has shape \(5, 4, 2\); expected \(T, B, hidden\) = \(5, 2, 4\), {CACHE}$"),
    Case("d_hs-extra-steps", lambda m, o, p: _backward(m, p, np.concatenate([p.g, p.g])),
         r"backward: d_hs has shape \(10, 2, 4\); expected \(T, B, hidden\) = \(5, 2, 4\)"),
    Case("d_hs-fewer-steps", lambda m, o, p: _backward(m, p, p.g[:2]), r"backward: d_hs has shape \(2, 2, 4\)"),
    Case("d_hs-one-step-to-broadcast", lambda m, o, p: _backward(m, p, p.g[:1]),
         r"backward: d_hs has shape \(1, 2, 4\)"),
    Case("d_hs-without-steps", lambda m, o, p: _backward(m, p, p.g[0]), r"backward: d_hs has shape \(2, 4\)"),
    Case("d_hs-int", lambda m, o, p: _backward(m, p, p.g.astype(np.int16)), r"backward: d_hs has dtype int16"),
    Case("d_hs-none-is-zeros", lambda m, o, p: m.backward(p.params, m.forward(p.params, p.xs)[2], None, p.gT), None),
    Case("d_hs-list", lambda m, o, p: _backward(m, p, p.g.tolist(), p.gT), None),
    Case("d_hs-float64-into-a-float32-call", lambda m, o, p: m.backward(
        p.params, m.forward(p.params, p.xs.astype(np.float32))[2], p.g, p.gT), None),
    Case("d_state_T-broadcast-row", lambda m, o, p: _backward(m, p, p.g, {"c": p.gT["c"][:1]}),
         r"backward: d_state_T\['c'\] has shape \(1, 4\); expected \(B, hidden\) = \(2, 4\), B and hidden as in "
         r"the forward call that made the cache$"),
    Case("d_state_T-extra-key", lambda m, o, p: _backward(m, p, p.g, {"h_T": p.gT["h"]}),
         r"backward: d_state_T has the key 'h_T'; expected keys among h, c$"),
    Case("d_state_T-list", lambda m, o, p: _backward(m, p, p.g, [p.gT["h"]]), r"backward: d_state_T is a list"),
    Case("d_state_T-partial", lambda m, o, p: _backward(m, p, p.g, {"h": p.gT["h"]}), None),
    Case("cache-a-dict", lambda m, o, p: m.backward(p.params, {"xs": p.xs}, p.g),
         r"backward: cache is a dict; expected the cache that this module's forward returned$"),
    Case("cache-none", lambda m, o, p: m.backward(p.params, None, p.g), r"backward: cache is a NoneType"),
    Case("cache-of-the-other-module", lambda m, o, p: _other_cache(m, o, p),
         r"backward: cache is the cache of another module; expected the cache that this module's forward returned$"),
    Case("cache-of-other-sizes", lambda m, o, p: _other_sizes(m, p),
         r"backward: params\['W_f'\] has shape \(4, 3\); expected \(hidden, input\) = \(5, 3\), hidden and input as "
         r"in the forward call that made the cache$"),
    Case("backward-params-missing-key", lambda m, o, p: _backward(
        m, p, params={k: v for k, v in p.params.items() if k != "b_o"}), r"backward: params lacks b_o"),
    Case("backward-param-int", lambda m, o, p: _backward(m, p, params=_with(p.params, W_o=np.ones((H, I), int))),
         r"backward: params\['W_o'\] has dtype int64"),
    Case("backward-everything-given", lambda m, o, p: _backward(m, p, p.g, p.gT), None),
    # the step API
    Case("step-x-with-steps", lambda m, o, p: _step(m, p, x=p.xs),
         r"step_forward: x has shape \(5, 2, 3\); expected \(B, input\) = \(B, 3\), input as in W_f, every other"),
    Case("step-state-row", lambda m, o, p: _step(m, p, state={"h": p.s0["h"][:1]}),
         r"step_forward: state\['h'\] has shape \(1, 4\); expected \(B, hidden\) = \(2, 4\), B as in x; hidden"),
    Case("step-cache-of-a-sequence", lambda m, o, p: _step(m, p, cache_from_sequence=True),
         r"step_backward: cache was made by a forward call over 5 steps; expected the cache of step_forward"),
    Case("step-d_new_state-transposed", lambda m, o, p: _step(m, p, d_new_state={"h": p.g[0].T}),
         r"step_backward: d_new_state\['h'\] has shape \(4, 2\); expected \(B, hidden\) = \(2, 4\)"),
    Case("step-d_new_state-empty", lambda m, o, p: _step(m, p, d_new_state={}), None),
    Case("step-both-given", lambda m, o, p: _step(m, p), None),
]


def outcome(case: Case, m, other) -> tuple[str, Any]:
    """("refused", the exception's class and message), ("ran", the arrays returned) or ("crashed", ...)."""
    try:
        result = case.call(m, other, problem(m))
    except m.ArgumentError as exc:
        return "refused", f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a crash is an outcome to report, not to hide
        return "crashed", f"{type(exc).__name__}: {exc}"
    return "ran", arrays_of(result)


def arrays_of(result) -> list[np.ndarray]:
    """The arrays of what a call returned (outputs, states, gradients; not the cache), in a fixed order."""
    if isinstance(result, np.ndarray):
        return [result]
    if isinstance(result, dict):
        return [a for k in sorted(result) for a in arrays_of(result[k])]
    if isinstance(result, tuple):
        return [a for r in result for a in arrays_of(r)]
    return []


def agree(ours: list, theirs: list) -> float:
    """The largest relative difference between two calls' arrays (inf when their shapes or dtypes differ)."""
    if [(a.shape, a.dtype) for a in ours] != [(a.shape, a.dtype) for a in theirs] or not ours:
        return float("inf")
    return max(rel_err(a, b) for a, b in zip(ours, theirs, strict=True))


def _tolerance(arrays) -> float:
    return RTOL[np.float32] if any(a.dtype == np.float32 for a in arrays) else RTOL[np.float64]


@pytest.fixture(scope="module")
def lstm_modules(numpy_modules, c_modules):
    return numpy_modules["lstm"], c_modules["lstm", "portable"]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_both_modules_refuse_alike_or_agree(case, lstm_modules):
    npm, cm = lstm_modules
    (kind, got), (c_kind, c_got) = outcome(case, npm, cm), outcome(case, cm, npm)
    if case.want is None:
        assert kind == c_kind == "ran", (got, c_got)
        assert agree(c_got, got) < _tolerance(got), "the two modules disagree"
    else:
        assert (kind, c_kind) == ("refused", "refused"), (got, c_got)
        assert c_got == got, "the two modules refuse with different messages"
        assert re.match(f"ArgumentError: {case.want}", got), got
        assert got.isprintable()


def test_argument_error_is_a_value_error_of_each_module(lstm_modules):
    for m in lstm_modules:
        assert issubclass(m.ArgumentError, ValueError)
        with pytest.raises(m.ArgumentError):
            m.forward({}, np.zeros((1, 1, 1)))


def test_a_refused_call_does_not_reach_c(lstm_modules, monkeypatch):
    """The binding calls no C function for a refused call: a refused forward calls none at all, a refused
    backward only the forward that made its cache."""
    npm, cm = lstm_modules
    calls = []

    def counted(k, fn):
        return lambda *args: (calls.append(k), fn(*args))[1]
    counting = {d: tuple(counted(k, fn) for k, fn in enumerate(fs)) for d, fs in cm._BINDING._funcs.items()}
    monkeypatch.setattr(cm._BINDING, "_funcs", counting)
    for case in (c for c in CASES if c.want is not None):
        calls.clear()
        kind, got = outcome(case, cm, npm)
        assert kind == "refused", (case.id, got)
        assert not calls if "forward:" in got else 1 not in calls, (case.id, calls)


def test_too_large_sizes_allocate_nothing(lstm_modules):
    """The size check comes before any copy: a broadcast (zero-stride) xs of 2**31 rows is refused at once."""
    for m in lstm_modules:
        with pytest.raises(m.ArgumentError, match="too large"):
            m.forward(problem(m).params, np.broadcast_to(np.float32(0), (2**31, 1, I)))


def test_a_cache_cannot_be_reused_across_sizes_or_steps(lstm_modules):
    """The cache carries the sizes and dtype of its call (the C binding's cache: also its addresses)."""
    for m in lstm_modules:
        p = problem(m)
        _, _, cache = m.forward(p.params, p.xs.astype(np.float32))
        assert (cache.T, cache.B, cache.I, cache.H, cache.dtype) == (T, B, I, H, np.float32)
        grads, _, _ = m.backward(p.params, cache, p.g)
        assert grads["W_f"].dtype == np.float32


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["gru", "gru-reset-after", "lstm-cifg", "lstm-peephole"])
def test_every_cell_checks_every_parameter_alike(cell, numpy_modules, c_modules):
    """The other built-in cells: each parameter one column too wide, and a transposed d_hs, are refused
    with the same message by both modules."""
    npm, cm = numpy_modules[cell], c_modules[cell, "portable"]
    for name in npm.PARAMS:
        def wider(m, other, p, name=name):
            return m.forward(_with(p.params, **{name: np.zeros(p.params[name].shape[:-1] + (5,))}), p.xs)
        case = Case(f"{cell}-{name}", wider, rf"forward: params\['{name}'\] has shape \(")
        results = outcome(case, npm, cm), outcome(case, cm, npm)
        assert results[0] == results[1] and results[0][0] == "refused", results
        # a first parameter of a wrong shape sets the sizes: the next one that has them is then the one named
        assert re.match(f"ArgumentError: {case.want}", results[0][1]) or name == next(iter(npm.PARAMS)), results
    transposed = Case("d_hs", lambda m, o, p: _backward(m, p, p.g.transpose(0, 2, 1)), r"backward: d_hs has shape")
    results = outcome(transposed, npm, cm), outcome(transposed, cm, npm)
    assert results[0] == results[1] and re.match(f"ArgumentError: {transposed.want}", results[0][1]), results


# -- the C cases under AddressSanitizer --------------------------------------------------------------

def _libasan() -> str | None:
    """The path of gcc's libasan, when gcc is here and builds with -fsanitize=address."""
    if "gcc" not in COMPILERS:
        return None
    found = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    return found if os.path.isabs(found) and os.path.exists(found) else None


@pytest.fixture(scope="session")
def asan_env(tmp_path_factory):
    """The environment of a child Python whose C bindings build with AddressSanitizer (into one cache folder
    of the session: the library is compiled once, by the first child)."""
    lib = _libasan()
    if lib is None:
        pytest.skip("no gcc with AddressSanitizer here")
    return {**os.environ, "LD_PRELOAD": lib, "CC": "gcc",
            "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0:exitcode=99",
            "LSTM_SYMBOLIC_CACHE": str(tmp_path_factory.mktemp("asan-cache")),
            "LSTM_SYMBOLIC_BLAS": "none", "LSTM_SYMBOLIC_OPENMP": "none",
            "LSTM_SYMBOLIC_CFLAGS": "-fsanitize=address -fno-omit-frame-pointer -g",
            "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)])}


def _run_child(mode: str, env: dict, numpy_modules, c_dirs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, __file__, mode, numpy_modules["lstm"].__file__,
                           str(c_dirs["lstm"] / "lstm_c.py")], capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="session")
def asan_table(asan_env, numpy_modules, c_dirs):
    """{case id: its outcome in the C binding under AddressSanitizer}, and the child's whole stderr."""
    done = _run_child("table", asan_env, numpy_modules, c_dirs)
    results = {r["id"]: r for r in map(json.loads, done.stdout.splitlines())}
    return results, done


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_c_cases_run_clean_under_address_sanitizer(case, asan_table):
    results, done = asan_table
    assert case.id in results, f"the child stopped before this case (exit {done.returncode}):\n{done.stderr[-4000:]}"
    r = results[case.id]
    assert r["kind"] == ("ran" if case.want is None else "refused"), r
    if case.want is None:
        assert r["error"] < r["tolerance"], r
    else:
        assert re.match(f"ArgumentError: {case.want}", r["message"]), r


@pytest.mark.slow
def test_the_whole_table_leaves_address_sanitizer_silent(asan_table):
    _, done = asan_table
    assert done.returncode == 0 and "AddressSanitizer" not in done.stderr, done.stderr[-4000:]


@pytest.mark.slow
def test_address_sanitizer_sees_what_the_checks_prevent(asan_env, asan_table, numpy_modules, c_dirs):
    """The canary: the binding's C called past the checks with an xs of one step for five reads outside
    the array, and AddressSanitizer says so (so a clean table means something)."""
    done = _run_child("canary", asan_env, numpy_modules, c_dirs)
    assert done.returncode == 99 and "heap-buffer-overflow" in done.stderr, done.stderr[-4000:]


def _child(mode: str, numpy_path: str, c_path: str) -> int:
    npm, cm = load_module(numpy_path, "_asan_numpy"), load_module(c_path, "_asan_c")
    if mode == "canary":
        p = problem(npm)
        arrays, xs, states, sizes, dtype = cm._BINDING._forward_args("forward", p.params, p.xs, p.s0)
        cm._BINDING._forward("forward", arrays, xs[:1].copy(), states, sizes, dtype, None)  # claims 5 steps, holds 1
        return 0
    for case in CASES:
        kind, got = outcome(case, cm, npm)
        record = {"id": case.id, "kind": kind}
        if kind == "ran":
            want = outcome(case, npm, cm)[1]
            record.update(error=agree(got, want), tolerance=_tolerance(want))
        else:
            record["message"] = got
        print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:]))
