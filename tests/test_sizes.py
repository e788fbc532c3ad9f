"""Sizes beyond hidden and input (issue 21, item 3) and the built-in lstm-proj, torch.nn.LSTM(proj_size=P):
the spec language, the exact oracle, the generated APIs (NumPy and C, keyword sizes), and nn.LSTM itself."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import RTOL_FD, RTOL_TORCH_F64, rel_err

from lstm_symbolic import pipeline
from lstm_symbolic.cli import main
from lstm_symbolic.core.cells import CellError
from lstm_symbolic.core.components import exact_mismatches
from lstm_symbolic.core.derive import derive
from lstm_symbolic.gradcheck import check_module
from lstm_symbolic.interop import conventions
from lstm_symbolic.spec.load import SpecError, parse_spec

PROJ = pipeline.load_cell("lstm-proj")

TINY = '''
name = "tiny-proj"
sizes = ["proj"]
states = ["h", "c"]
[state_sizes]
h = "proj"
[inputs]
x = "input"
[params]
W = ["hidden", "input"]
U = ["hidden", "proj"]
V = ["proj", "hidden"]
[equations]
c = "tanh(W @ x + U @ h_prev) + c_prev"
h = "V @ c"
'''


def test_a_spec_declares_sizes_and_states_of_them():
    cell = parse_spec(TINY)
    assert cell.sizes == ("hidden", "input", "proj")
    assert cell.state_shape("h") == ("proj",) and cell.state_shape("c") == ("hidden",)
    assert cell.shape("h_prev") == ("proj",) and cell.oracle_sizes() == {"hidden": 2, "input": 3, "proj": 2}
    assert exact_mismatches(derive(cell)) == []


@pytest.mark.parametrize("change, message", [
    (('sizes = ["proj"]', ""), "unknown size 'proj' in the shape of 'h'"),
    (('sizes = ["proj"]', 'sizes = ["proj", "proj"]'), "'proj' is given twice"),
    (('sizes = ["proj"]', 'sizes = ["hidden", "proj"]'), "'hidden' is built in"),
    (('sizes = ["proj"]', 'sizes = ["proj", "extra"]'), "size 'extra' is declared but no parameter has it"),
    (('h = "proj"', 'h = "hidden"'), "shape mismatch in U @ h_prev: U is hidden×proj, h_prev is hidden"),
    (('h = "proj"', 'h = "proj"\nz = "proj"'), "'z' in [state_sizes] is not a state"),
    (('h = "V @ c"', 'h = "c"'), "state 'h' must have the proj size, not hidden"),
])
def test_sizes_are_checked_where_they_are_declared(change, message):
    with pytest.raises(SpecError) as exc:
        parse_spec(TINY.replace(*change))
    assert message in str(exc.value)


@pytest.mark.parametrize("sizes", [None, {"hidden": 3, "input": 2, "proj": 2}, {"hidden": 2, "input": 2, "proj": 3}])
def test_lstm_proj_is_exact_at_small_sizes(sizes):
    assert exact_mismatches(derive(PROJ), sizes) == []


def test_lstm_proj_is_listed_with_its_reference(capsys):
    assert main(["cells"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("lstm-proj "))
    assert "Sak et al. 2014" in line and "proj_size" in line


def test_the_total_jacobian_goes_through_the_projection(capsys):
    assert main(["jacobian", "lstm-proj", "--total"]) == 0
    assert "@ U_f @ W_hr @ diag(o_prev*(1 - tanh(c_prev)**2))" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["latex", "markdown"])
def test_the_derivation_renders(capsys, fmt):
    assert main(["derive", "lstm-proj", "--steps", "--format", fmt]) == 0
    assert "W_{hr}" in capsys.readouterr().out


def test_numpy_takes_the_size_as_a_keyword(numpy_modules):
    m = numpy_modules["lstm-proj"]
    assert m.PARAMS["W_hr"] == ("proj", "hidden") and m.PARAMS["U_f"] == ("hidden", "proj")
    assert m.STATES == ("h", "c") and m.STATE_SIZES == {"h": "proj"}
    params = m.init_params(4, 6, proj_size=3, rng=np.random.default_rng(0))
    assert params["W_hr"].shape == (3, 6) and params["U_o"].shape == (6, 3) and params["b_f"].shape == (6,)
    with pytest.raises(TypeError):
        m.init_params(4, 6)


def test_numpy_refuses_a_state_of_the_wrong_size(numpy_modules):
    m = numpy_modules["lstm-proj"]
    params = m.init_params(4, 6, proj_size=3, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"state0\['h'\] has shape \(2, 6\); expected \(B, proj\) = \(2, 3\)"):
        m.forward(params, np.zeros((5, 2, 4)), {"h": np.zeros((2, 6))})


def _torch_check(torch, m, T, B, I, H, P, seed):
    """Outputs, last states and every gradient of ``m`` against nn.LSTM(proj_size=P), float64."""
    torch.manual_seed(seed)
    net = torch.nn.LSTM(I, H, proj_size=P, dtype=torch.float64)
    params = conventions.to_params("pytorch", {k: v.detach().numpy() for k, v in net.state_dict().items()},
                                   "lstm-proj")
    rng = np.random.default_rng(seed)
    xs, h0, c0 = rng.standard_normal((T, B, I)), rng.standard_normal((B, P)), rng.standard_normal((B, H))
    g_hs, g_h, g_c = rng.standard_normal((T, B, P)), rng.standard_normal((B, P)), rng.standard_normal((B, H))
    hs, state_T, cache = m.forward(params, xs, {"h": h0, "c": c0})
    grads, d_xs, d_state0 = m.backward(params, cache, g_hs, {"h": g_h, "c": g_c})
    x_t, h_t, c_t = (torch.from_numpy(a).requires_grad_() for a in (xs, h0[None], c0[None]))
    out, (h_n, c_n) = net(x_t, (h_t, c_t))
    loss = sum((a * torch.from_numpy(g)).sum() for a, g in ((out, g_hs), (h_n[0], g_h), (c_n[0], g_c)))
    loss.backward()
    assert rel_err(hs, out.detach().numpy()) < RTOL_TORCH_F64
    assert rel_err(state_T["h"], h_n[0].detach().numpy()) < RTOL_TORCH_F64
    assert rel_err(state_T["c"], c_n[0].detach().numpy()) < RTOL_TORCH_F64
    want = conventions.to_params("pytorch", {k: v.grad.numpy() for k, v in net.named_parameters()}, "lstm-proj")
    for name, g in grads.items():  # (a bias's gradient: that of bias_ih alone, not of the sum of both)
        assert rel_err(g, want[name] / (2 if name.startswith("b_") else 1)) < RTOL_TORCH_F64, name
    assert rel_err(d_xs, x_t.grad.numpy()) < RTOL_TORCH_F64
    assert rel_err(d_state0["h"], h_t.grad[0].numpy()) < RTOL_TORCH_F64
    assert rel_err(d_state0["c"], c_t.grad[0].numpy()) < RTOL_TORCH_F64


def test_numpy_matches_torch_lstm_with_projection(numpy_modules):
    torch = pytest.importorskip("torch")
    _torch_check(torch, numpy_modules["lstm-proj"], T=6, B=4, I=5, H=7, P=3, seed=1)


@pytest.mark.parametrize("path", ["portable", "blas"])
@pytest.mark.parametrize("T, B, I, H, P", [(6, 4, 5, 7, 3), (3, 1, 4, 64, 40), (3, 1, 4, 64, 32), (40, 3, 5, 9, 6)])
def test_c_matches_torch_lstm_with_projection(c_modules, path, T, B, I, H, P):
    """Row threads, hidden units shared out (batch 1, hidden 64, proj 32; not with proj 40), packed products."""
    torch = pytest.importorskip("torch")
    _torch_check(torch, c_modules["lstm-proj", path], T, B, I, H, P, seed=2)


@pytest.mark.parametrize("path", ["portable", "blas"])
def test_c_gradients_against_central_differences(c_modules, path):
    m = c_modules["lstm-proj", path]
    assert m.init_params(4, 6, proj_size=2)["W_hr"].shape == (2, 6)
    errors = check_module(m, T=5, B=3, input_size=4, hidden_size=5, proj_size=2, seed=5)
    assert max(errors.values()) < RTOL_FD, errors


def test_c_api_takes_the_size_as_an_argument(c_dirs):
    header = (c_dirs["lstm-proj"] / "lstm_proj.h").read_text()
    assert "void lstm_proj_forward_f64(int T, int B, int D, int H, int n_proj_, " in header
    assert "size_t lstm_proj_cache_size(int T, int B, int D, int H, int n_proj_);" in header
    assert "n_proj_ = the proj size" in header and "this order: h (B, n_proj_), c (B, H)." in header


def test_conventions_round_trip_weight_hr():
    rng = np.random.default_rng(0)
    weights = {"weight_ih_l0": rng.standard_normal((8, 3)), "weight_hh_l0": rng.standard_normal((8, 1)),
               "bias_ih_l0": rng.standard_normal(8), "bias_hh_l0": np.zeros(8),
               "weight_hr_l0": rng.standard_normal((1, 2))}
    params = conventions.to_params("pytorch", weights, "lstm-proj")
    assert params["W_hr"].shape == (1, 2) and params["U_i"].shape == (2, 1)
    back = conventions.from_params("pytorch", params, "lstm-proj")
    assert set(back) == set(weights) and all(np.array_equal(back[k], weights[k]) for k in weights)
    with pytest.raises(conventions.ConventionError, match="weight_hr_l0"):
        conventions.to_params("pytorch", {k: v for k, v in weights.items() if k != "weight_hr_l0"}, "lstm-proj")


LN_PROJ = TINY.replace('V = ["proj", "hidden"]', 'V = ["proj", "hidden"]\ng = "hidden"').replace(
    'c = "tanh(W @ x + U @ h_prev) + c_prev"',
    'a = "W @ x + U @ h_prev"\nmu = "mean(a)"\ne = "a - mu"\nq = "e**2"\nvar = "mean(q)"\n'
    'c = "tanh(g*e/sqrt(var + 1/100000)) + c_prev"')


def test_a_cell_with_sizes_takes_reductions_across_its_hidden_units(tmp_path):
    from lstm_symbolic.gradcheck import load_module  # noqa: PLC0415

    cell = parse_spec(LN_PROJ)
    assert exact_mismatches(derive(cell)) == []
    (path,) = pipeline.emit(cell, "numpy", tmp_path)
    errors = check_module(load_module(path), proj_size=3)
    assert max(errors.values()) < RTOL_FD, errors


def test_a_reduction_meets_hidden_values_only(tmp_path):
    with pytest.raises(SpecError, match="a reduction runs across the hidden units only"):
        parse_spec(LN_PROJ.replace('mu = "mean(a)"', 'mu = "mean(h_prev)"'))
    with pytest.raises(CellError, match="h mixes a reduction across the units with values of the size proj"):
        pipeline.emit(parse_spec(LN_PROJ.replace('h = "V @ c"', 'm = "V @ c"\nh = "m * var"')), "numpy", tmp_path)


BIASED = TINY.replace('V = ["proj", "hidden"]', 'V = ["proj", "hidden"]\nb_v = "proj"').replace(
    'h = "V @ c"', 'h = "tanh(V @ c + b_v)"')


def test_a_vector_parameter_of_a_declared_size(tmp_path):
    """A bias of the proj size (``h = tanh(V @ c + b_v)``): NumPy, torch and JAX take it (central differences,
    torch's gradcheck, JAX autodiff of the module's own forward); the C emitter says in one line it does not."""
    from lstm_symbolic.gradcheck import load_module  # noqa: PLC0415

    cell = parse_spec(BIASED)
    assert exact_mismatches(derive(cell)) == []
    (path,) = pipeline.emit(cell, "numpy", tmp_path / "numpy")
    errors = check_module(load_module(path), proj_size=3)
    assert max(errors.values()) < RTOL_FD, errors
    with pytest.raises(Exception, match="parameter 'b_v' has the proj size") as exc:
        pipeline.emit(cell, "c", tmp_path / "c")
    assert "\n" not in str(exc.value)
    torch = pytest.importorskip("torch")
    (path,) = pipeline.emit(cell, "torch", tmp_path / "torch")
    m = load_module(path)
    layer = getattr(m, m.MODULE)(2, 4, proj_size=3, dtype=torch.float64)
    xs = torch.randn(5, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: layer(x)[0], (xs,), eps=1e-6, atol=1e-8)
    assert layer.b_v_l0.grad is None and layer(xs)[0].sum().backward() is None and layer.b_v_l0.grad.shape == (3,)
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    (path,) = pipeline.emit(cell, "jax", tmp_path / "jax")
    mj, mn = load_module(path), load_module(tmp_path / "numpy" / "tiny_proj.py")
    params = mj.init_params(jax.random.PRNGKey(0), 2, 4, proj_size=3, dtype=jax.numpy.float64)
    xs, g = np.random.default_rng(0).normal(size=(5, 2, 2)), np.random.default_rng(1).normal(size=(5, 2, 3))
    grads = jax.grad(lambda p: (mj.forward(p, xs)[0] * g).sum())(params)
    numpy_params = {k: np.asarray(v) for k, v in params.items()}
    _, last, cache = mn.forward(numpy_params, xs)
    expected, _, _ = mn.backward(numpy_params, cache, g, {s: np.zeros_like(v) for s, v in last.items()})
    assert max(rel_err(grads[k], expected[k]) for k in expected) < 1e-10
