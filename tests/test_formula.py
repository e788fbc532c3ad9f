"""The formula front end: golden parses, LaTeX equivalents, positions, hostile input."""

from __future__ import annotations

import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstm_symbolic.core.functions import MatTVec, MatVec, Outer, sigmoid, tanh
from lstm_symbolic.formula.parse import (
    BatchSum,
    ColumnSlice,
    FormulaError,
    is_latex,
    parse_formula,
    parse_latex_formula,
    parse_shaped,
)

H, I = ("hidden",), ("input",)
HI, HH = ("hidden", "input"), ("hidden", "hidden")
SHAPES = {
    "x": I, "h_prev": H, "c_prev": H, "W_f": HI, "U_f": HH, "b_f": H, "z_f": H, "f": H,
    "c": H, "d_z_f": H, "d_h": H, "Wf": ("hidden", "concat"), "n_a": (), "dft": H,
    "concat": ("concat",), "c_tilde": H, "i": H,
}
S = sp.Symbol
W_f, U_f, b_f, x, h_prev, c_prev = sp.symbols("W_f U_f b_f x h_prev c_prev")
a, b, c, d, v, W = sp.symbols("a b c d v W")


@pytest.mark.parametrize("shapes", [None, SHAPES])
def test_preactivation(shapes):
    expected = MatVec(W_f, x) + MatVec(U_f, h_prev) + b_f
    assert parse_formula("W_f @ x + U_f @ h_prev + b_f", shapes) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a*b**2", a * b**2),
        ("-a**2", -(a**2)),
        ("(-a)**2", a**2),
        ("a**-2", a**-2),
        ("a - b - c", a - b - c),
        ("a / b * c", a * c / b),
        ("a @ b * c", MatVec(a, b) * c),
        ("c * W @ v", MatVec(c * W, v)),
        ("W.T @ d", MatTVec(W, d)),
        ("W . T @ d", MatTVec(W, d)),
        ("d @ v.T", Outer(d, v)),
        ("W.T @ (d*2)", MatTVec(W, 2 * d)),
        ("0.5 * a", sp.Rational(1, 2) * a),
        ("1e-3", sp.Rational(1, 1000)),
        ("sigmoid(a) * (1 - sigmoid(a))", sigmoid(a) * (1 - sigmoid(a))),
        ("tanh(exp(log(a)))", tanh(a)),
        ("np.sum(d, axis=1, keepdims=True)", BatchSum(d)),
        ("sum(d, axis=1)", BatchSum(d)),
        ("np . sum(d * a, axis = 1)", BatchSum(a * d)),
    ],
)
def test_plain_golden(text, expected):
    assert parse_formula(text) == expected


def test_numbers_are_exact():
    assert parse_formula("3").is_Integer
    assert parse_formula("0.1") == sp.Rational(1, 10)


def test_column_slices():
    wf, n_a = sp.symbols("Wf n_a")
    left = parse_formula("Wf[:, :n_a]", SHAPES)
    assert left == ColumnSlice.of(wf, None, n_a)
    assert (left.matrix, left.start, left.stop) == (wf, None, n_a)
    right = parse_formula("Wf[:, n_a:]")
    assert (right.start, right.stop) == (n_a, None)
    assert parse_formula("Wf[:, 0:n_a]") == left
    assert str(left) == "Wf[:, :n_a]"
    assert parse_formula("Wf[:, :n_a].T @ dft", SHAPES) == MatTVec(left, S("dft"))
    assert parse_formula("Wf[:, n_a:] @ x", SHAPES) == MatVec(right, x)


def test_shapes_decide_and_propagate():
    expr, shape = parse_shaped("dft @ concat.T", SHAPES)
    assert expr == Outer(S("dft"), S("concat")) and shape == ("hidden", "concat")
    assert parse_shaped("U_f.T @ d_z_f", SHAPES)[1] == H
    assert parse_shaped("W_f.T @ d_z_f", SHAPES)[1] == I
    assert parse_shaped("2*n_a", SHAPES)[1] == ()
    assert parse_shaped("x", None)[1] is None


