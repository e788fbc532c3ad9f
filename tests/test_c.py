"""The generated C: printer golden lines, strict compiles, the ctypes binding against the generated
NumPy, PyTorch and central differences, and a sanitizer run of a small C driver."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from conftest import CELLS, COMPILERS, RTOL_FD, rel_err
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import assert_lstm_matches_torch, assert_saturated_cell_stays_finite

from lstm_symbolic import pipeline
from lstm_symbolic.codegen.c import runtime_files
from lstm_symbolic.core.functions import PRIMITIVES, MatTVec, MatVec, Outer, arities, sigmoid
from lstm_symbolic.gradcheck import check_module, load_module, random_problem
from lstm_symbolic.printing.c import CPrinter, c_code

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"]  # -O2: the optimizer's warnings too
RTOL_F64 = 1e-12  # C against the generated NumPy, double
RTOL_F32 = 1e-4  # C (float) against the generated NumPy (float64)
needs_cc = pytest.mark.skipif(not COMPILERS, reason="no C compiler (gcc or clang) on this machine")
a, b, c, x, W, d = sp.symbols("a b c x W d")


def test_c_golden():
    assert c_code(sigmoid(a + b)) == "sigmoid_f64(a + b)"
    assert c_code(sigmoid(a + b), "float") == "sigmoid_f32(a + b)"
    assert c_code(1 - sp.tanh(c) ** 2) == "1 - pow(tanh(c), 2)"
    assert c_code(1 - sp.tanh(c) ** 2, "float") == "1 - powf(tanhf(c), 2)"
    assert c_code(d * (1 - c**2)) == "d*(1 - (c*c))"
    assert c_code(sp.exp(-a) / 2, "float") == "(1.0F/2.0F)*expf(-a)"
    assert c_code(a * (b + c)) == "a*(b + c)"


def test_every_primitive_has_a_c_rule_and_products_are_refused():
    for ctype in ("double", "float"):
        printer = CPrinter(ctype)
        for fn in PRIMITIVES.values():  # strict: a function without a rule raises
            printed = printer.doprint(fn(*[a] * arities(fn)[0]))
            assert "a" in printed, printed
        for atom in (MatVec(W, x), MatTVec(W, d), Outer(d, x)):
            with pytest.raises(TypeError, match="matrix product"):
                printer.doprint(atom)


@needs_cc
@pytest.mark.parametrize("cc", COMPILERS)
@pytest.mark.parametrize("variant", ["portable", "scalar-tiles", "cblas", "openblas+openmp", "scipy-openblas32"])
def test_every_c_file_compiles_strictly(c_dirs, cc, variant, tmp_path):
    if variant == "scipy-openblas32":
        wheel = pytest.importorskip("scipy_openblas32")
        extra = ["-DLSTM_USE_CBLAS", "-DLSTM_OPENBLAS", "-DLSTM_SCIPY_OPENBLAS", f"-I{wheel.get_include_dir()}"]
    elif variant not in ("portable", "scalar-tiles") and not _has_cblas(cc, tmp_path):
        pytest.skip("no cblas.h / CBLAS library here")
    else:
        extra = {"portable": [], "scalar-tiles": ["-DLSTM_NO_VECTORS"], "cblas": ["-DLSTM_USE_CBLAS"],
                 "openblas+openmp": ["-DLSTM_USE_CBLAS", "-DLSTM_OPENBLAS", "-fopenmp"]}[variant]
    if "-fopenmp" in extra and not _has_openmp(cc, tmp_path):
        pytest.skip(f"{cc} has no OpenMP here")
    for name, folder in c_dirs.items():
        src = folder / f"{pipeline.naming.module_name(name)}.c"
        done = subprocess.run([cc, *STRICT, *extra, "-c", str(src), "-o", str(tmp_path / "x.o")],
                              capture_output=True, text=True)
        assert done.returncode == 0 and not done.stderr, f"{cc} {name}:\n{done.stderr}"


def _has_openmp(cc, tmp_path) -> bool:
    probe = tmp_path / "omp.c"
    probe.write_text("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
    done = subprocess.run([cc, "-fopenmp", str(probe), "-o", str(tmp_path / "omp")], capture_output=True)
    return done.returncode == 0


def test_time_loop_runs_threaded_where_openmp_builds(c_modules, tmp_path):
    """The blas path is built with OpenMP (where the compiler has it), one row or 32 hidden units per
    thread allowed: the agreement tests above then run the batch-parallel time loop (B=3 on 2+ threads)
    and, at batch 1, the time loop with the hidden units shared out (hidden 64 and 96 on 2 threads)."""
    if not _has_openmp(COMPILERS[0], tmp_path):
        pytest.skip("no OpenMP here: the C runs on one thread")
    if (os.cpu_count() or 1) < 2 or os.environ.get("OMP_NUM_THREADS", "").strip() == "1":
        pytest.skip("one CPU (or OMP_NUM_THREADS=1): the time loop runs on one thread")
    for (cell, path), m in c_modules.items():
        threads = [m.THREADS(b, 7) for b in (1, 2, 3, 64)]
        assert threads == ([1, 1, 1, 1] if path == "portable" else [1, 2, min(3, threads[3]), threads[3]]), cell
        assert path == "portable" or threads[3] >= 2, cell
        # batch 1: hidden sizes that are multiples of 32, 32 units per thread (9 and 40 are not)
        by_units = [m.THREADS(1, h) for h in (9, 32, 40, 64, 96)]
        assert by_units == ([1] * 5 if path == "portable" else [1, 1, 1, 2, min(3, threads[3])]), cell


def _has_cblas(cc, tmp_path) -> bool:
    probe = tmp_path / "probe.c"
    probe.write_text("#include <cblas.h>\n"
                     "int main(void) { double a = 1; return (int)cblas_ddot(1, &a, 1, &a, 1) - 1; }\n")
    done = subprocess.run([cc, str(probe), "-o", str(tmp_path / "probe"), "-lopenblas"], capture_output=True)
    return done.returncode == 0


def test_blas_path_is_used_where_openblas_links(c_modules, tmp_path):
    if not _has_cblas(COMPILERS[0], tmp_path):
        pytest.skip("no OpenBLAS here: the binding falls back to the portable loops")
    assert all(m.USES_CBLAS for (_, path), m in c_modules.items() if path == "blas")
    assert not any(m.USES_CBLAS for (_, path), m in c_modules.items() if path == "portable")


def _run_both(npm, cm, dtype, seed=1, **sizes):
    p, xs, s0, g, gT = random_problem(npm, seed=seed, **sizes)
    cast = lambda dct: {k: v.astype(dtype) for k, v in dct.items()}  # noqa: E731
    hs0, sT0, cache0 = npm.forward(p, xs, s0)
    grads0, dxs0, ds0 = npm.backward(p, cache0, g, gT)
    hs1, sT1, cache1 = cm.forward(cast(p), xs.astype(dtype), cast(s0))
    grads1, dxs1, ds1 = cm.backward(cast(p), cache1, g.astype(dtype), cast(gT))
    assert hs1.dtype == dtype and dxs1.dtype == dtype and all(v.dtype == dtype for v in grads1.values())
    pairs = {"hs": (hs1, hs0), "d_xs": (dxs1, dxs0)}
    pairs.update({k: (grads1[k], grads0[k]) for k in grads0})
    pairs.update({f"{s}_T": (sT1[s], sT0[s]) for s in sT0})
    pairs.update({f"d_{s}0": (ds1[s], ds0[s]) for s in ds0})
    return {k: rel_err(u, v) for k, (u, v) in pairs.items()}


@pytest.mark.parametrize("path", ["portable", "blas"])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype,rtol", [(np.float64, RTOL_F64), (np.float32, RTOL_F32)], ids=["f64", "f32"])
def test_c_agrees_with_generated_numpy(numpy_modules, c_modules, cell, path, dtype, rtol):
    # (B=16, hidden 32: two threads overlap long enough for a race on a shared sum to show; B=15, hidden 9:
    # the packed products' partial tiles, rows 7 = 4 + 2 + 1 and columns 36 and 9 short of a panel.  Both
    # paths pack the weights for those two sizes only: the first two run the unpacked plan.  B=1, hidden 64
    # and 96, the blas path: the hidden units shared out, 32 + 32 and 32 + 64, over 7 steps and 1.)
    for sizes in (dict(T=9, B=3, input_size=5, hidden_size=7), dict(T=9, B=1, input_size=2, hidden_size=4),
                  dict(T=6, B=16, input_size=8, hidden_size=32), dict(T=5, B=15, input_size=3, hidden_size=9),
                  dict(T=7, B=1, input_size=5, hidden_size=64), dict(T=1, B=1, input_size=3, hidden_size=96)):
        errors = _run_both(numpy_modules[cell], c_modules[cell, path], dtype, **sizes)
        assert max(errors.values()) < rtol, errors


@pytest.mark.parametrize("path", ["portable", "blas"])
@settings(max_examples=25, deadline=None, derandomize=True)
@given(T=st.integers(1, 12), B=st.integers(1, 40), D=st.integers(1, 20), H=st.integers(1, 40))
def test_c_agrees_with_generated_numpy_at_any_size(numpy_modules, c_modules, path, T, B, D, H):
    """Sizes that are no multiple of anything: partial tiles and panels, thread shares of 1 row, packed
    and unpacked calls (portable path), weight-gradient blocks of 8 over T x B rows (the other path)."""
    errors = _run_both(numpy_modules["lstm"], c_modules["lstm", path], np.float64, seed=T * 1000 + B,
                       T=T, B=B, input_size=D, hidden_size=H)
    assert max(errors.values()) < RTOL_F64, (T, B, D, H, errors)


@pytest.mark.parametrize("path", ["portable", "blas"])
@pytest.mark.parametrize("cell", CELLS)
def test_c_against_central_differences(c_modules, cell, path):
    errors = check_module(c_modules[cell, path], T=5, B=2, input_size=3, hidden_size=4)
    assert max(errors.values()) < RTOL_FD, errors


def test_c_lstm_against_torch_autograd(c_modules):
    assert_lstm_matches_torch(pytest.importorskip("torch"), c_modules["lstm", "blas"])


@pytest.mark.parametrize("cell", CELLS)
def test_c_step_api_agrees_with_numpy_step_api(numpy_modules, c_modules, cell):
    npm, cm = numpy_modules[cell], c_modules[cell, "blas"]
    p, xs, s0, g, gT = random_problem(npm, T=1, seed=5)
    d_new = {s: gT[s] + (g[0] if s == npm.STATES[0] else 0) for s in npm.STATES}
    results = []
    for m in (npm, cm):
        new_state, cache = m.step_forward(p, xs[0], s0)
        results.append((new_state, *m.step_backward(p, cache, d_new)))
    (ns0, gr0, dx0, ds0), (ns1, gr1, dx1, ds1) = results
    assert max(rel_err(ns1[s], ns0[s]) for s in npm.STATES) < RTOL_F64
    assert max(rel_err(gr1[k], gr0[k]) for k in npm.PARAMS) < RTOL_F64
    assert rel_err(dx1, dx0) < RTOL_F64 and max(rel_err(ds1[s], ds0[s]) for s in npm.STATES) < RTOL_F64


def test_binding_accepts_what_numpy_accepts(numpy_modules, c_modules):
    """Non-contiguous parameters, a missing state0 / d_state_T, lists of floats, a reused cache."""
    npm, cm = numpy_modules["lstm"], c_modules["lstm", "portable"]
    p, xs, _, g, _ = random_problem(npm, T=4, B=2, seed=7)
    strided = {k: np.asfortranarray(v) for k, v in p.items()}
    hs0, _, cache0 = npm.forward(p, xs)
    hs1, _, cache1 = cm.forward(strided, xs.tolist())
    assert rel_err(hs1, hs0) < RTOL_F64
    grads0, _, _ = npm.backward(p, cache0, g)
    for _ in range(2):
        grads1, _, _ = cm.backward(strided, cache1, g[:, ::1])
        assert max(rel_err(grads1[k], grads0[k]) for k in npm.PARAMS) < RTOL_F64


def test_binding_reuses_only_the_memory_of_the_workspace_it_is_given(numpy_modules, c_modules):
    """Without a workspace the outputs of a call stay intact whatever later calls do; with one, the next
    call of the same sizes writes into the same memory and agrees with the NumPy module; release_buffers()
    lets go of the calling thread's scratch (tests/test_binding.py: the workspace's rules)."""
    npm, cm = numpy_modules["lstm"], c_modules["lstm", "blas"]
    p, xs, s0, g, gT = random_problem(npm, T=3, B=4, seed=9)
    addr = lambda a: a.__array_interface__["data"][0]  # noqa: E731
    hs1, _, cache1 = cm.forward(p, xs, s0)
    kept = hs1.copy()
    grads1 = cm.backward(p, cache1, g, gT)[0]
    held = {k: v.copy() for k, v in grads1.items()}
    for scale in (2, 3):
        cm.backward(p, cm.forward(p, scale * xs, s0)[2], scale * g, gT)
    assert np.array_equal(hs1, kept) and all(np.array_equal(grads1[k], v) for k, v in held.items())
    ws = cm.Workspace()
    hs0, _, cache0 = npm.forward(p, xs, s0)
    want, dxs0, _ = npm.backward(p, cache0, g, gT)
    seen = set()
    for _ in range(3):
        hs, _, cache = cm.forward(p, xs, s0, workspace=ws)
        grads, dxs, _ = cm.backward(p, cache, g, gT, workspace=ws)
        seen.add((addr(hs), addr(dxs), addr(grads["U_c"])))
        assert rel_err(hs, hs0) < RTOL_F64 and rel_err(dxs, dxs0) < RTOL_F64
        assert max(rel_err(grads[k], v) for k, v in want.items()) < RTOL_F64
    assert len(seen) == 1
    cm.release_buffers()
    assert max(rel_err(cm.forward(p, xs, s0)[0], hs0), rel_err(cm.forward(p, xs, s0, workspace=ws)[0], hs0)) < RTOL_F64


def test_binding_accepts_read_only_arrays_and_partial_states(numpy_modules, c_modules):
    """Read-only inputs take the binding's slower address path; a state given alone means the others are zeros
    (a scalar or a (1, hidden) state is refused: see test_hostile_arrays)."""
    npm, cm = numpy_modules["lstm"], c_modules["lstm", "blas"]
    p, xs, s0, g, gT = random_problem(npm, T=4, B=2, seed=8)
    for arr in (xs, g, *p.values(), *s0.values(), *gT.values()):
        arr.setflags(write=False)
    (hs0, _, cache0), (hs1, _, cache1) = npm.forward(p, xs, s0), cm.forward(p, xs, s0)
    (grads0, dxs0, d00), (grads1, dxs1, d01) = npm.backward(p, cache0, g, gT), cm.backward(p, cache1, g, gT)
    assert rel_err(hs1, hs0) < RTOL_F64 and rel_err(dxs1, dxs0) < RTOL_F64
    assert max(rel_err(grads1[k], grads0[k]) for k in npm.PARAMS) < RTOL_F64
    assert max(rel_err(d01[s], d00[s]) for s in npm.STATES) < RTOL_F64
    h0 = {"h": np.full((2, p["U_f"].shape[0]), 0.5)}
    assert rel_err(cm.forward(p, xs, h0)[0], npm.forward(p, xs, h0)[0]) < RTOL_F64


def test_c_saturated_cell_stays_finite(c_modules):
    assert_saturated_cell_stays_finite(c_modules["lstm", "portable"])


def test_missing_compiler_is_one_clear_line(c_dirs, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CC", "no-such-cc")
    monkeypatch.setenv("LSTM_SYMBOLIC_CACHE", str(tmp_path / "cache"))
    with pytest.raises(RuntimeError, match="no C compiler found") as info:
        load_module(c_dirs["lstm"] / "lstm_c.py", "_c_lstm_no_compiler")
    assert "\n" not in str(info.value)


DRIVER = """#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "{m}.h"
#define NP {n_params}
#define NS {n_states}
static const int ROWS[NP] = {{{rows}}}, COLS[NP] = {{{cols}}};  /* 0 hidden, 1 input, 2 one, 3 the cell's own */
static const int STATE[NS] = {{{state_sizes}}};  /* the size of each state, coded as above */
static size_t dim(int code, int D, int H) {{
    return code == 0 ? (size_t)H : code == 1 ? (size_t)D : code == 3 ? (size_t)(H % 32 ? H + 1 : H / 2) : 1; }}
