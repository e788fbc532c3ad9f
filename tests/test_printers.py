"""Golden one-liners for the printers; every primitive has a rule in every printer."""

from __future__ import annotations

import sympy as sp

from lstm_symbolic.functions import PRIMITIVES, MatTVec, MatVec, Outer, sigmoid
from lstm_symbolic.printing.numpy import ArrayPrinter, numpy_code
from lstm_symbolic.printing.text import TextPrinter, text

a, b, c, x, W, d = sp.symbols("a b c x W d")


def test_text_golden():
    assert text(sigmoid(a + b)) == "sigmoid(a + b)"
    assert text(sigmoid(a) ** 2) == "sigmoid(a)**2"
    assert text(MatVec(W, x) + b) == "W @ x + b"
    assert text(MatTVec(W, d)) == "W.T @ d"
    assert text(Outer(d, x)) == "d @ x.T"
    assert text(sp.Symbol("d_c") * (1 - sp.tanh(c) ** 2)) == "d_c*(1 - tanh(c)**2)"


def test_numpy_golden():
    assert numpy_code(sigmoid(a + b)) == "sigmoid(a + b)"
    assert numpy_code(1 - sp.tanh(c) ** 2) == "1 - np.tanh(c)**2"
    assert numpy_code(sp.exp(-a) / 2) == "(1/2)*np.exp(-a)"
    assert numpy_code(a * (b + c)) == "a*(b + c)"


def test_every_primitive_has_a_rule_in_every_printer():
    for printer in (TextPrinter(), ArrayPrinter()):
        for name, fn in PRIMITIVES.items():
            printed = printer.doprint(fn(a))
            assert name in printed and "(a)" in printed, (type(printer).__name__, printed)
