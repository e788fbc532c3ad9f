"""The floor a BLAS sets: the LSTM BPTT's matrix products alone, as BLAS calls.

Times, through Debian's OpenBLAS (the one the generated C links for its small calls), every product of
one forward + backward of the LSTM, one call each: the input projection of all steps, one recurrent
product per step forward and one per step backward, the two weight gradients and d_xs.  Also the "GEMM
limit" of the performance issue: the products' FLOPs at the best rate measured here (a square
product).  No element-wise work at all: code that does its products through this BLAS cannot be
faster than this sum.  The generated C packs the weights once per call and runs its own tiles, so it
can be (docs/benchmarks.md).

    python bench/gemm_floor.py [--sizes S1,S2,S3] [--repeats N]

Median of N (default 5) for each thread count (1, and the machine's cores).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import SIZES  # noqa: E402 - bench/bench.py: the sizes of the issue

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112


def openblas():
    name = ctypes.util.find_library("openblas")
    if name is None:
        sys.exit("gemm_floor: no libopenblas here (apt-get install libopenblas-dev)")
    lib = ctypes.CDLL(name)
    lib.openblas_set_num_threads.argtypes = [ctypes.c_int]
    return lib


def gemm(lib, dtype):
    fn = lib.cblas_dgemm if dtype == np.float64 else lib.cblas_sgemm
    real = ctypes.c_double if dtype == np.float64 else ctypes.c_float
    fn.argtypes = [ctypes.c_int] * 6 + [real, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, real,
                                        ctypes.c_void_p, ctypes.c_int]

    def product(ta: bool, tb: bool, a, b, c):
        """c = op(a) @ op(b) (row-major, contiguous)."""
        m, k = (a.shape[1], a.shape[0]) if ta else a.shape
        n = b.shape[0] if tb else b.shape[1]
        fn(ROW_MAJOR, TRANS if ta else NO_TRANS, TRANS if tb else NO_TRANS, m, n, k, 1.0, a.ctypes.data,
           a.shape[1], b.ctypes.data, b.shape[1], 0.0, c.ctypes.data, c.shape[1])
    return product


def bptt_products(product, T, B, D, H, dtype):
    """() -> None running every product of one LSTM forward + backward, and their FLOPs."""
    rng = np.random.default_rng(0)
    arr = lambda *shape: rng.standard_normal(shape).astype(dtype)  # noqa: E731
    xs, W, U = arr(T * B, D), arr(4 * H, D), arr(4 * H, H)
    proj, h, ph, dl, bk = arr(T * B, 4 * H), arr(B, H), arr(B, 4 * H), arr(T * B, 4 * H), arr(B, H)
    hprev, dW, dU, dxs = arr(T * B, H), arr(4 * H, D), arr(4 * H, H), arr(T * B, D)

    def run():
        product(False, True, xs, W, proj)  # input projection, all steps
        for _ in range(T):
            product(False, True, h, U, ph)  # h_prev @ [U_f; ...]^T
        for t in range(T):
            product(False, False, dl[t * B:(t + 1) * B], U, bk)  # d_lin @ [U_f; ...]
        product(True, False, dl, xs, dW)  # weight gradients over all steps
        product(True, False, dl, hprev, dU)
        product(False, False, dl, W, dxs)  # d_xs
    flops = 2 * (T * B * 4 * H * D * 3 + 2 * T * B * 4 * H * H + T * B * 4 * H * H)
    return run, flops


def best_rate(product, dtype, n=1536) -> float:
    a, b, c = (np.ones((n, n), dtype=dtype) for _ in range(3))
    product(False, False, a, b, c)
    t = min(timed(lambda: product(False, False, a, b, c)) for _ in range(3))
    return 2 * n**3 / t


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="S1,S2", help="S3 too small: Python's ~1 us per call would dominate")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    lib = openblas()
    cores = os.cpu_count() or 1
    print("| size | dtype | threads | products, median ms | GFLOP | GFLOP/s | best GEMM GFLOP/s | GEMM limit ms |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes.split(","):
        T, B, D, H = SIZES[size]
        for dtype in (np.float64, np.float32):
            product = gemm(lib, dtype)
            run, flops = bptt_products(product, T, B, D, H, dtype)
            for threads in sorted({1, cores}):
                lib.openblas_set_num_threads(threads)
                run()
                ms = statistics.median(timed(run) for _ in range(args.repeats)) * 1e3
                rate = best_rate(product, dtype)
                print(f"| {size} | {np.dtype(dtype).name} | {threads} | {ms:.3f} | {flops / 1e9:.3f} | "
                      f"{flops / ms / 1e6:.1f} | {rate / 1e9:.1f} | {flops / rate * 1e3:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