#define RUN(R, SFX) static void run_##SFX(int T, int B, int D, int H) {{ \\
    R *p[NP], *g[NP], *gf[NP], *flat, *s0[NS], *sT[NS], *dT[NS], *d0[NS]; int k; size_t n; unsigned seed = 12345u; \\
    const int P = (int)dim(3, D, H); const size_t O = dim(STATE[0], D, H); \\
    R *xs = malloc(sizeof(R) * T * B * D), *hs = malloc(sizeof(R) * T * B * O), *dhs = malloc(sizeof(R) * T * B * O); \\
    R *dxs = malloc(sizeof(R) * T * B * D); \\
    R *cache = malloc(sizeof(R) * {m}_cache_size(T, B, D, H{x})); \\
    R *work = malloc(sizeof(R) * {m}_workspace_size(T, B, D, H{x})); \\
    (void)P; \\
    for (k = 0; k < NP; ++k) {{ n = dim(ROWS[k], D, H) * dim(COLS[k], D, H); \\
        p[k] = malloc(sizeof(R) * n); g[k] = malloc(sizeof(R) * n); \\
        while (n--) {{ seed = seed * 1103515245u + 12345u; p[k][n] = (R)((seed >> 8) % 1000) / 1000 - (R)0.5; }} }} \\
    for (k = 0; k < NS; ++k) {{ n = B * dim(STATE[k], D, H); \\
        s0[k] = calloc(n, sizeof(R)); sT[k] = malloc(sizeof(R) * n); \\
        dT[k] = calloc(n, sizeof(R)); d0[k] = malloc(sizeof(R) * n); }} \\
    for (n = 0; n < (size_t)T * B * D; ++n) xs[n] = (R)(n % 7) / 7 - (R)0.4; \\
    for (n = 0; n < (size_t)T * B * O; ++n) dhs[n] = (R)(n % 5) / 5 - (R)0.3; \\
    {m}_forward_##SFX(T, B, D, H{x}, (const R *const *)p, xs, (const R *const *)s0, hs, sT, cache, work); \\
    {m}_backward_##SFX(T, B, D, H{x}, (const R *const *)p, xs, cache, dhs, (const R *const *)dT, g, dxs, d0, work); \\
    for (n = 0, k = 0; k < NP; ++k) n += dim(ROWS[k], D, H) * dim(COLS[k], D, H); \\
    flat = malloc(sizeof(R) * n); \\
    for (n = 0, k = 0; k < NP; ++k) {{ gf[k] = flat + n; n += dim(ROWS[k], D, H) * dim(COLS[k], D, H); }} \\
    {m}_backward_##SFX(T, B, D, H{x}, (const R *const *)p, xs, cache, dhs, (const R *const *)dT, gf, dxs, d0, work); \\
    for (k = 0; k < NP; ++k) for (n = 0; n < dim(ROWS[k], D, H) * dim(COLS[k], D, H); ++n) \\
        if (fabs((double)g[k][n] - (double)gf[k][n]) > 1e-4 * (1 + fabs((double)g[k][n]))) {{ \\
            fprintf(stderr, "gradient %d differs between separate and adjacent arrays\\n", k); exit(1); }} \\
    free(flat); \\
    {m}_step_forward_##SFX(B, D, H{x}, (const R *const *)p, xs, (const R *const *)s0, sT, cache, work); \\
    {m}_step_backward_##SFX(B, D, H{x}, (const R *const *)p, xs, cache, (const R *const *)dT, g, dxs, d0, work); \\
    {m}_forward_##SFX(T, B, D, H{x}, (const R *const *)p, xs, NULL, hs, sT, cache, work); \\
    {m}_backward_##SFX(T, B, D, H{x}, (const R *const *)p, xs, cache, NULL, NULL, g, dxs, d0, work); \\
    for (k = 0; k < NP; ++k) {{ free(p[k]); free(g[k]); }} \\
    for (k = 0; k < NS; ++k) {{ free(s0[k]); free(sT[k]); free(dT[k]); free(d0[k]); }} \\
    free(xs); free(hs); free(dhs); free(dxs); free(cache); free(work); }}
