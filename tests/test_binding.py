"""The shared modules of the C bindings (lstm_symbolic/codegen/c/runtime): lsym_checks.py, the argument checks
of every generated module, and lsym_binding.py, what every cell's `<cell>_c.py` binds through (loading by path,
the build's cache key, the Workspace the caller sees, calls from several threads)."""

from __future__ import annotations

import ast
import os
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import C_PATHS, COMPILERS, rel_err

from lstm_symbolic import pipeline
from lstm_symbolic.gradcheck import random_problem

RUNTIME = Path(__file__).resolve().parent.parent / "lstm_symbolic" / "codegen" / "c" / "runtime"
RTOL = 1e-12


def _load(path: Path):
    """lsym_binding.py (or another runtime module) of a folder, as a cell's module loads it."""
    from importlib.util import module_from_spec, spec_from_file_location  # noqa: PLC0415

    spec = spec_from_file_location(f"_test_{path.parent.name}_{path.stem}", path)
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lsym():
    return _load(RUNTIME / "lsym_binding.py")


@pytest.fixture(scope="module")
def lstm_dir(tmp_path_factory):
    """A folder with the lstm cell's C and the runtime beside it."""
    out = tmp_path_factory.mktemp("c-lstm")
    pipeline.emit(pipeline.load_cell("lstm"), "c", out)
    for f in RUNTIME.iterdir():
        if f.is_file() and not (out / f.name).exists():
            shutil.copy(f, out / f.name)
    return out


@pytest.fixture(scope="module")
def here(lstm_dir, lsym):
    """lsym_binding.py of the lstm cell's folder, as the cell's module loads it."""
    return lsym.load_sibling(lstm_dir / "lsym_binding.py")


@pytest.fixture(scope="module")
def binding(here, lstm_dir, numpy_modules, tmp_path_factory):
    """The lstm cell's Binding, built as the tests' "blas" path (threads from batch 2 where OpenMP builds)."""
    if not COMPILERS:
        pytest.skip("no C compiler (gcc or clang) on this machine")
    env = {"LSTM_SYMBOLIC_CACHE": str(tmp_path_factory.mktemp("build-cache")), **C_PATHS["blas"]}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        lsym = here
        npm = numpy_modules["lstm"]
        return lsym.Binding(lstm_dir / "lstm_c.py", "lstm", npm.PARAMS, npm.STATES, 4)
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


# -- lsym_checks.py ------------------------------------------------------------------------------------