LATEX_SAME = [
    (r"W_{f} \cdot x_t + U_{f} \cdot h_{t-1} + b_{f}", "W_f @ x + U_f @ h_prev + b_f"),
    (r"W_f x_t + U_f h_{t-1} + b_f", "W_f @ x + U_f @ h_prev + b_f"),
    (r"\sigma\left(W_f x_t + U_f h_{t-1} + b_f\right)", "sigmoid(W_f @ x + U_f @ h_prev + b_f)"),
    (r"f_t \odot c_{t-1} + i_t \circ \tilde{c}_t", "f*c_prev + i*c_tilde"),
    (r"c_{t-1} \otimes f_t \oplus i_t \otimes \tilde{c}_t", "f*c_prev + i*c_tilde"),
    (r"\delta h_t \odot (1 - \tanh^2(c_t))", "d_h*(1 - tanh(c)**2)"),
    (r"\delta h_t \odot (1 - \tanh(c_t)^{2})", "d_h*(1 - tanh(c)**2)"),
    (r"W_f^\top \delta z_f", "W_f.T @ d_z_f"),
    (r"W_f^T \cdot \delta z_f", "W_f.T @ d_z_f"),
    (r"W_f^{T} \delta z_f", "W_f.T @ d_z_f"),
    (r"\delta z_f x_t^{\top}", "d_z_f @ x.T"),
    (r"\delta z_f \cdot x_t^\top", "d_z_f @ x.T"),
    (r"\frac{f_t}{2} \cdot c", "f/2*c"),
    (r"{f_t \odot c} \odot \exp{c}", "f*c*exp(c)"),
    (r"f \odot U_f^\top \delta z_f", "f * (U_f.T @ d_z_f)"),
    (r"\sigma(z_f)(1 - \sigma(z_f))", "sigmoid(z_f)*(1 - sigmoid(z_f))"),
    ("σ(z_f) ⊙ c · f", "sigmoid(z_f)*c*f"),
    (r"\log(\exp(c))\, c", "log(exp(c))*c"),
    (r"\mathbf{W}_f \, \mathbf{x}_t", "W_f @ x"),
    (r"2 W_f \, x_t", "(2*W_f) @ x"),
    (r"h_{t-1} \odot W_f x_t", "h_prev * (W_f @ x)"),
]


@pytest.mark.parametrize("latex, plain", LATEX_SAME)
@pytest.mark.parametrize("shapes", [None, SHAPES])
def test_latex_same_as_plain(latex, plain, shapes):
    assert is_latex(latex) and not is_latex(plain)
    assert parse_formula(latex, shapes) == parse_formula(plain, shapes)
    assert parse_latex_formula(latex, shapes) == parse_formula(plain, shapes)


def test_latex_plain_names_and_operators_mix():
    assert parse_latex_formula("W_f @ x + b_f") == MatVec(W_f, x) + b_f
    assert parse_latex_formula("h_prev * c_prev") == h_prev * c_prev


def test_cdot_is_elementwise_between_vectors():
    assert parse_formula(r"f_t \cdot c_{t-1}", SHAPES) == S("f") * c_prev
    assert parse_formula(r"f_t \cdot c_{t-1}") == S("f") * c_prev


@pytest.mark.parametrize(
    "text, where, reason",
    [
        ("W_f @ x + U_ff", (1, 11), "unknown name 'U_ff' (did you mean 'U_f'?)"),
        ("U_f @ x", (1, 5), "shape mismatch in U_f @ x: U_f is hidden×hidden, x is input"),
        ("f + x", (1, 3), "element-wise '+' of different shapes"),
        ("W_f * x", (1, 5), "element-wise '*' of different shapes"),
        ("f +\n  x.foo", (2, 4), "attribute access '.foo' is not allowed"),
        ("x.T", (1, 1), "a transpose"),
        ("f.T * c", (1, 1), "a transpose"),
        ("d_z_f @ x", (1, 7), "shape mismatch"),
        ("f +", (1, 4), "unexpected end of formula"),
        ("f + )", (1, 5), "unexpected ')'"),
        ("f $ c", (1, 3), "unexpected character '$'"),
        ("foo(f)", (1, 1), "unknown function 'foo'"),
        ("np.sum(f)", (1, 1), "a batch sum is"),
        (r"\alpha f", (1, 1), "unknown LaTeX command '\\alpha'"),
        (r"W_{x+} \cdot f", (1, 1), "cannot read the subscript"),
        ("f +\n   é", (2, 4), "non-ASCII character 'é'"),
    ],
)
def test_errors_name_line_column_and_reason(text, where, reason):
    with pytest.raises(FormulaError) as info:
        parse_formula(text, SHAPES, where="spec.toml")
    err = info.value
    assert (err.line, err.column) == where, str(err)
    assert reason in err.reason
    assert str(err).startswith(f"spec.toml:{where[0]}:{where[1]}: ")
    assert "\n" not in str(err)