RUN(double, f64)
RUN(float, f32)
int main(void)
{{
    static const int sizes[][4] = {{{{3, 1, 5, 3}}, {{4, 2, 2, 6}}, {{1, 1, 1, 1}}, {{2, 3, 7, 4}}, {{2, 15, 3, 9}},
                                   {{3, 1, 4, 64}}, {{2, 1, 3, 96}}}};
    size_t k;
    for (k = 0; k < sizeof sizes / sizeof sizes[0]; ++k) {{
        run_f64(sizes[k][0], sizes[k][1], sizes[k][2], sizes[k][3]);
        run_f32(sizes[k][0], sizes[k][1], sizes[k][2], sizes[k][3]);
    }}
    return 0;
}}
"""


def _driver(cell: str, params: dict, states, state_sizes: dict) -> str:
    """The sanitizer's driver of a cell (with at most one size of its own, code 3)."""
    shapes = [tuple(s) + (None,) * (2 - len(s)) for s in params.values()]
    extra = sorted({a for shape in params.values() for a in shape} - {"hidden", "input"})
    assert len(extra) <= 1, extra
    code = {"hidden": "0", "input": "1", **{e: "3" for e in extra}}
    return DRIVER.format(
        m=pipeline.naming.module_name(cell), n_params=len(params), n_states=len(states), x=", P" * len(extra),
        rows=", ".join(code[r] for r, _ in shapes), cols=", ".join(code.get(c, "2") for _, c in shapes),
        state_sizes=", ".join(code[state_sizes.get(s, "hidden")] for s in states))


