"""Properties that must hold everywhere, for every built-in cell's generated NumPy module."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import rel_err
from hypothesis import given, settings
from hypothesis import strategies as st

from lstm_symbolic import pipeline
from lstm_symbolic.gradcheck import random_problem

CELLS = [name for name, _ in pipeline.cell_summaries()]
sizes = st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4))


@pytest.mark.parametrize("name", CELLS)
@settings(max_examples=12, deadline=None)
@given(shape=sizes, seed=st.integers(0, 2**31 - 1), a=st.floats(-3, 3), b=st.floats(-3, 3))
def test_backward_is_linear_in_the_incoming_gradients(numpy_modules, name, shape, seed, a, b):
    """VJP linearity: backward(a g1 + b g2) = a backward(g1) + b backward(g2)."""
    m = numpy_modules[name]
    T, B, I, H = shape
    params, xs, s0, g1, gT1 = random_problem(m, T=T, B=B, input_size=I, hidden_size=H, seed=seed)
    _, _, _, g2, gT2 = random_problem(m, T=T, B=B, input_size=I, hidden_size=H, seed=seed + 1)
    _, _, cache = m.forward(params, xs, s0)
    mix = {s: a * gT1[s] + b * gT2[s] for s in m.STATES}
    grads, d_xs, d_s0 = m.backward(params, cache, a * g1 + b * g2, mix)
    r1 = m.backward(params, cache, g1, gT1)
    r2 = m.backward(params, cache, g2, gT2)
    scale = max(abs(a), abs(b), 1e-3)
    pairs = [(grads[k], r1[0][k], r2[0][k]) for k in m.PARAMS] + [(d_xs, r1[1], r2[1])]
    pairs += [(d_s0[s], r1[2][s], r2[2][s]) for s in m.STATES]
    for got, one, two in pairs:  # equal up to rounding: no relative slack beside it (rtol=0)
        assert np.allclose(got, a * one + b * two, rtol=0, atol=1e-12 * scale * (1 + np.abs(got).max()))


@pytest.mark.parametrize("name", CELLS)
@settings(max_examples=8, deadline=None)
@given(shape=sizes, seed=st.integers(0, 2**31 - 1))
def test_dot_product_identity_along_a_random_direction(numpy_modules, name, shape, seed):
    """⟨∇L, v⟩ equals the central difference of L along v (all parameters, xs, initial state)."""
    m = numpy_modules[name]
    T, B, I, H = shape
    params, xs, s0, g, gT = random_problem(m, T=T, B=B, input_size=I, hidden_size=H, seed=seed)
    rng = np.random.default_rng(seed)
    v_p = {k: rng.standard_normal(p.shape) for k, p in params.items()}
    v_x, v_s = rng.standard_normal(xs.shape), {s: rng.standard_normal(s0[s].shape) for s in m.STATES}

    def loss(eps):
        p = {k: params[k] + eps * v_p[k] for k in params}
        hs, sT, _ = m.forward(p, xs + eps * v_x, {s: s0[s] + eps * v_s[s] for s in m.STATES})
        return (g * hs).sum() + sum((gT[s] * sT[s]).sum() for s in m.STATES)

    _, _, cache = m.forward(params, xs, s0)
    grads, d_xs, d_s0 = m.backward(params, cache, g, gT)
    analytic = sum((grads[k] * v_p[k]).sum() for k in params) + (d_xs * v_x).sum() \
        + sum((d_s0[s] * v_s[s]).sum() for s in m.STATES)
    eps = 1e-6
    fd = (loss(eps) - loss(-eps)) / (2 * eps)
    assert rel_err(analytic, fd) < 1e-6 or abs(analytic - fd) < 1e-8
