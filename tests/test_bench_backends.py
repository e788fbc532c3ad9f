"""The baselines of bench/backends.py compute what the generated modules compute: the plain torch loop
and jax.grad of the plain lax.scan give the generated NumPy module's gradients (float64)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import RTOL_TORCH_F64, rel_err

from lstm_symbolic import pipeline
from lstm_symbolic.gradcheck import load_module

BENCH = Path(__file__).resolve().parent.parent / "bench"
SPECS = {"lstm": "lstm", "lstm-peephole": "lstm-peephole", "slstm": str(BENCH.parent / "examples" / "slstm.toml")}
T, B, I, H = 4, 3, 5, 6


@pytest.fixture(scope="module")
def plain_cells():
    sys.path.insert(0, str(BENCH))
    try:
        return load_module(BENCH / "plain_cells.py", "_bench_plain_cells")
    finally:
        sys.path.remove(str(BENCH))


def _reference(tmp_path, cell):
    """The generated NumPy module's gradients of sum(hs * d_hs) on a random problem."""
    (path,) = pipeline.emit(SPECS[cell], "numpy", tmp_path)
    m = load_module(path)
    rng = np.random.default_rng(5)
    params = m.init_params(I, H, rng=rng)
    xs, d_hs = rng.standard_normal((T, B, I)), rng.standard_normal((T, B, H))
    state0 = {s: 0.5 * rng.standard_normal((B, H)) for s in m.STATES}
    if cell == "slstm":
        state0["n"], state0["m"] = np.ones((B, H)), np.zeros((B, H))
    hs, _, cache = m.forward(params, xs, state0)
    grads, d_xs, d_state0 = m.backward(params, cache, d_hs)
    return params, xs, state0, d_hs, grads, d_xs, d_state0


@pytest.mark.parametrize("cell", list(SPECS))
def test_the_plain_torch_loop_gives_the_generated_gradients(plain_cells, tmp_path, cell):
    torch = pytest.importorskip("torch")
    params, xs, state0, d_hs, grads, d_xs, d_state0 = _reference(tmp_path, cell)
    module = plain_cells.torch_loop(cell, params)
    x = torch.from_numpy(xs).requires_grad_()
    states = tuple(torch.from_numpy(state0[s]).requires_grad_() for s in plain_cells.STATES[cell])
    hs, _ = module(x, states)
    hs.backward(torch.from_numpy(d_hs))
    assert rel_err(x.grad.numpy(), d_xs) < RTOL_TORCH_F64
    assert all(rel_err(s.grad.numpy(), d_state0[n]) < RTOL_TORCH_F64 for s, n in zip(states, state0, strict=True))
    want = plain_cells.stacked(cell, grads, np.concatenate)
    assert all(rel_err(module.w[n].grad.numpy(), want[n]) < RTOL_TORCH_F64 for n in want)


@pytest.mark.parametrize("cell", list(SPECS))
def test_the_plain_jax_scan_gives_the_generated_gradients(plain_cells, tmp_path, cell):
    jax = pytest.importorskip("jax")
    params, xs, state0, d_hs, grads, d_xs, d_state0 = _reference(tmp_path, cell)
    with jax.enable_x64(True):
        got_params, got_xs, got_state0 = plain_cells.jax_plain_grad(cell)(params, xs, state0, d_hs)
        assert rel_err(np.asarray(got_xs), d_xs) < RTOL_TORCH_F64
        assert all(rel_err(np.asarray(got_state0[s]), d_state0[s]) < RTOL_TORCH_F64 for s in state0)
        assert all(rel_err(np.asarray(got_params[n]), grads[n]) < RTOL_TORCH_F64 for n in grads)
