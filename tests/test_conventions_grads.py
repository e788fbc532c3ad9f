"""Gradients in a framework's layout (issue 18): ``grads_to_framework`` is the framework's own ``.grad``.

PyTorch's autograd where it is installed (nn.LSTM, nn.GRU); for Keras, ONNX and TensorFlow the
forwards their documentation prints (written out in NumPy in tests/test_conventions.py),
differentiated by central differences.  ``grads_from_framework`` reverses it.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import RTOL_FD, RTOL_TORCH_F64, rel_err
from hypothesis import given, settings
from hypothesis import strategies as st
from test_conventions import keras_gru, keras_lstm, onnx_gru, onnx_lstm, tf_basic_lstm

from lstm_symbolic.gradcheck import random_problem
from lstm_symbolic.interop.conventions import (
    GATE_ORDERS,
    ConventionError,
    from_params,
    grads_from_framework,
    grads_to_framework,
    to_params,
)
from lstm_symbolic.spec.builtins import load_cell

T, B, I, H = 5, 3, 4, 6
FD_EPS = 1e-6


# ---- PyTorch: nn.LSTM / nn.GRU autograd, both directions of a bidirectional module ---------------
@pytest.mark.parametrize("cell", ["lstm", "gru-reset-after"])
def test_grads_to_framework_is_torch_autograd(numpy_modules, rng, cell):
    torch = pytest.importorskip("torch")
    m = numpy_modules[cell]
    net = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(I, H, bidirectional=True, dtype=torch.float64)
    fwd, _, s0_f, _, _ = random_problem(m, T=T, B=B, input_size=I, hidden_size=H, seed=11)
    rev, xs, s0_r, _, _ = random_problem(m, T=T, B=B, input_size=I, hidden_size=H, seed=12)
    weights = {**from_params("pytorch", fwd, cell), **from_params("pytorch", rev, cell, reverse=True)}
    net.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    g_out = rng.standard_normal((T, B, 2 * H))

    states = tuple(torch.from_numpy(np.stack([s0_f[s], s0_r[s]])) for s in m.STATES)
    out, _ = net(torch.from_numpy(xs), states if len(states) == 2 else states[0])
    (out * torch.from_numpy(g_out)).sum().backward()
    torch_grads = {k: p.grad.numpy() for k, p in net.named_parameters()}

    ours = {}
    for params, reverse, x, g in ((fwd, False, xs, g_out[..., :H]), (rev, True, xs[::-1], g_out[::-1, :, H:])):
        _, _, cache = m.forward(params, np.ascontiguousarray(x), s0_r if reverse else s0_f)
        grads, _, _ = m.backward(params, cache, np.ascontiguousarray(g))
        ours.update(grads_to_framework("pytorch", grads, cell, reverse=reverse))
        back = grads_from_framework("pytorch", torch_grads, cell, reverse=reverse)
        assert all(rel_err(back[n], grads[n]) < RTOL_TORCH_F64 for n in grads)
    assert set(ours) == set(torch_grads)
    for key, want in torch_grads.items():
        assert rel_err(ours[key], want) < RTOL_TORCH_F64, key
    assert rel_err(ours["bias_hh_l0"], 0) > 0.1  # what from_params gave gradients before: zeros


# ---- Keras, ONNX, TensorFlow: the documented forwards, by central differences --------------------
def _forward(framework, cell, options):
    """The documented forward of (framework, cell): (weights, xs, state0) -> hs."""
    if framework == "keras":
        return (lambda w, xs, s: keras_lstm(w, xs, s["h"], s["c"])) if cell == "lstm" else \
            (lambda w, xs, s: keras_gru(w, xs, s["h"], reset_after=cell == "gru-reset-after"))
    if framework == "onnx":
        return (lambda w, xs, s: onnx_gru(w, xs, s["h"], cell == "gru-reset-after")) if cell.startswith("gru") else \
            (lambda w, xs, s: onnx_lstm(w, xs, s["h"], s["c"]))
    return lambda w, xs, s: tf_basic_lstm(w, xs, s["h"], s["c"], options.get("forget_bias", 1.0))


def _weights(rng, framework, cell):
    G = 3 if cell.startswith("gru") else 4
    shapes = {
        "keras": {"kernel": (I, G * H), "recurrent_kernel": (H, G * H),
                  "bias": (2, G * H) if cell == "gru-reset-after" else (G * H,)},
        "onnx": {"W": (1, G * H, I), "R": (1, G * H, H), "B": (1, 2 * G * H),
                 **({"P": (1, 3 * H)} if cell == "lstm-peephole" else {})},
        "tensorflow": {"kernel": (I + H, 4 * H), "bias": (4 * H,)},
    }[framework]
    return {k: rng.uniform(-0.8, 0.8, s) for k, s in shapes.items()}


DOCUMENTED = [(f, c, {}) for f, c in GATE_ORDERS if f != "pytorch"] + [("tensorflow", "lstm", {"forget_bias": 2.5})]


@pytest.mark.parametrize("framework, cell, options", DOCUMENTED, ids=lambda v: v if isinstance(v, str) else "")
def test_grads_to_framework_is_the_documented_forwards_gradient(numpy_modules, rng, framework, cell, options):
    m, forward = numpy_modules[cell], _forward(framework, cell, options)
    w = _weights(rng, framework, cell)
    _, xs, s0, g_hs, _ = random_problem(m, T=T, B=B, input_size=I, hidden_size=H, seed=13)
    params = to_params(framework, w, cell, **options)
    hs, _, cache = m.forward(params, xs, s0)
    assert rel_err(hs, forward(w, xs, s0)) < 1e-12
    got = grads_to_framework(framework, m.backward(params, cache, g_hs)[0], cell, **options)
    assert list(got) == list(w) and all(got[k].shape == w[k].shape for k in w)

    def loss(key, step):
        return float(np.sum(forward({**w, key: w[key] + step}, xs, s0) * g_hs))

    for key in w:  # one direction per array, so each array is checked on its own
        v = rng.standard_normal(w[key].shape)
        fd = (loss(key, FD_EPS * v) - loss(key, -FD_EPS * v)) / (2 * FD_EPS)
        assert abs(fd - float(np.sum(got[key] * v))) < RTOL_FD * abs(fd), key


# ---- the reverse, and the algebra, for every layout ------------------------------------------------
LAYOUTS = [(f, c, o) for f, c in GATE_ORDERS for o in ({}, {"forget_bias": 3.0} if f == "tensorflow" else {})]


def _param_shapes(numpy_modules, cell, hidden, inputs):
    extra = {f"{size}_size": hidden + 1 for size in load_cell(cell).sizes if size not in ("hidden", "input")}
    params = numpy_modules[cell].init_params(inputs, hidden, rng=np.random.default_rng(0), **extra)
    return {n: v.shape for n, v in params.items()}


@settings(max_examples=60, deadline=None)
@given(layout=st.sampled_from(LAYOUTS), hidden=st.integers(1, 4), inputs=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1))
def test_grads_from_framework_reverses_grads_to_framework(numpy_modules, layout, hidden, inputs, seed):
    framework, cell, options = layout
    rng = np.random.default_rng(seed)
    shapes = _param_shapes(numpy_modules, cell, hidden, inputs)
    grads = {n: rng.standard_normal(s) for n, s in shapes.items()}
    arrays = grads_to_framework(framework, grads, cell, **options)
    back = grads_from_framework(framework, arrays, cell, **options)
    assert list(back) == list(grads) and all(np.array_equal(back[n], grads[n]) for n in grads)

    # the adjoint of to_params: <grads_to_framework(g), dw> = <g, to_params(w + dw) - to_params(w)>
    w = {k: rng.standard_normal(v.shape) for k, v in arrays.items()}
    dw = {k: rng.standard_normal(v.shape) for k, v in arrays.items()}
    moved = to_params(framework, {k: w[k] + dw[k] for k in w}, cell, **options)
    base = to_params(framework, w, cell, **options)
    lhs = sum(float(np.sum(arrays[k] * dw[k])) for k in w)
    assert abs(lhs - sum(float(np.sum(grads[n] * (moved[n] - base[n]))) for n in grads)) < 1e-9 * (1 + abs(lhs))

    # any arrays (not a gradient: the two halves of a summed bias differ) sum back to the closest gradient
    residual = {k: dw[k] - v for k, v in grads_to_framework(framework, grads_from_framework(
        framework, dw, cell, **options), cell, **options).items()}
    other = grads_to_framework(framework, {n: rng.standard_normal(s) for n, s in shapes.items()}, cell, **options)
    assert abs(sum(float(np.sum(residual[k] * other[k])) for k in other)) < 1e-9


def test_summed_biases_each_get_the_gradient_of_the_sum(numpy_modules, rng):
    shapes = _param_shapes(numpy_modules, "gru-reset-after", H, I)
    grads = {n: rng.standard_normal(s) for n, s in shapes.items()}
    torch_layout = grads_to_framework("pytorch", grads, "gru-reset-after")
    assert np.array_equal(torch_layout["bias_ih_l0"], np.concatenate([grads["b_r"], grads["b_z"], grads["b_n"]]))
    assert np.array_equal(torch_layout["bias_hh_l0"], np.concatenate([grads["b_r"], grads["b_z"], grads["b_hn"]]))
    keras = grads_to_framework("keras", grads, "gru-reset-after")["bias"]
    assert np.array_equal(keras, np.stack([np.concatenate([grads[f"b_{g}"] for g in "zrn"]),
                                           np.concatenate([grads["b_z"], grads["b_r"], grads["b_hn"]])]))
    onnx = grads_to_framework("onnx", grads, "gru-reset-after")["B"][0]
    assert np.array_equal(onnx, keras.ravel())  # [Wb, Rb] in the same gate order


def test_the_layout_and_dtype_of_from_params(numpy_modules):
    params = numpy_modules["lstm"].init_params(I, H, rng=np.random.default_rng(1), dtype=np.float32)
    weights = from_params("pytorch", params, "lstm", layer=2)
    grads = grads_to_framework("pytorch", params, "lstm", layer=2)
    assert list(grads) == list(weights) == ["weight_ih_l2", "weight_hh_l2", "bias_ih_l2", "bias_hh_l2"]
    assert all(g.dtype == np.float32 and g.shape == weights[k].shape for k, g in grads.items())
    tf = grads_to_framework("tensorflow", params, "lstm")  # forget_bias is a constant: no trace in the gradient
    assert np.array_equal(tf["bias"], np.concatenate([params[f"b_{g}"] for g in "icfo"]))
    assert grads_from_framework("pytorch", grads, "lstm", layer=2)["b_f"].dtype == np.float32


@pytest.mark.parametrize("call, needle", [
    (lambda g: grads_to_framework("caffe", g, "lstm"), "unknown framework 'caffe'"),
    (lambda g: grads_from_framework("caffe", {}, "lstm"), "unknown framework 'caffe'"),
    (lambda g: grads_to_framework("pytorch", {k: v for k, v in g.items() if k != "b_o"}, "lstm"),
     "parameters missing: b_o"),
    (lambda g: grads_to_framework("keras", g, "lstm", layer=1), "unknown keras option 'layer'"),
    (lambda g: grads_from_framework("pytorch", grads_to_framework("pytorch", g, "lstm"), "lstm", layer=1),
     "missing 'weight_hh_l1'"),
])
def test_gradient_mistakes_raise_one_clear_error(numpy_modules, call, needle):
    g = numpy_modules["lstm"].init_params(I, H, rng=np.random.default_rng(2))
    with pytest.raises(ConventionError, match=needle):
        call(g)
