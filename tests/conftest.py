"""Shared fixtures: one seeded rng, named tolerances, the generated modules of the built-ins."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_symbolic import pipeline
from lstm_symbolic.gradcheck import load_module

RTOL_TORCH_F64 = 1e-10  # generated code against torch autograd, float64
RTOL_FD = 1e-6  # central differences, float64


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


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))
