"""The C runtime (lstm_symbolic/codegen/c/runtime/) on its own: every matrix product, the packing, the sigmoid and the
choice of threads, in both real types, against NumPy.  A harness (tests/c/runtime_harness.c) that includes the
runtime is compiled once per build variant (vector widths, scalar tiles, OpenMP, a CBLAS) and loaded with ctypes;
sizes are and are not multiples of the tiles, with padded leading dimensions whose padding must stay untouched."""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import COMPILERS

RUNTIME = Path(__file__).resolve().parent.parent / "lstm_symbolic" / "codegen" / "c" / "runtime"
HARNESS = Path(__file__).resolve().parent / "c" / "runtime_harness.c"
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O3", "-ffast-math", "-fPIC"]
# -ffast-math compiles only: on a link line GCC adds crtfastmath.o, whose constructor sets flush-to-zero
# for the whole process (pytest's), as the generated binding avoids by linking in a second step too.
RTOL = {np.float64: 1e-12, np.float32: 1e-5}
SFX = {np.float64: "f64", np.float32: "f32"}
CTYPE = {np.float64: ctypes.c_double, np.float32: ctypes.c_float}
PAD = 3  # extra columns of every matrix beyond its width: the leading dimension is width + PAD
SENTINEL = 7.0  # the padding's value, which no routine may change

# (M, N, K): around the tiles (LSTM_MR 4, 6 or 8 rows; PK_NR 2 to 32 columns), the row blocks (LSTM_MC 64) and
# the k blocks of the weight gradients (LSTM_KC 256).
SHAPES = [(1, 1, 1), (2, 3, 5), (5, 17, 3), (8, 16, 4), (13, 33, 17), (6, 40, 64), (64, 64, 64), (70, 100, 37),
          (3, 130, 257), (20, 33, 600)]

# The build variants: compiler flags, and whether they need the scipy-openblas32 wheel.
VARIANTS = {
    "sse": [],  # GNU C vectors of 16 bytes
    "avx2": ["-mavx2", "-mfma"],  # 32 bytes
    "native+openmp": ["-march=native", "-fopenmp"],  # AVX-512 where the machine has it, and threads
    "scalar-tiles": ["-DLSTM_NO_VECTORS"],
    "scipy-openblas32+openmp": ["-march=native", "-fopenmp", "-DLSTM_CBLAS_MIN=0"],  # CBLAS for every product
}


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()}


def _blas_flags() -> list[str]:
    wheel = pytest.importorskip("scipy_openblas32")
    lib_dir = wheel.get_lib_dir()
    return ["-DLSTM_USE_CBLAS", "-DLSTM_OPENBLAS", "-DLSTM_SCIPY_OPENBLAS", f"-I{wheel.get_include_dir()}",
            f"-L{lib_dir}", f"-l{wheel.get_library()}", f"-Wl,-rpath,{lib_dir}"]


class Harness:
    """The compiled harness: ``call(name, dtype, *args)`` with NumPy arrays passed as pointers."""

    def __init__(self, lib: ctypes.CDLL, variant: str):
        self.lib, self.variant = lib, variant
        self.openmp = bool(lib.h_openmp())
        self.cblas = bool(lib.h_uses_cblas())

    def call(self, name: str, dtype, *args):
        fn = getattr(self.lib, f"{name}_{SFX[dtype]}")
        fn.restype = ctypes.c_int if name in ("h_mm_pk", "h_wg", "h_wg_pair", "h_nr") else None
        out = []
        for a in args:
            if isinstance(a, np.ndarray):
                assert a.dtype == dtype and a.flags.c_contiguous
                out.append(a.ctypes.data_as(ctypes.c_void_p))
            elif isinstance(a, float):
                out.append(CTYPE[dtype](a))
            else:
                out.append(ctypes.c_int(a))
        return fn(*out)


