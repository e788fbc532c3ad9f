"""`verify` reads back what `derive --format latex` prints (issue 19 item 6): for every built-in
cell × notation profile that `verify` has names for, every printed backward equation whose
left-hand side the notation names is read in that notation's LaTeX and `holds`.  The LaTeX names
(`\\Gamma_f^{\\langle t \\rangle}`, `dc_{next}`, `\\bar{z}^t`, `\\frac{\\partial E}{\\partial ...}`) are
read as text and replaced by code names; nothing is evaluated."""

from __future__ import annotations

import pytest

from lstm_symbolic import notation
from lstm_symbolic.core.derive import derive
from lstm_symbolic.formula.parse import parse_formula
from lstm_symbolic.notation import NotationError
from lstm_symbolic.printing.latex import latex_of, symbol_table
from lstm_symbolic.spec.builtins import BUILTIN_CELLS
from lstm_symbolic.verify import formulas as verify
from lstm_symbolic.verify.formulas import Checker, check_formula

PAIRS = [(cell, profile) for cell in BUILTIN_CELLS for profile in notation.PROFILES]
# How the piecewise functions print (relu's [z > 0], max's H(·), \log\sigma, \operatorname{…}): the LaTeX
# reader has no rule for them yet (the plain-text reader has), so an equation that prints one is not read back.
# (\operatorname{sum} and \operatorname{mean}, the reductions across the units, it reads.)
UNREAD = ("> 0]", r"\geq 0]", "H\\left(", r"\max", r"\min", r"\log\sigma",
          *(rf"\operatorname{{{f}}}" for f in ("relu", "softplus", "clip", "hardsigmoid")))


@pytest.mark.parametrize("cell_name, profile", PAIRS, ids=[f"{c}-{p}" for c, p in PAIRS])
def test_every_printed_backward_equation_reads_back_and_holds(cell_name, profile):
    cell = BUILTIN_CELLS[cell_name]()
    try:
        checker = Checker(cell, profile, False)
    except NotationError as exc:  # ng, gfg, greff name the lstm only; pytorch is not a verify notation
        pytest.skip(str(exc))
    derivation = derive(cell)
    table = symbol_table(cell, notation.get(profile), derivation)
    user = checker.right.names.user()
    checked, unread, every = [], [], [a for a in (*derivation.adjoints, *derivation.param_grads) if a.rhs != a.name]
    for adjoint in every:
        name = user.get(adjoint.name.name)
        if name not in checker.quantities:
            continue
        latex = latex_of(adjoint.rhs, table)
        if any(mark in latex for mark in UNREAD):
            unread.append(name)
            continue
        verdict = check_formula(checker, name, latex)
        assert verdict.verdict == "holds", (name, latex, verdict.diagnosis)
        checked.append(name)
    assert len(checked) + len(unread) >= min(11, len(every)) and len(unread) <= 4, (checked, unread)


HEAD = 'cell = "lstm"\nnotation = "{}"\nshape = "vector"\n[formulas]\n'


@pytest.mark.parametrize("notation_name, line", [
    # the course notebook's own LaTeX (Sequence Models, week 1: LSTM backward)
    ("ng", r"dot = 'da_{next}*\tanh(c_{next}) * \Gamma_o^{\langle t \rangle}*(1-\Gamma_o^{\langle t \rangle})'"),
    ("ng", r"dcct = '(dc_{next}*\Gamma_u^{\langle t \rangle}+ \Gamma_o^{\langle t \rangle}* (1-\tanh^2(c_{next}))"
           r" * \Gamma_u^{\langle t \rangle} * da_{next})*(1-(\tilde{c}^{\langle t \rangle})^2)'"),
    ("ng", r"dc_prev = 'dc_{next}*\Gamma_f^{\langle t \rangle} + \Gamma_o^{\langle t \rangle} * "
           r"(1- \tanh^2(c_{next}))*\Gamma_f^{\langle t \rangle}*da_{next}'"),
    ("ng", r"dot = 'da_{next} \odot \tanh(c^{\langle t \rangle}) \odot \Gamma_o^{\langle t\rangle} \odot "
           r"(1 - \Gamma_o^{\langle t \rangle})'"),
    # σ′ and tanh′ written as derivatives, e^{x} as exp(x)
    ("default", r"d_z_o = '\delta h_t \odot \tanh(c_t) \odot \sigma^\prime(z_{o,t})'"),
    ("default", r"d_z_c = '\delta c_t \odot i_t \odot \tanh^{\prime}(z_{c,t})'"),
    ("default", r"d_z_o = '\delta h_t \odot \tanh(c_t) \odot \frac{e^{-z_o}}{(1+e^{-z_o})^2}'"),
    ("default", r"d_c = '\delta c_{t}^{\mathrm{next}} + \delta h_{t} \odot o_{t} \odot (1 - \tanh^{2}(c_{t}))'"),
    ("greff", r"dobar = 'dy \odot \tanh(c^{t}) \odot \bar{o}^{t} \odot 0 + "
              r"dy \odot \tanh(c^t) \odot o^t \odot (1 - o^t)'"),
])
def test_hand_written_latex_holds(notation_name, line):
    (verdict,) = verify.check_text(HEAD.format(notation_name) + line + "\n")
    assert verdict.verdict == "holds", verdict.diagnosis


def test_a_derivative_and_e_are_read_not_evaluated():
    assert parse_formula(r"\sigma^{\prime}(a) + e^{b}") == parse_formula("sigmoid(a)*(1 - sigmoid(a)) + exp(b)")
    assert parse_formula(r"\tanh^\prime(a)") == parse_formula("1 - tanh(a)**2")
