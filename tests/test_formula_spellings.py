"""Formulas in a notebook's own spelling: NumPy calls, dictionary lookups, row slices (issue 19 item 6).
Parsing still evaluates nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy as sp

from lstm_symbolic.core.functions import tanh
from lstm_symbolic.formula.parse import FormulaError, parse_formula
from lstm_symbolic.verify import formulas as verify

HEAD = 'cell = "lstm"\nnotation = "ng"\nshape = "vector"\n[formulas]\n'


@pytest.mark.parametrize("numpy, plain", [
    ("np.tanh(c_next)", "tanh(c_next)"),
    ("np.exp(a) + np.log(b)", "exp(a) + log(b)"),
    ("np.square(np.tanh(c))", "tanh(c)**2"),
    ("np.multiply(a, b + c)", "a * (b + c)"),
    ("np.dot(W, x)", "W @ x"),
    ("np.matmul(W.T, d)", "W.T @ d"),
    ("np . tanh (a)", "tanh(a)"),
    ("parameters['Wf'] @ x", "Wf @ x"),
    ('parameters["Wf"][:, :n_a].T @ d', "Wf[:, :n_a].T @ d"),
])
def test_numpy_spellings_mean_the_formula(numpy, plain):
    assert parse_formula(numpy) == parse_formula(plain)


@pytest.mark.parametrize("text, reason", [
    ("np.dot(a)", "np.dot takes exactly 2 arguments"),
    ("np.tanh(a, b)", "np.tanh takes exactly 1 argument"),
    ("np.square(a, out=b)", "np.square takes exactly 1 argument"),
    ("x['__class__']", "'__class__' is Python"),
    ("__import__('os')", "strings are not part"),
    ("parameters['W f']", "strings are not part"),
    ("Wf[:n_a, :] @ x", "'Wf[:n_a, :]' slices rows"),
    ("Wf[1:, :] @ x", "slices rows"),
])
def test_what_stays_refused(text, reason):
    with pytest.raises(FormulaError) as error:
        parse_formula(text)
    assert reason in str(error.value)
    assert not Path("/tmp/lstm_symbolic_pwned").exists()


def test_a_notebooks_formulas_hold():
    text = HEAD + "\n".join([
        'dot = "da_next * np.tanh(c_next) * ot * (1 - ot)"',
        'dft = "np.multiply(dc_next * c_prev + ot * (1 - np.square(np.tanh(c_next))) * c_prev * da_next, '
        'ft * (1 - ft))"',
        'dWf = "np.dot(dft, concat.T)"',
        """da_prev = "np.dot(parameters['Wf'][:, :n_a].T, dft) + np.dot(parameters['Wi'][:, :n_a].T, dit) + """
        """np.dot(parameters['Wc'][:, :n_a].T, dcct) + np.dot(parameters['Wo'][:, :n_a].T, dot)\"""",
    ]) + "\n"
    verdicts = verify.check_text(text)
    assert [v.verdict for v in verdicts] == ["holds"] * 4, [v.diagnosis for v in verdicts]


def test_an_unknown_numpy_call_lists_the_known_ones():
    (v,) = verify.check_text(HEAD + 'dit = "np.cos(it)"\n')
    assert v.verdict == "error" and "formulas know np.sum, np.tanh" in v.diagnosis


def test_a_dictionary_lookup_keeps_positions():
    with pytest.raises(FormulaError) as error:
        parse_formula("parameters['Wf'] @ x +", {"Wf": ("hidden", "input"), "x": ("input",)})
    assert error.value.column == 23


def test_numpy_spellings_build_no_new_kind_of_expression():
    expr = parse_formula("np.multiply(np.tanh(a), np.square(b))")
    assert expr == tanh(sp.Symbol("a")) * sp.Symbol("b") ** 2


# -- LaTeX's spellings of the piecewise and composed functions, as `derive --format latex` prints them -----
@pytest.mark.parametrize("latex, plain", [
    (r"b \odot \operatorname{relu}(a)", "b * relu(a)"),
    (r"b \odot [a > 0]", "b * step(a, 0)"),
    (r"c + [a \geq 0]", "c + step(a, 1)"),
    (r"c \odot \operatorname{H}\left(a - b\right)", "c * step(a - b, 1/2)"),
    (r"1 + \max\left(a, b\right)", "1 + max(a, b)"),
    (r"\left(\min\left(a, b\right)\right)^{2}", "min(a, b)**2"),
    (r"\log\sigma(a) + \log \sigma(b)", "log_sigmoid(a) + log_sigmoid(b)"),
    (r"\operatorname{softplus}\left(a + b\right)", "softplus(a + b)"),
    (r"\operatorname{clip}\left(a, b, c\right)", "clip(a, b, c)"),
    (r"\operatorname{hardsigmoid}(a)", "hard_sigmoid(a)"),
    (r"\operatorname{hardsigmoid}\left(a, \frac{1}{6}, \frac{1}{2}\right)", "hard_sigmoid(a, 1/6, 1/2)"),
    (r"\sqrt{1 + a} \odot \lvert a - b \rvert", "sqrt(1 + a) * abs(a - b)"),
    (r"\operatorname{relu}^{2}(a)", "relu(a)**2"),
])
def test_latex_spellings_of_the_piecewise_functions(latex, plain):
    assert parse_formula(latex) == parse_formula(plain)


@pytest.mark.parametrize("text, reason", [
    (r"b \odot [a > 1]", "Iverson bracket reads"),
    (r"\max\left(a\right)", "takes exactly 2 arguments"),
    (r"\operatorname{clip}\left(a, b\right)", "takes exactly 3 arguments"),
])
def test_latex_piecewise_mistakes_are_one_line(text, reason):
    with pytest.raises(FormulaError, match=reason):
        parse_formula(text)