def test_the_checks_are_cell_independent_source_importing_numpy_and_the_standard_library():
    tree = ast.parse((RUNTIME / "lsym_checks.py").read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported == {"operator", "collections", "numpy"}
    assert "# -- argument checks" in (RUNTIME / "lsym_checks.py").read_text()


def test_a_cells_checks_are_made_from_its_tables(lsym):
    """The cell's parameters, states and blocks are parameters of _Checks: the sizes come from its first
    parameter with the axis, the size limit counts its blocks."""
    checks = lsym._checks._Checks({"U": ("hidden", "hidden"), "W": ("hidden", "input")}, ("h",), 3)
    p = {"U": np.zeros((4, 4)), "W": np.zeros((4, 2))}
    arrays, xs, states, sizes, dtype = checks.forward_args("forward", p, np.zeros((5, 3, 2), np.float32), None)
    assert sizes == (5, 3, 2, 4) and dtype == np.float32 and xs.dtype == np.float32 and states == {}
    with pytest.raises(lsym.ArgumentError, match=r"^forward: xs has shape \(5, 3, 7\); expected \(T, B, input\) "
                                                   r"= \(T, B, 2\), input as in W, every other size at least 1$"):
        checks.forward_args("forward", p, np.zeros((5, 3, 7)), None)
    with pytest.raises(lsym.ArgumentError, match=r"T \* B \* 3 \* max\(input, hidden\) at most 2147483647"):
        checks.forward_args("forward", p, np.broadcast_to(0.0, (2**29, 1, 2)), None)
    with pytest.raises(lsym.ArgumentError, match=r"^forward: state0 has the key 'c'; expected keys among h$"):
        checks.forward_args("forward", p, np.zeros((5, 3, 2)), {"c": None})


def test_a_cache_is_refused_by_the_checks_of_another_cell(lsym):
    one, other = (lsym._checks._Checks({"U": ("hidden", "hidden")}, ("h",), 1) for _ in range(2))
    cache = one.cache((2, 3, 4, 4), np.dtype(np.float64), ())
    p = {"U": np.zeros((4, 4))}
    assert one.backward_args("backward", p, cache, None, None)[3] == (2, 3, 4, 4)
    with pytest.raises(lsym.ArgumentError, match="^backward: cache is the cache of another module; expected the "
                                                   "cache that this module's forward returned$"):
        other.backward_args("backward", p, cache, None, None)


# -- loading by path, and the build's key ---------------------------------------------------------------

def test_two_folders_with_different_copies_do_not_meet_in_sys_modules(tmp_path, lsym):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for f in ("lsym_binding.py", "lsym_build.py", "lsym_checks.py"):
            shutil.copy(RUNTIME / f, tmp_path / name / f)
    (tmp_path / "b" / "lsym_checks.py").write_text((RUNTIME / "lsym_checks.py").read_text() + "\nMARK = 1\n")
    path_before = list(sys.path)
    a = lsym.load_sibling(tmp_path / "a" / "lsym_binding.py")
    b = lsym.load_sibling(tmp_path / "b" / "lsym_binding.py")
    assert a is not b and a.__name__ != b.__name__ and sys.modules[a.__name__] is a
    assert not hasattr(a._checks, "MARK") and b._checks.MARK == 1 and a.ArgumentError is not b.ArgumentError
    assert lsym.load_sibling(tmp_path / "a" / "lsym_binding.py") is a  # once per folder and contents
    assert sys.path == path_before


def test_the_build_key_covers_the_kernel_and_the_runtime_beside_it_only(tmp_path, lsym, monkeypatch):
    """A change to the cell's C or to a runtime file (lsym_*) builds anew; another cell's C beside it does not."""
    compiled = []

    def fake(cc, flags, folder, sources, lib):
        lib.parent.mkdir(parents=True, exist_ok=True)
        lib.write_text("")
        compiled.append(lib)

    monkeypatch.setattr(lsym._build, "_compile", fake)
    monkeypatch.setenv("LSTM_SYMBOLIC_CACHE", str(tmp_path / "cache"))
    for name, text in (("cell.c", "int x;"), ("cell.h", ""), ("lsym_runtime.h", "/* 1 */"), ("other.c", "")):
        (tmp_path / name).write_text(text)
    first = lsym._build.build(tmp_path, "cell", ("cell.c",))
    assert lsym._build.build(tmp_path, "cell", ("cell.c",)) == first and len(compiled) == 1
    (tmp_path / "other.c").write_text("int y;")
    assert lsym._build.build(tmp_path, "cell", ("cell.c",)) == first
    (tmp_path / "lsym_runtime.h").write_text("/* 2 */")
    second = lsym._build.build(tmp_path, "cell", ("cell.c",))
    (tmp_path / "cell.h").write_text("/* changed */")
    third = lsym._build.build(tmp_path, "cell", ("cell.c",))
    assert len({first, second, third}) == 3 and len(compiled) == 3


# -- the Workspace ------------------------------------------------------------------------------------

def _addr(a):
    return a.__array_interface__["data"][0]


def test_a_workspace_holds_the_outputs_of_its_last_forward_and_backward(binding, numpy_modules, here, lsym):
    npm = numpy_modules["lstm"]
    p, xs, s0, g, gT = random_problem(npm, T=4, B=3, seed=5)
    hs_ref, sT_ref, cache_ref = binding.forward(p, xs, s0)
    grads_ref, dxs_ref, ds_ref = binding.backward(p, cache_ref, g, gT)
    ws = here.Workspace()
    assert ws.nbytes == 0
    hs1, _, cache1 = binding.forward(p, xs, s0, workspace=ws)
    hs2, sT2, cache2 = binding.forward(p, xs, s0, workspace=ws)
    assert _addr(hs1) == _addr(hs2) and np.array_equal(hs2, hs_ref)
    assert all(np.array_equal(sT2[k], v) for k, v in sT_ref.items())
    with pytest.raises(here.ArgumentError, match="^backward: cache holds arrays that a later forward call with the "
                                                   "same workspace overwrote; expected the cache of that workspace's "
                                                   "last forward call$"):
        binding.backward(p, cache1, g, gT, workspace=ws)
    grads1, dxs1, _ = binding.backward(p, cache2, g, gT, workspace=ws)
    grads2, dxs2, ds2 = binding.backward(p, cache2, g, gT, workspace=ws)
    assert _addr(dxs1) == _addr(dxs2) and _addr(grads1["W_f"]) == _addr(grads2["W_f"])
    assert max(rel_err(grads2[k], v) for k, v in grads_ref.items()) < RTOL and np.array_equal(dxs2, dxs_ref)
    held = ws.nbytes
    assert held > hs1.nbytes + dxs1.nbytes
    bigger = random_problem(npm, T=6, B=3, seed=5)
    hs3, _, cache3 = binding.forward(bigger[0], bigger[1], workspace=ws)  # other sizes: a new buffer
    assert _addr(hs3) != _addr(hs1) and np.array_equal(hs1, hs2)
    binding.backward(p, cache2, g, workspace=ws)  # the buffer of cache2 was let go of, not overwritten
    ws.clear()
    assert ws.nbytes == 0
    with pytest.raises(here.ArgumentError, match="^forward: workspace is a dict; expected a Workspace of this module, "
                                                   "or None$"):
        binding.forward(p, xs, workspace={})
    with pytest.raises(here.ArgumentError, match="^backward: workspace is the Workspace of another folder's binding"):
        binding.backward(p, cache3, bigger[3], workspace=lsym.Workspace())


def test_inputs_that_lie_in_the_buffer_a_call_writes_are_copied_first(binding, numpy_modules, here):
    """Truncated BPTT with one workspace: the last state of a chunk is the next chunk's state0, and the
    d_state0 of a chunk the d_state_T of the one before; the results are those of calls on copies."""
    npm = numpy_modules["lstm"]
    p, xs, s0, g, gT = random_problem(npm, T=6, B=3, seed=8)
    ws = here.Workspace()
    _, s_mid, _ = binding.forward(p, xs[:3], s0, workspace=ws)
    kept = {k: v.copy() for k, v in s_mid.items()}
    hs_b, _, cache_b = binding.forward(p, xs[3:], s_mid, workspace=ws)
    assert np.array_equal(hs_b, binding.forward(p, xs[3:], kept)[0])
    _, _, d_mid = binding.backward(p, cache_b, g[3:], gT, workspace=ws)
    d_kept = {k: v.copy() for k, v in d_mid.items()}
    grads, _, d0 = binding.backward(p, cache_b, g[3:], d_mid, workspace=ws)
    want, _, d0_want = binding.backward(p, cache_b, g[3:], d_kept)
    assert all(np.array_equal(grads[k], want[k]) for k in want)
    assert all(np.array_equal(d0[k], d0_want[k]) for k in d0_want)


def test_calls_without_a_workspace_return_fresh_arrays(binding, numpy_modules):
    npm = numpy_modules["lstm"]
    p, xs, s0, g, _ = random_problem(npm, T=3, B=2, seed=9)
    hs1, _, cache1 = binding.forward(p, xs, s0)
    kept = hs1.copy()
    hs2, _, _ = binding.forward(p, 2 * xs, s0)
    assert _addr(hs1) != _addr(hs2) and np.array_equal(hs1, kept)
    g1 = binding.backward(p, cache1, g)[0]
    g2 = binding.backward(p, cache1, 2 * g)[0]
    assert _addr(g1["W_f"]) != _addr(g2["W_f"]) and max(rel_err(2 * g1[k], g2[k]) for k in g1) < RTOL


def test_threads_with_their_own_workspaces_or_none_compute_alike(binding, numpy_modules, here):
    """Four threads at once, two with a workspace each, two without: every result is the one-thread result."""
    npm = numpy_modules["lstm"]
    problems = [random_problem(npm, T=5, B=4 + k, seed=k) for k in range(4)]
    want = [binding.backward(p, binding.forward(p, xs, s0)[2], g, gT) for p, xs, s0, g, gT in problems]
    errors = []

    def run(k):
        p, xs, s0, g, gT = problems[k]
        ws = here.Workspace() if k % 2 else None
        for _ in range(30):
            grads, dxs, _ = binding.backward(p, binding.forward(p, xs, s0, workspace=ws)[2], g, gT, workspace=ws)
            errors.append(max(rel_err(grads[n], want[k][0][n]) for n in grads) + rel_err(dxs, want[k][1]))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 120 and max(errors) == 0.0


def test_the_step_functions_take_a_workspace_too(binding, numpy_modules, here):
    npm = numpy_modules["lstm"]
    p, xs, s0, _, _ = random_problem(npm, T=3, B=2, seed=4)
    ws, state, free = here.Workspace(), s0, s0
    for x in xs:
        state, _ = binding.step_forward(p, x, state, workspace=ws)  # state0 lies in the buffer it writes
        free, _ = binding.step_forward(p, x, free)
    assert all(np.array_equal(state[k], free[k]) for k in free)
