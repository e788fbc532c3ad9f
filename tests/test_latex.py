"""Golden one-liners for the LaTeX printer (printing/latex.py)."""

import pytest
import sympy as sp

from lstm_symbolic import notation
from lstm_symbolic.core.derive import derive
from lstm_symbolic.core.functions import LINEAR_ATOMS, PRIMITIVES, MatTVec, MatVec, Outer, arities, sigmoid
from lstm_symbolic.core.jacobian import jacobian
from lstm_symbolic.printing.latex import CellLatexPrinter, jacobian_terms, latex_of, symbol_table
from lstm_symbolic.spec.builtins import BUILTIN_CELLS

CELL = BUILTIN_CELLS["lstm"]()
S = {n: sp.Symbol(n) for n in (
    "x h_prev c_prev z_f z_i f i o c c_tilde W_f U_f b_f "
    "d_h d_c d_o d_f d_z_f d_c_next r"
).split()}


def table(name="default"):
    return symbol_table(CELL, notation.get(name), derive(CELL))


def tex(expr, name="default"):
    profile = notation.get(name)
    order = {q.name: k for k, q in enumerate(CELL.quantities)}
    return latex_of(expr, table(name), scalar=profile.scalar, order=order)


def test_odot_puts_the_adjoint_first():
    assert tex(S["c_prev"] * S["d_c"]) == r"\delta c_{t} \odot c_{t-1}"


def test_sums_inside_products_get_parentheses():
    f, d_f = S["f"], S["d_f"]
    assert tex(d_f * f * (1 - f)) == r"\delta f_{t} \odot f_{t} \odot \left(1 - f_{t}\right)"


def test_sigmoid_and_its_powers():
    z_f, z_i = S["z_f"], S["z_i"]
    assert tex(sigmoid(z_f)) == r"\sigma(z_{f,t})"
    assert tex(sigmoid(z_f) ** 2) == r"\sigma(z_{f,t})^{2}"
    assert tex(sigmoid(z_f + z_i)) == r"\sigma\left(z_{f,t} + z_{i,t}\right)"


def test_tanh_squared():
    assert tex(1 - sp.tanh(S["c"]) ** 2) == r"1 - \tanh^{2}(c_{t})"


def test_previous_step_subscripts():
    assert tex(S["h_prev"]) == r"h_{t-1}"
    assert tex(sp.Symbol("o_prev")) == r"o_{t-1}"
    assert latex_of(sp.Symbol("gate_prev")) == r"\mathrm{gate}_{t-1}"


def test_transposes():
    assert tex(MatTVec(S["U_f"], S["d_z_f"])) == r"U_f^{\top} \delta z_{f,t}"
    assert tex(Outer(S["d_z_f"], S["h_prev"])) == r"\delta z_{f,t}\, h_{t-1}^{\top}"


def test_transpose_of_a_superscripted_vector_is_parenthesised():
    expected = r"d\Gamma_f^{\langle t \rangle}\, \left(a^{\langle t-1 \rangle}\right)^{\top}"
    assert tex(Outer(S["d_z_f"], S["h_prev"]), "ng") == expected


def test_power_of_a_superscripted_symbol_is_parenthesised():
    assert tex(1 - S["c_tilde"] ** 2, "greff") == r"1 - \left(z^{t}\right)^{2}"


def test_pre_activation_reads_in_written_order():
    rhs = MatVec(S["W_f"], S["x"]) + MatVec(S["U_f"], S["h_prev"]) + S["b_f"]
    assert tex(rhs) == r"W_f x_{t} + U_f h_{t-1} + b_f"


def test_matrix_product_inside_an_elementwise_product_is_parenthesised():
    assert tex(S["f"] * MatVec(S["U_f"], S["h_prev"])) == r"f_{t} \odot \left(U_f h_{t-1}\right)"


def test_negation_and_division():
    assert tex(-S["f"] * S["x"]) == r"-x_{t} \odot f_{t}"
    assert tex(1 / S["x"]) == r"\frac{1}{x_{t}}"
    assert tex(sp.log(S["x"])) == r"\log(x_{t})"


def test_scalar_profile_uses_products_and_no_transposes():
    assert tex(S["d_h"] * S["o"], "gfg") == r"E_{\delta} \cdot o_{t}"  # the tutorial's E_delta
    assert tex(MatTVec(S["U_f"], S["d_z_f"]), "gfg") == r"w_{hf} \frac{\partial E}{\partial z_{f,t}}"


def test_seed_from_the_next_step():
    assert tex(S["d_c_next"]) == r"\delta c_{t}^{\mathrm{next}}"
    assert tex(S["d_c_next"], "ng") == r"dc_{next}"  # the course's own name
    assert tex(S["d_c_next"], "greff") == r"\delta c^{t}_{\mathrm{next}}"


def test_total_jacobian_terms():
    printer = CellLatexPrinter(table())
    terms = jacobian_terms(jacobian(CELL, total=True), printer)
    assert terms[0] == r"\operatorname{diag}\left(f_{t}\right)"
    assert r"U_f \operatorname{diag}\left(o_{t-1} \odot" in terms[1]
    assert len(terms) == 4


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_every_primitive_has_a_latex_rule(name):
    fn = PRIMITIVES[name]
    assert f"_print_{fn.__name__}" in CellLatexPrinter.__dict__, f"add _print_{fn.__name__}"
    printed = latex_of(fn(*[S["x"]] * arities(fn)[0]))
    assert printed != sp.latex(fn(*[S["x"]] * arities(fn)[0]))  # not SymPy's own fallback


def test_every_linear_atom_has_a_latex_rule():
    for atom in LINEAR_ATOMS:
        assert f"_print_{atom.__name__}" in CellLatexPrinter.__dict__
