"""Golden one-liners for the printers; every primitive has a rule in every printer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from lstm_symbolic.core.functions import PRIMITIVES, MatTVec, MatVec, Outer, sigmoid
from lstm_symbolic.formula.parse import parse_formula
from lstm_symbolic.printing.c import c_code
from lstm_symbolic.printing.latex import CellLatexPrinter, latex_of
from lstm_symbolic.printing.numpy import numpy_code
from lstm_symbolic.printing.text import text

ROOT = Path(__file__).resolve().parents[1]

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


# -- every primitive has a rule in every printer: each check fails for a primitive a printer lacks ----

POINT = 0.3  # where each printed primitive is evaluated


def _exact(fn) -> float:
    return float(fn(sp.Rational(3, 10)).evalf(30))


@pytest.mark.parametrize("name", PRIMITIVES)
def test_text_prints_every_primitive_as_the_formula_language_reads_it(name):
    expr = PRIMITIVES[name](a)
    assert parse_formula(text(expr)) == expr


@pytest.mark.parametrize("name", PRIMITIVES)
def test_numpy_prints_every_primitive_as_code_that_computes_it(name, numpy_modules):
    fn = PRIMITIVES[name]
    code = numpy_code(fn(a))  # strict: a primitive without a rule raises here
    namespace = {"np": np, "sigmoid": numpy_modules["lstm"].sigmoid, "a": np.float64(POINT)}
    assert abs(eval(code, namespace) - _exact(fn)) <= 1e-15 * abs(_exact(fn))  # noqa: S307 - our own printout


@pytest.mark.parametrize("name", PRIMITIVES)
def test_latex_has_its_own_rule_for_every_primitive(name):
    fn = PRIMITIVES[name]
    assert f"_print_{fn.__name__}" in vars(CellLatexPrinter), name  # not SymPy's \operatorname fallback
    assert "operatorname" not in latex_of(fn(a))


def test_c_prints_every_primitive_as_code_that_computes_it(tmp_path):
    """Every primitive printed for both real types, compiled beside the generated C's own helpers and run."""
    if not shutil.which("gcc"):
        pytest.skip("gcc missing")
    lines = [f'#include "{ROOT / "generated" / "lstm" / "lstm.c"}"', "#include <stdio.h>", "int main(void) {",
             f"    const double a = {POINT}; const float af = {POINT}F;"]
    for fn in PRIMITIVES.values():  # strict: a primitive without a rule raises here
        lines.append(f'    printf("%.17g %.9g\\n", {c_code(fn(a))}, (double)({c_code(fn(sp.Symbol("af")), "float")}));')
    (tmp_path / "primitives.c").write_text("\n".join([*lines, "    return 0;", "}", ""]))
    subprocess.run(["gcc", "-std=c99", "-O0", "-o", str(tmp_path / "primitives"), str(tmp_path / "primitives.c"),
                    "-lm"], check=True, capture_output=True, timeout=120)
    done = subprocess.run([str(tmp_path / "primitives")], check=True, capture_output=True, text=True, timeout=60)
    for fn, line in zip(PRIMITIVES.values(), done.stdout.splitlines(), strict=True):
        f64, f32 = map(float, line.split())
        assert abs(f64 - _exact(fn)) <= 1e-15 * abs(_exact(fn)), (fn, f64)
        assert abs(f32 - _exact(fn)) <= 1e-6 * abs(_exact(fn)), (fn, f32)
