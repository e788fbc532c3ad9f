"""Reductions across the units (``sum(v)``, ``mean(v)``) and the built-in ``lstm-layernorm``: the derivation
against the component-level oracle, the generated NumPy and C against central differences and against a
PyTorch autograd implementation written here (float64, 1e-10), the plan's passes, the printers."""

from __future__ import annotations

import pytest
import sympy as sp
from conftest import RTOL_FD, RTOL_TORCH_F64, rel_err
from oracles import memoised_mismatches

from lstm_symbolic import pipeline
from lstm_symbolic.codegen.kernel import build_kernel
from lstm_symbolic.codegen.plan import Pass, build_plan
from lstm_symbolic.core.cells import CellError
from lstm_symbolic.core.components import exact_mismatches
from lstm_symbolic.core.derive import derive
from lstm_symbolic.core.functions import Units, unit_mean, unit_sum
from lstm_symbolic.gradcheck import check_module, random_problem
from lstm_symbolic.printing.c import kernel_code
from lstm_symbolic.printing.latex import latex_of
from lstm_symbolic.printing.numpy import numpy_code
from lstm_symbolic.printing.text import text
from lstm_symbolic.spec.load import SpecError, load_spec

# A layer-normalised tanh RNN: small enough for sympy.diff of the expanded step at hidden 2 and 3.
LN_RNN = '''
name = "ln-rnn"
description = "a layer-normalised tanh RNN"
states = ["h"]
[inputs]
x = "input"
[params]
W = ["hidden", "input"]
g = "hidden"
b = "hidden"
[equations]
a = "W @ x + h_prev"
mu = "mean(a)"
e = "a - mu"
q = "e**2"
var = "mean(q)"
sd = "sqrt(var + 1/100000)"
eg = "e*g"
s = "sum(eg)"
h = "tanh(g*e/sd + b + s)"
'''
LN = "lstm-layernorm"
GATES = ("f", "i", "c", "o")


