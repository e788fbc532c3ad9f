"""The derivation itself, checked exactly against sympy.diff on the component level."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from oracles import memoised_mismatches

from lstm_symbolic import pipeline
from lstm_symbolic.core.components import evaluate, exact_mismatches, forward_env
from lstm_symbolic.core.derive import Adjoint, Derivation, derive
from lstm_symbolic.core.functions import tanh
from lstm_symbolic.core.jacobian import Diag, jacobian

CELLS = [name for name, _ in pipeline.cell_summaries()]


@pytest.mark.parametrize("name", CELLS)
def test_every_gradient_equals_sympy_diff_of_the_expanded_step(name):
    """A cell with reductions across the units (lstm-layernorm: every unit reads every unit through the means)
    expands to a step whose tree is exponential in its depth: there SymPy's derivative of each node is applied
    once per shared sub-expression, in 60 digits (``oracles.memoised_mismatches``)."""
    derivation = derive(pipeline.load_cell(name))
    oracle = memoised_mismatches if derivation.cell.scalars else exact_mismatches
    assert oracle(derivation) == []


def test_the_exact_oracle_catches_a_wrong_local_derivative():
    d = derive(pipeline.load_cell("lstm"))
    wrong = tuple(
        Adjoint(a.of, a.name, a.rhs.xreplace({sp.Symbol("f"): sp.Symbol("i")}) if a.name.name == "d_z_f"
                else a.rhs, a.steps, a.seed)
        for a in d.adjoints
    )
    broken = Derivation(d.cell, d.seeds, wrong, d.param_grads, d.linears)
    assert set(exact_mismatches(broken)) == {"W_f", "U_f", "b_f", "x", "h_prev"}


def test_derivatives_are_written_in_stored_forward_values():
    d = derive(pipeline.load_cell("lstm"))
    f, c_tilde, d_f, d_z_c, d_c_tilde = sp.symbols("f c_tilde d_f d_z_c d_c_tilde")
    assert d.adjoint_of("z_f").rhs == d_f * f * (1 - f)
    assert d.adjoint_of("z_c").rhs == d_c_tilde * (1 - c_tilde**2)
    assert not any(a.rhs.has(sp.Function("sigmoid")) for a in d.adjoints)


def test_every_step_is_recorded_with_its_local_derivative():
    d = derive(pipeline.load_cell("lstm"))
    steps = d.adjoint_of("o").steps
    assert len(steps) == 1
    assert steps[0].via == sp.Symbol("h") and steps[0].local == tanh(sp.Symbol("c"))
    kinds = {s.kind for s in d.adjoint_of("h_prev").steps}
    assert kinds == {"matvec"}


def _numeric_jacobian(cell, total, rng, n=3):
    """(analytic, finite-difference) dc/dc_prev at random values, hidden = input = n."""
    values = {q.symbol: sp.Matrix(rng.uniform(-1, 1, (n, n if len(q.shape) == 2 else 1)))
              for q in cell.quantities if q.kind in ("input", "param")}
    o_prev = sp.Matrix(rng.uniform(0.1, 0.9, (n, 1)))
    c_prev = sp.Matrix(rng.uniform(-1, 1, (n, 1)))

    def step(c0):
        env = dict(values)
        env[sp.Symbol("c_prev")] = c0
        env[sp.Symbol("h_prev")] = o_prev.multiply_elementwise(c0.applyfunc(sp.tanh))
        return forward_env(cell, env)

    env = step(c_prev)
    env[sp.Symbol("o_prev")] = o_prev
    jac = jacobian(cell, total)
    analytic = sp.zeros(n, n)
    for term in jac.terms:
        m = sp.eye(n)
        for factor in term.factors:
            m = m * (sp.diag(*evaluate(factor.expr, env)) if isinstance(factor, Diag) else env[factor])
        analytic += m
    eps = 1e-6
    fd = sp.zeros(n, n)
    for k in range(n):
        e = sp.zeros(n, 1)
        e[k] = eps
        fd[:, k] = (step(c_prev + e)[sp.Symbol("c")] - step(c_prev - e)[sp.Symbol("c")]) / (2 * eps)
    if not total:  # partial: h_prev held fixed
        for k in range(n):
            e = sp.zeros(n, 1)
            e[k] = eps
            plus, minus = dict(values), dict(values)
            h0 = env[sp.Symbol("h_prev")]
            plus.update({sp.Symbol("c_prev"): c_prev + e, sp.Symbol("h_prev"): h0})
            minus.update({sp.Symbol("c_prev"): c_prev - e, sp.Symbol("h_prev"): h0})
            fd[:, k] = (forward_env(cell, plus)[sp.Symbol("c")] - forward_env(cell, minus)[sp.Symbol("c")]) / (2 * eps)
    to_np = lambda m: np.array(m.evalf(), dtype=float)  # noqa: E731
    return to_np(analytic), to_np(fd)


@pytest.mark.parametrize("total", [False, True])
def test_lstm_jacobian_against_finite_differences(total, rng):
    analytic, fd = _numeric_jacobian(pipeline.load_cell("lstm"), total, rng)
    assert np.allclose(analytic, fd, rtol=1e-6, atol=1e-8)
    if total:  # the total really differs from the partial: the p + q + r + s terms matter
        partial, _ = _numeric_jacobian(pipeline.load_cell("lstm"), False, np.random.default_rng(20261121))
        assert not np.allclose(analytic, partial, rtol=0, atol=1e-3)


def test_lstm_partial_jacobian_is_diag_f_and_total_has_one_term_per_gate_reading_h():
    cell = pipeline.load_cell("lstm")
    assert jacobian(cell, False).diagonal == sp.Symbol("f")
    total = jacobian(cell, True)
    weights = [t.factors[1] for t in total.terms if len(t.factors) == 3]
    assert weights == list(sp.symbols("U_f U_i U_c"))


def test_a_product_of_an_expression_is_refused_with_a_cell_error():
    from lstm_symbolic.core.cells import CellError, make_cell
    from lstm_symbolic.core.functions import MatVec

    x, h_prev, r, U = sp.symbols("x h_prev r U")
    with pytest.raises(CellError, match="operands of @ must be names"):
        make_cell("bad", "bad", inputs={"x": ("input",)}, states=("h",), params={"U": ("hidden", "hidden")},
                  equations=[("r", sp.tanh(h_prev)), ("h", sp.tanh(MatVec(U, r * h_prev)))])
