"""Golden one-liners for the printers; every primitive has a rule in every printer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from lstm_symbolic.core.functions import DERIVATIVES, PRIMITIVES, MatTVec, MatVec, Outer, arities, sigmoid
from lstm_symbolic.formula.parse import parse_formula
from lstm_symbolic.printing.c import c_code
from lstm_symbolic.printing.jax import jax_code
from lstm_symbolic.printing.latex import CellLatexPrinter, latex_of
from lstm_symbolic.printing.numpy import numpy_code
from lstm_symbolic.printing.text import text
from lstm_symbolic.printing.torch import torch_code

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


def test_jax_golden():
    assert jax_code(sigmoid(a + b)) == "jax.nn.sigmoid(a + b)"
    assert jax_code(1 - sp.tanh(c) ** 2) == "1 - jnp.tanh(c)**2"
    assert jax_code(sp.exp(-a) / 2) == "(1/2)*jnp.exp(-a)"
    assert jax_code(a * (b + c)) == "a*(b + c)"
    with pytest.raises(TypeError, match="JAX printer has no rule for MatVec"):
        jax_code(MatVec(W, x))


def test_torch_golden():
    assert torch_code(sigmoid(a + b)) == "torch.sigmoid(a + b)"
    assert torch_code(1 - sp.tanh(c) ** 2) == "1 - torch.tanh(c)**2"
    assert torch_code(sp.exp(-a) / 2) == "(1/2)*torch.exp(-a)"


# -- every primitive has a rule in every printer: each check fails for a primitive a printer lacks ----
# The primitives are every function with a derivative rule: the formula language's (PRIMITIVES) and
# SymPy's tanh, which a cell built in Python may hold.  Each check is a function, so that
# test_a_printer_without_a_rule_fails_its_check can show it failing for a primitive nobody printed.

ARGS = sp.symbols("a b c")  # a primitive of n arguments is printed on the first n
VALUES = (sp.Rational(3, 10), sp.Rational(-1, 5), sp.Rational(7, 10))  # and evaluated there
FUNCTIONS = list(DERIVATIVES)


def _id(fn) -> str:
    return f"{fn.__module__.split('.')[0]}.{fn.__name__}"


def _call(fn, args=ARGS):
    return fn(*args[: arities(fn)[0]])


def _exact(fn) -> float:
    return float(_call(fn, VALUES).evalf(30))


def check_text(fn) -> None:
    """The formula language reads the printout back as the same function (same value at VALUES)."""
    back = parse_formula(text(_call(fn)))
    assert isinstance(back, sp.Function) and back.args == _call(fn).args, (fn, text(_call(fn)))
    at = dict(zip(ARGS, VALUES, strict=True))
    assert abs(back.subs(at).evalf(30) - _call(fn, VALUES).evalf(30)) < sp.Float(10) ** -28, fn


def check_numpy(fn, sigmoid_impl) -> None:
    code = numpy_code(_call(fn))  # strict: a primitive without a rule raises here
    values = {s.name: np.float64(float(v)) for s, v in zip(ARGS, VALUES, strict=True)}
    namespace = {"np": np, "sigmoid": sigmoid_impl, **values}
    assert abs(eval(code, namespace) - _exact(fn)) <= 1e-15 * abs(_exact(fn))  # noqa: S307 - our own printout


def check_jax(fn) -> None:
    """Evaluated with what the generated JAX module imports (jax, jnp, lax) and nothing else, in float64."""
    jax = pytest.importorskip("jax")
    code = jax_code(_call(fn))  # strict: a primitive without a rule raises here
    with jax.enable_x64(True):
        values = {s.name: jax.numpy.float64(float(v)) for s, v in zip(ARGS, VALUES, strict=True)}
        got = float(eval(code, {"jax": jax, "jnp": jax.numpy, "lax": jax.lax, **values}))  # noqa: S307 - our own
    assert abs(got - _exact(fn)) <= 1e-15 * abs(_exact(fn)), (fn, code, got)


def check_torch(fn) -> None:
    torch = pytest.importorskip("torch")
    code = torch_code(_call(fn))  # strict: a primitive without a rule raises here
    values = {s.name: torch.tensor([float(v)], dtype=torch.float64) for s, v in zip(ARGS, VALUES, strict=True)}
    got = eval(code, {"torch": torch, **values})  # noqa: S307 - our own printout
    assert isinstance(got, torch.Tensor) and abs(got.item() - _exact(fn)) <= 1e-15 * abs(_exact(fn)), (fn, code)


def check_latex(fn) -> None:
    assert f"_print_{fn.__name__}" in vars(CellLatexPrinter), fn  # its own rule,
    assert latex_of(_call(fn)) != sp.latex(_call(fn))  # not what SymPy's printer falls back to


def check_c(functions: list, tmp_path: Path) -> None:
    """Every primitive printed for both real types, compiled beside the generated C's own helpers and run."""
    lines = [f'#include "{ROOT / "generated" / "c" / "lstm.c"}"', "#include <stdio.h>", "int main(void) {"]
    lines += [f"    const double {s} = {float(v)!r}; const float {s}f = {float(v)!r}F;"
              for s, v in zip(ARGS, VALUES, strict=True)]
    floats = [sp.Symbol(f"{s}f") for s in ARGS]
    for fn in functions:  # strict: a primitive without a rule raises here
        f32 = c_code(_call(fn, floats), "float")
        lines.append(f'    printf("%.17g %.9g\\n", {c_code(_call(fn))}, (double)({f32}));')
    (tmp_path / "primitives.c").write_text("\n".join([*lines, "    return 0;", "}", ""]))
    subprocess.run(["gcc", "-std=c99", "-O0", "-o", str(tmp_path / "primitives"), str(tmp_path / "primitives.c"),
                    "-lm"], check=True, capture_output=True, timeout=120)
    done = subprocess.run([str(tmp_path / "primitives")], check=True, capture_output=True, text=True, timeout=60)
    for fn, line in zip(functions, done.stdout.splitlines(), strict=True):
        f64, f32 = map(float, line.split())
        assert abs(f64 - _exact(fn)) <= 1e-15 * abs(_exact(fn)), (fn, f64)
        assert abs(f32 - _exact(fn)) <= 1e-6 * abs(_exact(fn)), (fn, f32)