@needs_cc
@pytest.mark.parametrize("cblas", [False, True], ids=["portable", "cblas"])
@pytest.mark.parametrize("cell", CELLS)
def test_forward_backward_clean_under_address_and_ub_sanitizers(c_dirs, numpy_modules, cell, cblas, tmp_path):
    cc = COMPILERS[0]
    if cblas and not _has_cblas(cc, tmp_path):
        pytest.skip("no cblas.h / CBLAS library here")
    m = pipeline.naming.module_name(cell)
    npm = numpy_modules[cell]
    (tmp_path / "driver.c").write_text(_driver(cell, npm.PARAMS, npm.STATES, getattr(npm, "STATE_SIZES", {})))
    exe = tmp_path / "driver"
    flags = ["-std=c99", "-g", "-O1", "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
             "-fno-sanitize-recover=all", "-I", str(c_dirs[cell])]
    # the CBLAS variant also runs the batch-parallel time loop: OpenMP, one row (or at batch 1, 32 hidden
    # units) per thread allowed (and the packed products' tiles as the binding builds them, AVX-512 or AVX
    # vectors; scalar in the other)
    flags += (["-DLSTM_USE_CBLAS", "-DLSTM_CBLAS_MIN=0", "-DLSTM_OPENBLAS", "-DLSTM_MIN_ROWS=1", "-DLSTM_MIN_COLS=32",
               "-march=native", "-DLSTM_KC=4", "-DLSTM_PACK_MIN=8"]
              if cblas else ["-DLSTM_NO_VECTORS"])
    flags += ["-fopenmp"] if cblas and _has_openmp(cc, tmp_path) else []
    libs = (["-lopenblas"] if cblas else []) + ["-lm"]
    built = subprocess.run([cc, *flags, str(tmp_path / "driver.c"), str(c_dirs[cell] / f"{m}.c"), "-o", str(exe),
                            *libs], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1"}
    ran = subprocess.run([str(exe)], capture_output=True, text=True, env=env, timeout=120)
    assert ran.returncode == 0 and ran.stderr == "", ran.stderr


@pytest.mark.parametrize("cell", CELLS)
def test_stacked_and_separate_weights_agree(c_modules, cell):
    """init_params lays a group's weights one after the other (one product per operand); separate
    arrays take one product per weight.  Both must give the same numbers."""
    m = c_modules[cell, "blas"]
    p, xs, s0, g, gT = random_problem(m, T=4, B=3, input_size=5, hidden_size=6, seed=11)
    separate = {k: v.copy() for k, v in p.items()}
    results = []
    for params in (p, separate):
        hs, _, cache = m.forward(params, xs, s0)
        results.append((hs, *m.backward(params, cache, g, gT)))
    (hs0, gr0, dx0, _), (hs1, gr1, dx1, _) = results
    assert rel_err(hs1, hs0) < RTOL_F64 and rel_err(dx1, dx0) < RTOL_F64
    assert max(rel_err(gr1[k], gr0[k]) for k in m.PARAMS) < RTOL_F64


def test_cli_emits_the_three_c_files_and_the_runtime_beside_them(tmp_path):
    from lstm_symbolic.cli import main  # noqa: PLC0415

    assert main(["emit", "lstm-peephole", "--lang", "c", "--dtype", "float32", "-o", str(tmp_path)]) == 0
    runtime = sorted(runtime_files())
    assert "lsym_runtime.h" in runtime
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["lstm_peephole.c", "lstm_peephole.h", "lstm_peephole_c.py", *runtime])
    for name, text in runtime_files().items():  # verbatim
        assert (tmp_path / name).read_text() == text
    assert {"lsym_binding.py", "lsym_checks.py"} <= set(runtime)
    header = (tmp_path / "lstm_peephole.h").read_text()
    assert "lstm_peephole_forward_f32" in header and "lstm_peephole_backward_f64" in header