HOSTILE = [
    "__import__('os')",
    "__import__",
    "x.__class__.__bases__",
    "().__class__",
    "lambda: 0",
    "lambda x: x",
    "'abc'",
    '"abc"',
    "x; y",
    "import os",
    "x if y else z",
    "[x for x in y]",
    "x**99999999",
    "x**(2**40)",
    "2**16**16",
    "((9**16)**16)**16",
    "x**y",
    "x**0.001",
    "(" * 10_000 + "x" + ")" * 10_000,
    "(" * 101 + "x" + ")" * 101,
    "x" * 1_000_000,
    "x + " * 3000 + "x",
    "a\x00b",
    "é",
    "x\u202ey",
    "9" * 100,
    "1e999999",
    "x.T.T @ y",
    "exec(x)",
    "eval(x)",
    "getattr(x, y)",
    "x[0]",
    "x()",
    "{x: 1}",
    "`ls`",
    "$(rm -rf /)",
    "sum(x, axis=1, dtype=object)",
    r"\input{/etc/passwd}",
    r"\def\x{1}",
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t[:30]))
def test_hostile_input_is_refused_cleanly(text):
    with pytest.raises(FormulaError) as info:
        parse_formula(text)
    assert "\n" not in str(info.value)


def test_long_chains_are_fine():
    assert parse_formula("-" * 5000 + "x") == x
    assert parse_formula("+".join(["x"] * 3000)) == 3000 * x
    assert parse_formula("(" * 100 + "x" + ")" * 100) == x


_TOKENS = [
    "W_f", "x", "h_prev", "b_f", "f", "c", "z_f", "d_z_f", "Wf", "n_a", "0", "1", "0.5", "16",
    "17", "+", "-", "*", "/", "**", "@", ".T", ".foo", "(", ")", "[", "]", ":", ",", "sigmoid",
    "tanh", "exp", "log", "np.sum", "sum", "axis=1", "keepdims=True", "=", "T", "True",
    "\\odot", "\\cdot", "\\circ", "\\top", "^", "{", "}", "_", "_{t-1}", "\\sigma", "\\tanh",
    "\\frac", "\\left(", "\\right)", "\\delta", "\\tilde{c}", " ", "'", ";", "\x00", "é", "⊙",
    "__import__", "lambda", "\\", "$",
]
_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_sympy_or_formula_error(text, shapes):
    try:
        result = parse_formula(text, shapes)
    except FormulaError as err:
        assert "\n" not in str(err) and err.line >= 1 and err.column >= 1
    else:
        assert isinstance(result, sp.Basic)


@_SETTINGS
@given(st.text(max_size=60), st.sampled_from([None, SHAPES]))
def test_random_text_gives_sympy_or_formula_error(text, shapes):
    _only_sympy_or_formula_error(text, shapes)


@_SETTINGS
@given(st.lists(st.sampled_from(_TOKENS), max_size=25), st.sampled_from([None, SHAPES]))
def test_random_tokens_give_sympy_or_formula_error(tokens, shapes):
    _only_sympy_or_formula_error(" ".join(tokens), shapes)
    _only_sympy_or_formula_error("".join(tokens), shapes)


def test_text_only_latex_can_read_is_read_as_latex():
    assert not is_latex("W_f x_t + b_f")
    assert parse_formula("W_f x_t + b_f", SHAPES) == MatVec(W_f, x) + b_f
    with pytest.raises(FormulaError, match="unexpected end"):
        parse_formula("x +")