@pytest.fixture(scope="module", params=list(VARIANTS))
def harness(request, tmp_path_factory) -> Harness:
    if not COMPILERS:
        pytest.skip("no C compiler (gcc or clang) on this machine")
    variant, flags = request.param, list(VARIANTS[request.param])
    if variant == "avx2" and not {"avx2", "fma"} <= _cpu_flags():
        pytest.skip("this machine has no AVX2")
    if "openblas" in variant:
        flags += _blas_flags()
    folder = tmp_path_factory.mktemp("runtime")
    obj, lib = folder / f"harness-{variant}.o", folder / f"harness-{variant}.so"
    for cmd in ([COMPILERS[0], *STRICT, *flags, "-iquote", str(RUNTIME), "-c", str(HARNESS), "-o", str(obj)],
                [COMPILERS[0], "-shared", "-fPIC", *flags, str(obj), "-o", str(lib), "-lm"]):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode and "-fopenmp" in flags and "omp" in done.stderr:
            pytest.skip(f"{COMPILERS[0]} has no OpenMP here")
        assert done.returncode == 0 and not done.stderr, done.stderr
    harness = Harness(ctypes.CDLL(str(lib)), variant)
    assert np.float64(2.2250738585072014e-308) / 2 != 0, "loading the harness set flush-to-zero"
    return harness


def _matrix(rng, rows: int, cols: int, dtype, fill=None) -> np.ndarray:
    """A rows x (cols + PAD) array: the matrix is its first cols columns, the rest SENTINEL."""
    a = np.full((rows, cols + PAD), SENTINEL, dtype=dtype)
    a[:, :cols] = rng.standard_normal((rows, cols)) if fill is None else fill
    return a


def _check(got: np.ndarray, want: np.ndarray, dtype, what: str):
    cols = want.shape[1]
    assert np.all(got[:, cols:] == SENTINEL), f"{what}: wrote into the padding"
    err = float(np.max(np.abs(got[:, :cols] - want)) / max(np.max(np.abs(want)), 1e-300))
    assert err <= RTOL[dtype], f"{what}: relative error {err:.2e}"


def _wide(a: np.ndarray, cols: int) -> np.ndarray:
    return a[:, :cols].astype(np.float64)


DTYPES = [np.float64, np.float32]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta", [0.0, 1.0, 0.5])
@pytest.mark.parametrize("shape", SHAPES)
def test_mm_nt_and_mm_nn(harness, shape, beta, dtype, rng):
    M, N, K = shape
    A, Bt, Bn = _matrix(rng, M, K, dtype), _matrix(rng, N, K, dtype), _matrix(rng, K, N, dtype)
    for name, B, product in (("h_mm_nt", Bt, _wide(A, K) @ _wide(Bt, K).T),
                             ("h_mm_nn", Bn, _wide(A, K) @ _wide(Bn, N))):
        C = _matrix(rng, M, N, dtype, fill=np.nan if beta == 0 else None)  # beta 0: C is not read
        want = product + (beta * _wide(C, N) if beta else 0)
        harness.call(name, dtype, M, N, K, A, K + PAD, B, B.shape[1], beta, C, N + PAD)
        _check(C, want, dtype, f"{name} {shape} beta={beta}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans", [0, 1])