@pytest.fixture(scope="module")
def ln_rnn(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "ln-rnn.toml"
    path.write_text(LN_RNN)
    return load_spec(path)


@pytest.mark.parametrize("sizes", [{"hidden": 2, "input": 2}, {"hidden": 3, "input": 1}])
def test_a_reduction_cell_equals_sympy_diff_of_the_expanded_step(ln_rnn, sizes):
    assert exact_mismatches(derive(ln_rnn), sizes) == []


def test_the_adjoint_of_a_mean_spreads_back_divided_and_a_broadcast_gathers(ln_rnn):
    d = derive(ln_rnn)
    d_mu, d_e, d_q, d_var, d_a = sp.symbols("d_mu d_e d_q d_var d_a")
    assert d.adjoint_of("mu").rhs == unit_sum(-d_e)
    assert d.adjoint_of("q").rhs == d_var / Units()
    assert d.adjoint_of("a").rhs == d_e + d_mu / Units()
    assert [s.kind for s in d.adjoint_of("mu").steps] == ["gather"]


def test_the_exact_oracle_catches_a_wrong_spread(ln_rnn):
    from lstm_symbolic.core.derive import Adjoint, Derivation  # noqa: PLC0415

    d = derive(ln_rnn)
    wrong = tuple(Adjoint(a.of, a.name, a.rhs.xreplace({Units(): sp.Integer(1)}), a.steps, a.seed)
                  if a.name.name == "d_a" else a for a in d.adjoints)
    broken = Derivation(d.cell, d.seeds, wrong, d.param_grads, d.linears)
    assert "x" in exact_mismatches(broken, {"hidden": 2, "input": 1})


# -- the component-level oracle of lstm-layernorm: sympy.diff of its expanded step is exponential in its depth
# (each unit reads every unit through the means), so the expanded loss is differentiated with each shared
# sub-expression once (oracles.memoised_mismatches), at hidden 2 and 3.

@pytest.mark.parametrize("sizes", [{"hidden": 2, "input": 2}, {"hidden": 3, "input": 1}])
def test_lstm_layernorm_agrees_with_the_component_level_oracle(sizes):
    assert memoised_mismatches(derive(pipeline.load_cell(LN)), sizes) == []


def test_the_memoised_oracle_catches_a_wrong_spread():
    from lstm_symbolic.core.derive import Adjoint, Derivation  # noqa: PLC0415

    d = derive(pipeline.load_cell(LN))
    wrong = tuple(Adjoint(a.of, a.name, a.rhs.xreplace({Units(): sp.Integer(1)}), a.steps, a.seed)
                  if a.name.name == "d_c" else a for a in d.adjoints)
    assert d.adjoint_of("c").rhs.has(Units())  # d_c += d_mc / H
    broken = Derivation(d.cell, d.seeds, wrong, d.param_grads, d.linears)
    assert "c_prev" in memoised_mismatches(broken, {"hidden": 2, "input": 1})


# -- the generated code ----------------------------------------------------------------------------------

def _torch_lstm_layernorm(torch, params, xs, state0):
    """Ba et al.'s layer-normalised LSTM in torch (float64): ``layer_norm`` over the four gates' 4H pre-activations
    of W x and of U h, and over c_t; eps 1e-5."""
    f = torch.nn.functional
    p = {k: torch.from_numpy(v).requires_grad_() for k, v in params.items()}
    cat = lambda k: torch.cat([p[f"{k}_{g}"] for g in GATES])  # noqa: E731
    x_t = torch.from_numpy(xs).requires_grad_()
    h0, c0 = (torch.from_numpy(state0[s]).requires_grad_() for s in ("h", "c"))
    h, c, hs, H = h0, c0, [], h0.shape[-1]
    for x in x_t:
        z = (f.layer_norm(x @ cat("W").T, (4 * H,), cat("g_a"), cat("b_a"), 1e-5)
             + f.layer_norm(h @ cat("U").T, (4 * H,), cat("g_r"), cat("b_r"), 1e-5))
        zf, zi, zc, zo = z.split(H, dim=-1)
        c = torch.sigmoid(zf) * c + torch.sigmoid(zi) * torch.tanh(zc)
        h = torch.sigmoid(zo) * torch.tanh(f.layer_norm(c, (H,), p["g_c"], p["b_c"], 1e-5))
        hs.append(h)
    return p, x_t, (h0, c0), torch.stack(hs), (h, c)


@pytest.mark.parametrize("lang", ["numpy", "c"])
def test_lstm_layernorm_matches_torch_autograd(numpy_modules, c_modules, lang):
    torch = pytest.importorskip("torch")
    m = numpy_modules[LN] if lang == "numpy" else c_modules[LN, "blas"]
    params, xs, state0, g_hs, g_T = random_problem(m, T=6, B=3, input_size=4, hidden_size=5, seed=7)
    params = {k: v + (1.0 if k.startswith("g_") else 0.0) for k, v in params.items()}  # gains near 1
    hs, state_T, cache = m.forward(params, xs, state0)
    grads, d_xs, d_state0 = m.backward(params, cache, g_hs, g_T)
    p, x_t, (h0, c0), out, (h_n, c_n) = _torch_lstm_layernorm(torch, params, xs, state0)
    loss = ((out * torch.from_numpy(g_hs)).sum() + (h_n * torch.from_numpy(g_T["h"])).sum()
            + (c_n * torch.from_numpy(g_T["c"])).sum())
    loss.backward()
    assert rel_err(hs, out.detach().numpy()) < RTOL_TORCH_F64
    assert rel_err(state_T["c"], c_n.detach().numpy()) < RTOL_TORCH_F64
    for k in params:
        assert rel_err(grads[k], p[k].grad.numpy()) < RTOL_TORCH_F64, k
    assert rel_err(d_xs, x_t.grad.numpy()) < RTOL_TORCH_F64
    assert rel_err(d_state0["h"], h0.grad.numpy()) < RTOL_TORCH_F64
    assert rel_err(d_state0["c"], c0.grad.numpy()) < RTOL_TORCH_F64


@pytest.mark.parametrize("lang", ["numpy", "c"])
def test_lstm_layernorm_passes_central_differences(numpy_modules, c_modules, lang):
    m = numpy_modules[LN] if lang == "numpy" else c_modules[LN, "portable"]
    errors = check_module(m, T=4, B=2, input_size=3, hidden_size=4)
    assert max(errors.values()) < RTOL_FD, errors


def test_a_spec_cell_with_reductions_passes_central_differences(ln_rnn, tmp_path):
    from lstm_symbolic.gradcheck import load_module  # noqa: PLC0415

    (path,) = pipeline.emit(ln_rnn, "numpy", tmp_path)
    errors = check_module(load_module(path))
    assert max(errors.values()) < RTOL_FD, errors


# -- the plan -------------------------------------------------------------------------------------------

def test_each_reduction_ends_a_pass_and_later_passes_read_its_row(ln_rnn):
    plan = build_plan(build_kernel(derive(ln_rnn)))
    passes = [op for op in plan.forward if isinstance(op, Pass)]
    reduced = [[slot.name for slot, _, _ in p.reductions] for p in passes]
    assert reduced[:3] == [["mu"], ["var"], ["s"]]  # one pass per reduction
    assert ("mu", "row") in {(s.name, slot.kind) for p in passes[1:] for s, slot in p.loads}
    assert all(not any(a.rhs.has(unit_mean, unit_sum) for a in p.assigns) for p in passes)
    rows = {(b.name, b.phase) for b in plan.workspace if b.kind == "row"}
    assert {("mu", "forward"), ("var", "forward"), ("s", "forward")} <= rows
    assert any(phase == "backward" for _, phase in rows)  # d_mu, d_var, ... summed in the backward passes


def test_a_scalar_the_backward_pass_reads_is_cached():
    plan = build_plan(build_kernel(derive(pipeline.load_cell(LN))))
    assert {"sc", "sa", "sr"} <= {a.name for a in plan.cache}


# -- the spec language and the printers -----------------------------------------------------------------

def _spec(tmp_path, equations: str):
    path = tmp_path / "c.toml"
    path.write_text(LN_RNN.split("[equations]")[0] + "[equations]\n" + equations)
    return load_spec(path)


def test_a_reduction_inside_a_formula_is_refused_with_a_fix(tmp_path):
    with pytest.raises(SpecError, match="an equation of its own"):
        _spec(tmp_path, 'a = "W @ x + h_prev"\nh = "tanh(g*(a - mean(a)) + b)"\n')
    with pytest.raises(SpecError, match="an equation of its own"):
        _spec(tmp_path, 'a = "W @ x + h_prev"\nm = "mean(a*g)"\nh = "tanh(a - m + b)"\n')


def test_a_state_cannot_be_a_scalar(tmp_path):
    with pytest.raises((SpecError, CellError), match="hidden"):
        _spec(tmp_path, 'a = "W @ x + h_prev + g + b"\nh = "mean(a)"\n')


def test_printers_write_reductions_as_row_reductions():
    v, d = sp.symbols("v d_y")
    assert text(unit_mean(v)) == "mean(v)"
    assert text(unit_sum(d * v) / Units()) == "sum(d_y*v)/H"
    assert numpy_code(unit_mean(v)) == "np.mean(v, axis=-1, keepdims=True)"
    assert numpy_code(unit_sum(2 * v)) == "np.sum(2*v, axis=-1, keepdims=True)"
    assert latex_of(unit_mean(v)) == r"\operatorname{mean}\left(v_{t}\right)"
    assert kernel_code(d / Units()) == "d_y/((LSYM_K_REAL)H)"
    with pytest.raises(TypeError, match="reduction"):
        kernel_code(unit_sum(v))


# -- the step Jacobian through a reduction (its values: tests/test_flow.py, against central differences) ---

def test_a_reduction_is_a_factor_of_the_jacobian_and_two_fold_into_one(ln_rnn):
    from lstm_symbolic.core.jacobian import Diag, Ones, Term, jacobian  # noqa: PLC0415

    e, g = sp.symbols("e g")
    mean, total = Ones(mean=True), Ones(mean=False)
    assert Term((Diag(2 * e), mean)).then(total) == Term((Diag(2 * unit_sum(e)), mean))  # 1 1ᵀ diag(2e) M
    assert Term((mean,)).then(mean) == Term((mean,)) and Term((total,)).then(total) == Term((Diag(Units()), total))
    terms = jacobian(ln_rnn).terms
    assert Term((Diag(1 - sp.Symbol("h") ** 2), total, Diag(g))) in terms  # through s = sum(e*g)
    assert any(f == mean for t in terms for f in t.factors)


def test_jacobian_prints_the_reduction_factor(capsys):
    from lstm_symbolic import cli  # noqa: PLC0415

    assert cli.main(["jacobian", LN, "--total"]) == 0
    out = capsys.readouterr().out
    assert "dc/dc_prev = diag(f)\n" in out and " @ (ones(H, H)/H) @ U_f @ " in out and "not printed" not in out
    assert cli.main(["jacobian", LN, "--total", "--format", "latex"]) == 0
    tex = capsys.readouterr().out
    assert r"\frac{1}{H}\mathbf{1}\mathbf{1}^{\top} U_f" in tex and r"\sum_{k=1}^{" in tex
    assert cli.main(["derive", LN, "--format", "markdown"]) == 0
    assert r"$\mathbf{1}$ is the vector of $H$ ones" in capsys.readouterr().out