def test_every_primitive_of_the_formula_language_has_a_derivative_rule():
    assert set(PRIMITIVES.values()) <= set(FUNCTIONS)


@pytest.mark.parametrize("fn", FUNCTIONS, ids=_id)
def test_text_prints_every_primitive_as_the_formula_language_reads_it(fn):
    check_text(fn)


@pytest.mark.parametrize("fn", FUNCTIONS, ids=_id)
def test_numpy_prints_every_primitive_as_code_that_computes_it(fn, numpy_modules):
    check_numpy(fn, numpy_modules["lstm"].sigmoid)


@pytest.mark.parametrize("fn", FUNCTIONS, ids=_id)
def test_jax_prints_every_primitive_as_code_that_computes_it(fn):
    check_jax(fn)


@pytest.mark.parametrize("fn", FUNCTIONS, ids=_id)
def test_torch_prints_every_primitive_as_code_that_computes_it(fn):
    check_torch(fn)


@pytest.mark.parametrize("fn", FUNCTIONS, ids=_id)
def test_latex_has_its_own_rule_for_every_primitive(fn):
    check_latex(fn)


def test_c_prints_every_primitive_as_code_that_computes_it(tmp_path):
    if not shutil.which("gcc"):
        pytest.skip("gcc missing")
    check_c(FUNCTIONS, tmp_path)


class Softsign(sp.Function):
    """A primitive no printer has a rule for: x / (1 + |x|)."""

    nargs = 1

    def _eval_evalf(self, prec):
        x = self.args[0]
        return (x / (1 + abs(x)))._eval_evalf(prec)


@pytest.mark.parametrize("printer", ["text", "numpy", "latex", "c", "jax", "torch"])
def test_a_printer_without_a_rule_fails_its_check(printer, monkeypatch, tmp_path):
    """The guards bite: a new primitive, registered but printed by nobody, fails every printer's check."""
    monkeypatch.setitem(PRIMITIVES, "softsign", Softsign)
    monkeypatch.setitem(DERIVATIVES, Softsign, lambda y, x: 1 / (1 + abs(x)) ** 2)
    checks = {"text": lambda: check_text(Softsign), "latex": lambda: check_latex(Softsign),
              "numpy": lambda: check_numpy(Softsign, lambda v: 1 / (1 + np.exp(-v))),
              "torch": lambda: check_torch(Softsign),
              "c": lambda: check_c([*FUNCTIONS, Softsign], tmp_path), "jax": lambda: check_jax(Softsign)}
    with pytest.raises((AssertionError, TypeError, ValueError, NotImplementedError, SyntaxError)):
        checks[printer]()