def test_pk_pack_lays_out_zero_padded_panels_in_any_share(harness, trans, dtype, rng):
    nr = harness.call("h_nr", dtype)
    for N, K in ((1, 1), (5, 3), (nr, 4), (3 * nr + 1, 17), (100, 37)):
        W = _matrix(rng, N if trans else K, K if trans else N, dtype)
        op = (W[:, :K].T if trans else W[:, :N]).astype(np.float64)  # K x N
        panels = -(-N // nr)
        want = np.zeros((panels, K, nr))
        for p in range(panels):
            cols = op[:, p * nr:(p + 1) * nr]
            want[p, :, :cols.shape[1]] = cols
        for nth in (1, 2, 3):
            Wp = np.full(panels * K * nr, np.nan, dtype=dtype)
            for tid in range(nth):
                harness.call("h_pk_pack", dtype, trans, N, K, W, W.shape[1], Wp, tid, nth)
            assert np.array_equal(Wp.reshape(panels, K, nr).astype(np.float64), want), (N, K, nth)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans", [0, 1])
@pytest.mark.parametrize("add", [0, 1])
@pytest.mark.parametrize("shape", SHAPES)
def test_mm_pk_on_packed_weights(harness, shape, add, trans, dtype, rng):
    M, N, K = shape
    A = _matrix(rng, M, K, dtype)
    W = _matrix(rng, N if trans else K, K if trans else N, dtype)
    op = _wide(W, K).T if trans else _wide(W, N)
    for nt in (1, 2, 3):
        C = _matrix(rng, M, N, dtype, fill=np.nan if not add else None)  # not add: C is not read
        want = _wide(A, K) @ op + (_wide(C, N) if add else 0)
        team = harness.call("h_mm_pk", dtype, trans, M, N, K, A, K + PAD, W, W.shape[1], C, N + PAD, add, nt)
        assert team == (nt if harness.openmp else 1)
        _check(C, want, dtype, f"mm_pk {shape} trans={trans} add={add} threads={nt}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pk", [0, 1])
@pytest.mark.parametrize("shape", SHAPES)
def test_wg_adds_a_transposed_product(harness, shape, pk, dtype, rng):
    M, N, K = shape  # C (M x N) += A^T B, A K x M, B K x N
    A, B = _matrix(rng, K, M, dtype), _matrix(rng, K, N, dtype)
    for nt in (1, 2, 3):
        C = _matrix(rng, M, N, dtype)
        want = _wide(A, M).T @ _wide(B, N) + _wide(C, N)
        team = harness.call("h_wg", dtype, pk, M, N, K, A, M + PAD, B, N + PAD, C, N + PAD, nt)
        assert team == (nt if harness.openmp else 1)
        _check(C, want, dtype, f"wg {shape} pk={pk} threads={nt}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(64, 40, 100, 600), (13, 100, 33, 300), (1024, 128, 256, 520)])
def test_wg_twice_in_one_team_sharing_the_workspace(harness, shape, dtype, rng):
    M, N1, N2, K = shape  # a thread that finishes the first product early must not repack what another reads
    A = rng.standard_normal((K, M)).astype(dtype)
    B1, B2 = rng.standard_normal((K, N1)).astype(dtype), rng.standard_normal((K, N2)).astype(dtype)
    for nt in (2, 3):
        C1, C2 = np.zeros((M, N1), dtype), np.zeros((M, N2), dtype)
        harness.call("h_wg_pair", dtype, 1, M, N1, N2, K, A, B1, C1, B2, C2, nt)
        for C, B in ((C1, B1), (C2, B2)):
            want = A.astype(np.float64).T @ B.astype(np.float64)
            err = float(np.max(np.abs(C - want)) / np.max(np.abs(want)))
            assert err <= RTOL[dtype], f"wg pair {shape} threads={nt}: relative error {err:.2e}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_is_the_logistic_function_and_finite(harness, dtype):
    x = np.concatenate([np.linspace(-40, 40, 801), [-1e4, 1e4, -88.5, 88.5]]).astype(dtype)
    y = np.empty_like(x)
    harness.call("h_sigmoid", dtype, len(x), x, y)
    with np.errstate(over="ignore"):
        want = 1 / (1 + np.exp(-x.astype(np.float64)))
    assert np.all(np.isfinite(y)) and np.all((y >= 0) & (y <= 1))
    assert np.max(np.abs(y - want)) <= 4 * np.finfo(dtype).eps


def test_threads_follow_the_batch_and_hidden_size(harness):
    threads = harness.lib.h_threads
    if not harness.openmp:
        assert {threads(B, H) for B, H in ((1, 64), (64, 256), (1000, 1024))} == {1}
        return
    assert threads(1, 33) == 1  # a batch too small to share, hidden units not in panels of 32
    assert threads(4, 32) == 1  # a batch too small to share, too few hidden units (LSTM_MIN_COLS 64)
    assert threads(8, 256) == threads(4, 256) >= 1  # the same rule under 2 x LSTM_MIN_ROWS rows
    for B in (16, 24, 64, 1000):
        assert 1 <= threads(B, 256) <= min(B // 8, 16)  # LSTM_MIN_ROWS 8, LSTM_MAX_THREADS 16


def test_cblas_is_where_it_was_asked_for(harness):
    assert harness.cblas == ("openblas" in harness.variant)
    assert harness.lib.h_mr() in (4, 6, 8)