@needs_cc
def test_unwritable_build_cache_is_one_clear_line(c_dirs, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("LSTM_SYMBOLIC_CACHE", str(blocker / "cache"))
    with pytest.raises(RuntimeError, match="LSTM_SYMBOLIC_CACHE") as info:
        load_module(c_dirs["lstm"] / "lstm_c.py", "_c_lstm_bad_cache")
    assert "\n" not in str(info.value)


EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.toml"))


@needs_cc
@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_user_cell_specs_emit_c_that_agrees_with_numpy(spec, tmp_path, monkeypatch):
    monkeypatch.setenv("LSTM_SYMBOLIC_CACHE", str(tmp_path / "cache"))
    cell = pipeline.load_cell(str(spec))
    m = pipeline.naming.module_name(cell.name)
    pipeline.emit(cell, "c", tmp_path)
    pipeline.emit(cell, "numpy", tmp_path)
    c_mod = load_module(tmp_path / f"{m}_c.py", f"_c_example_{m}")
    errors = _run_both(load_module(tmp_path / f"{m}.py", f"_np_example_{m}"), c_mod, np.float64,
                       T=9, B=2, input_size=3, hidden_size=5)
    assert max(errors.values()) < RTOL_F64, errors


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
def test_a_forked_child_runs_after_the_parent_used_threads(c_modules):
    """GCC's OpenMP runtime hangs in a child made by fork() once the parent has run a team; the C
    notices the fork (pthread_atfork) and runs the child on its own thread."""
    import time  # noqa: PLC0415

    m = c_modules["lstm", "blas"]
    p, xs, s0, g, gT = random_problem(m, T=4, B=6, input_size=3, hidden_size=5, seed=3)
    hs, _, cache = m.forward(p, xs, s0)
    grads = m.backward(p, cache, g, gT)[0]
    pid = os.fork()
    if pid == 0:  # the child: the same numbers, then exit without pytest's cleanup
        ok = False
        try:
            hs1, _, cache1 = m.forward(p, xs, s0)
            grads1 = m.backward(p, cache1, g, gT)[0]
            ok = m.THREADS(6, 4) == 1 and rel_err(hs1, hs) < RTOL_F64
            ok = ok and all(rel_err(grads1[k], grads[k]) < RTOL_F64 for k in grads)
        finally:
            os._exit(0 if ok else 1)
    deadline = time.monotonic() + 60
    while (done := os.waitpid(pid, os.WNOHANG)) == (0, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    if done == (0, 0):
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung in the C")
    assert os.waitstatus_to_exitcode(done[1]) == 0


@needs_cc
def test_a_smaller_team_than_asked_for_sums_only_its_own_partial_gradients(c_dirs, numpy_modules, tmp_path):
    """OMP_THREAD_LIMIT=1 under OMP_NUM_THREADS=2: the C asks for two threads and the runtime gives one.
    The bias gradients must be summed over the team that ran, not over the team asked for (the
    workspace is filled with garbage first, where a second thread's partial sums would lie)."""
    folder = c_dirs["lstm"]
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import sys\n"
        "import numpy as np\n"
        "from lstm_symbolic.gradcheck import load_module, random_problem\n"
        f"c = load_module({str(folder / 'lstm_c.py')!r}, 'lstm_c')\n"
        f"n = load_module({numpy_modules['lstm'].__file__!r}, 'lstm_np')\n"
        "p, xs, s0, g, gT = random_problem(n, T=3, B=16, input_size=3, hidden_size=5, seed=4)\n"
        "ws = c.Workspace()\n"
        "c.forward(p, xs, s0, workspace=ws)\n"
        "ws._scratch[np.dtype(np.float64)][0][:] = 1e3\n"
        "grads = c.backward(p, c.forward(p, xs, s0, workspace=ws)[2], g, gT, workspace=ws)[0]\n"
        "ref = n.backward(p, n.forward(p, xs, s0)[2], g, gT)[0]\n"
        "print(c.THREADS(16, 4), max(float(np.abs(grads[k] - ref[k]).max()) for k in ref))\n")
    env = {**os.environ, "LSTM_SYMBOLIC_CACHE": str(tmp_path / "cache"), "LSTM_SYMBOLIC_BLAS": "auto",
           "LSTM_SYMBOLIC_OPENMP": "auto", "LSTM_SYMBOLIC_CFLAGS": "-DLSTM_MIN_ROWS=1",
           "OMP_NUM_THREADS": "2", "OMP_THREAD_LIMIT": "1"}
    done = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    threads, err = done.stdout.split()
    if threads == "1":
        pytest.skip("the C was built without OpenMP here")
    assert float(err) < 1e-10, done.stdout


@needs_cc
@pytest.mark.parametrize("cell", CELLS)
def test_small_batches_of_several_rows_share_out_the_hidden_units(c_dirs, numpy_modules, c_modules, cell, tmp_path,
                                                                  monkeypatch):
    """Batches under 2 x LSTM_MIN_ROWS (8) rows, every row on each thread's own hidden units: with 32
    units per thread allowed, hidden 96 runs on two threads (32 + 64 units) at batch 5, and every
    result agrees with the generated NumPy, both plans of the C (CBLAS and the loops for products of
    up to 20000 multiply-adds), with the workspace filled with garbage first."""
    if c_modules[cell, "blas"].THREADS(64, 7) < 2:
        pytest.skip("the C runs on one thread here (no OpenMP, or one CPU)")
    monkeypatch.setenv("LSTM_SYMBOLIC_CACHE", str(tmp_path / "cache"))
    m = pipeline.naming.module_name(cell)
    for k, cflags in enumerate(("-DLSTM_MIN_COLS=32", "-DLSTM_MIN_COLS=32 -DLSTM_CBLAS_MIN=20000")):
        monkeypatch.setenv("LSTM_SYMBOLIC_CFLAGS", cflags)
        cm = load_module(c_dirs[cell] / f"{m}_c.py", f"_c_{m}_by_units_{k}")
        assert cm.THREADS(5, 96) == 2 and cm.THREADS(5, 95) == 1 and cm.THREADS(16, 96) == 2
        for dtype, rtol in ((np.float64, RTOL_F64), (np.float32, RTOL_F32)):
            _run_both(numpy_modules[cell], cm, dtype, T=2, B=5, input_size=3, hidden_size=96)
            for work, _ in cm._lsym._own()._scratch.values():  # the scratch of calls without a workspace
                work[:] = 1e3
            for sizes in (dict(T=6, B=5, input_size=7, hidden_size=96), dict(T=1, B=3, input_size=2, hidden_size=64)):
                errors = _run_both(numpy_modules[cell], cm, dtype, seed=k + 3, **sizes)
                assert max(errors.values()) < rtol, (cflags, dtype, sizes, errors)


@needs_cc
@pytest.mark.parametrize("cell", ["lstm", "lstm-peephole", "gru"])
def test_the_scipy_openblas32_wheel_serves_as_the_blas(c_dirs, numpy_modules, cell, tmp_path, monkeypatch):
    """LSTM_SYMBOLIC_BLAS=scipy-openblas32 links the wheel's OpenBLAS (symbols prefixed scipy_), for
    users without a system BLAS; `auto` takes it when the system has no OpenBLAS."""
    pytest.importorskip("scipy_openblas32")
    monkeypatch.setenv("LSTM_SYMBOLIC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LSTM_SYMBOLIC_BLAS", "scipy-openblas32")
    monkeypatch.setenv("LSTM_SYMBOLIC_CFLAGS", "-DLSTM_CBLAS_MIN=0 -DLSTM_MIN_ROWS=1")
    m = pipeline.naming.module_name(cell)
    cm = load_module(c_dirs[cell] / f"{m}_c.py", f"_c_{m}_scipy_openblas")
    assert cm.USES_CBLAS
    maps = Path("/proc/self/maps")
    if maps.exists():  # the wheel's library is loaded (NumPy's own is scipy_openblas64, another file)
        assert "scipy_openblas32/lib/libscipy_openblas" in maps.read_text()
    for dtype, rtol in ((np.float64, RTOL_F64), (np.float32, RTOL_F32)):
        for sizes in (dict(T=6, B=16, input_size=8, hidden_size=32), dict(T=5, B=1, input_size=3, hidden_size=4)):
            errors = _run_both(numpy_modules[cell], cm, dtype, **sizes)
            assert max(errors.values()) < rtol, (dtype, sizes, errors)


def test_a_missing_scipy_openblas32_wheel_is_one_clear_line(c_dirs, tmp_path, monkeypatch):
    import builtins  # noqa: PLC0415

    real_import = builtins.__import__

    def no_wheel(name, *args, **kwargs):
        if name == "scipy_openblas32":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wheel)
    monkeypatch.setenv("LSTM_SYMBOLIC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LSTM_SYMBOLIC_BLAS", "scipy-openblas32")
    with pytest.raises(RuntimeError, match="pip install scipy-openblas32") as info:
        load_module(c_dirs["lstm"] / "lstm_c.py", "_c_lstm_no_wheel")
    assert "\n" not in str(info.value)
