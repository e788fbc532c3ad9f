"""Shared fixtures: one seeded rng, named tolerances, the generated modules of the built-ins (NumPy, and the
C bindings, each compiled once per session when first used)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping

import numpy as np
import pytest

from lstm_symbolic import pipeline
from lstm_symbolic.gradcheck import load_module

RTOL_TORCH_F64 = 1e-10  # generated code against torch autograd, float64
RTOL_FD = 1e-6  # central differences, float64
CELLS = [name for name, _ in pipeline.cell_summaries()]
COMPILERS = [cc for cc in ("gcc", "clang") if shutil.which(cc)]
# How each path of the C bindings is built: "portable" (loops, no OpenMP, scalar tiles) or "blas" (a CBLAS where
# one links, OpenMP where the compiler has it, with one row per thread allowed: batches of 2+ run threaded, batch 1
# with hidden size 64 or 96 shares out the hidden units, and the packed products' tiles as the widest GNU C
# vectors of -march=native).  Both: CBLAS even for the tests' small products; threads even for their small
# batches, and at batch 1 for hidden sizes from 64 (32 units per thread).
_TEST_CFLAGS = "-DLSTM_CBLAS_MIN=0 -DLSTM_MIN_ROWS=1 -DLSTM_MIN_COLS=32"
C_PATHS = {
    "portable": {"LSTM_SYMBOLIC_BLAS": "none", "LSTM_SYMBOLIC_OPENMP": "none",
                 "LSTM_SYMBOLIC_CFLAGS": _TEST_CFLAGS + " -DLSTM_NO_VECTORS"},
    # the weight gradients in blocks of 8 steps x rows (not 256): several blocks even here; packed calls from
    # T x rows per thread = 32 on (not 64), so the test sizes run both plans
    "blas": {"LSTM_SYMBOLIC_BLAS": "auto", "LSTM_SYMBOLIC_OPENMP": "auto",
             "LSTM_SYMBOLIC_CFLAGS": _TEST_CFLAGS + " -DLSTM_KC=8 -DLSTM_PACK_MIN=32"},
}


@pytest.fixture
def rng():
    return np.random.default_rng(20261121)


@pytest.fixture(scope="session")
def numpy_modules(tmp_path_factory):
    """{cell name: the generated NumPy module, freshly emitted}."""
    out = tmp_path_factory.mktemp("numpy")
    modules = {}
    for name, _ in pipeline.cell_summaries():
        (path,) = pipeline.emit(pipeline.load_cell(name), "numpy", out / name)
        modules[name] = load_module(path)
    return modules


@pytest.fixture(scope="session")
def c_dirs(tmp_path_factory):
    """{cell name: the folder with its freshly emitted C files}."""
    out = tmp_path_factory.mktemp("c")
    for name in CELLS:
        pipeline.emit(pipeline.load_cell(name), "c", out / name)
    return {name: out / name for name in CELLS}


class CBindings(Mapping):
    """{(cell, path): the C binding} for every cell and path of C_PATHS, each built (into one cache folder of
    the session) and imported the first time it is asked for."""

    def __init__(self, dirs, cache):
        self._dirs, self._cache, self._built = dirs, cache, {}

    def __getitem__(self, key):
        if key not in self._built:
            cell, path = key
            env = {"LSTM_SYMBOLIC_CACHE": str(self._cache), **C_PATHS[path]}
            saved = {k: os.environ.get(k) for k in env}
            m = pipeline.naming.module_name(cell)
            try:
                os.environ.update(env)
                self._built[key] = load_module(self._dirs[cell] / f"{m}_c.py", f"_c_{m}_{path}")
            finally:
                for k, v in saved.items():
                    os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        return self._built[key]

    def __iter__(self):
        return iter([(cell, path) for path in C_PATHS for cell in self._dirs])

    def __len__(self):
        return len(C_PATHS) * len(self._dirs)


@pytest.fixture(scope="session")
def c_modules(c_dirs, tmp_path_factory):
    """The C bindings of the built-in cells (see CBindings)."""
    if not COMPILERS:
        pytest.skip("no C compiler (gcc or clang) on this machine")
    return CBindings(c_dirs, tmp_path_factory.mktemp("build-cache"))


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))
