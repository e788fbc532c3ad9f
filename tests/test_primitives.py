"""The element-wise vocabulary beyond σ, tanh, exp and log: each derivative rule checked on its own.

Three oracles, each independent of our rules:

* SymPy's derivative of the primitive written in SymPy's own functions (``Max``, ``log``,
  ``Piecewise``: :meth:`Primitive.oracle`), at exact rational points away from the kinks: equal exactly;
* PyTorch's autograd of the same function, in float64, at generic points and AT the kinks, where our
  rules promise PyTorch's choice (relu'(0) = 0, max/min share a tie, clip passes its bounds, |x|'(0) = 0,
  hardsigmoid' = 0 at its corners);
* central differences on whole cells that use them (the example specs, in test_spec.py and test_c.py).

The whole-cell derivation (chain rule through functions of several arguments, rules read in stored
values) is checked exactly against SymPy on components by the example specs (test_spec.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from lstm_symbolic.core.components import evaluate
from lstm_symbolic.core.functions import (
    DERIVATIVES,
    PRIMITIVES,
    Primitive,
    absolute,
    arities,
    clip,
    elementwise_diff,
    hard_sigmoid,
    log_sigmoid,
    maximum,
    minimum,
    relu,
    softplus,
    sqrt,
    step,
)
from lstm_symbolic.formula.parse import FormulaError, parse_formula

NEW = [fn for fn in PRIMITIVES.values() if isinstance(fn, type) and issubclass(fn, Primitive) and fn is not step]
ARGS = sp.symbols("a b c")
R = sp.Rational


def _exact_value(expr: sp.Expr, point: dict) -> sp.Expr:
    """``expr`` at ``point`` with every primitive written in SymPy's functions, exactly."""
    oracle = expr.replace(lambda e: isinstance(e, Primitive), lambda e: type(e).oracle(*e.args))
    return sp.simplify(oracle.xreplace(point))


# Points away from every kink (rationals; each function's arguments in order).
SMOOTH_POINTS = {
    relu: [(R(3, 7),), (R(-5, 3),)],
    softplus: [(R(3, 7),), (R(-5, 3),), (R(0),)],
    log_sigmoid: [(R(3, 7),), (R(-5, 3),)],
    hard_sigmoid: [(R(3, 7),), (R(-5, 1),), (R(4, 1),)],
    maximum: [(R(1, 3), R(-2, 5)), (R(-1, 3), R(2, 5))],
    minimum: [(R(1, 3), R(-2, 5)), (R(-1, 3), R(2, 5))],
    clip: [(R(1, 3), R(-1), R(1)), (R(-7, 3), R(-1), R(1)), (R(9, 4), R(-1), R(1))],
    sqrt: [(R(9, 4),), (R(2, 7),)],
    absolute: [(R(3, 7),), (R(-5, 3),)],
}


def test_every_new_primitive_has_points():
    assert set(SMOOTH_POINTS) == set(NEW)


@pytest.mark.parametrize("fn", NEW, ids=lambda f: f.__name__)
def test_each_rule_is_sympys_derivative_of_the_function_exactly(fn):
    for point in SMOOTH_POINTS[fn]:
        args = ARGS[: len(point)]
        expr = fn(*args)
        full_args = expr.args  # hard_sigmoid(x) gains its two constants
        at = dict(zip(args, point, strict=True))
        for k, arg in enumerate(args):
            ours = _exact_value(elementwise_diff(expr, arg), at)
            sympys = sp.simplify(sp.diff(fn.oracle(*full_args), arg).xreplace(at))
            assert sp.simplify(ours - sympys) == 0, (fn.__name__, point, k, ours, sympys)


def test_a_wrong_rule_is_caught_by_that_check(monkeypatch):
    """Guard: the check above fails for a rule that is wrong (softplus' = σ(x) replaced by σ(x)²)."""
    right = DERIVATIVES[softplus]
    monkeypatch.setitem(DERIVATIVES, softplus, lambda y, x: right(y, x) ** 2)
    with pytest.raises(AssertionError):
        test_each_rule_is_sympys_derivative_of_the_function_exactly(softplus)


# -- against PyTorch, kinks included --------------------------------------------------------------

def _torch_functions():
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    return torch, {
        relu: torch.relu,
        softplus: f.softplus,
        log_sigmoid: f.logsigmoid,
        hard_sigmoid: lambda x: torch.clamp(0.2 * x + 0.5, 0, 1),
        "hardsigmoid_torch": f.hardsigmoid,  # hard_sigmoid(x, 1/6, 1/2)
        maximum: torch.maximum,
        minimum: torch.minimum,
        clip: lambda a, lo, hi: torch.clamp(a, lo, hi),
        sqrt: torch.sqrt,
        absolute: torch.abs,
    }


KINKS = {
    relu: [(0.0,), (1e-300,), (-2.0,), (3.5,)],
    softplus: [(0.0,), (-8.0,), (8.0,)],
    log_sigmoid: [(0.0,), (-8.0,), (8.0,)],
    hard_sigmoid: [(0.5,), (-4.0,), (4.0,)],  # its corners are not exact in floating point: PyTorch's below
    "hardsigmoid_torch": [(-3.0,), (3.0,), (0.0,), (-4.0,), (2.9,)],
    maximum: [(1.5, 1.5), (0.0, 0.0), (1.0, 2.0), (2.0, 1.0)],
    minimum: [(1.5, 1.5), (0.0, 0.0), (1.0, 2.0), (2.0, 1.0)],
    clip: [(-1.0, -1.0, 1.0), (1.0, -1.0, 1.0), (0.0, -1.0, 1.0), (-2.0, -1.0, 1.0), (2.0, -1.0, 1.0)],
    sqrt: [(0.25,), (4.0,)],
    absolute: [(0.0,), (-2.0,), (2.0,)],
}


def _ours(fn, point):
    """Our function's value and partial derivatives at ``point`` (floats), by our rules."""
    args = ARGS[: len(point)]
    expr = hard_sigmoid(args[0], R(1, 6), R(1, 2)) if fn == "hardsigmoid_torch" else fn(*args)
    at = {s: sp.Float(v, 30) for s, v in zip(args, point, strict=True)}
    value = float(evaluate(expr, at, digits=30))  # mpmath on every operation: 1 − 1 is 0, not 1e-165
    return value, [float(evaluate(elementwise_diff(expr, s), at, digits=30)) for s in args]


@pytest.mark.parametrize("fn", [*NEW, "hardsigmoid_torch"], ids=lambda f: getattr(f, "__name__", f))
def test_each_rule_agrees_with_torch_autograd_at_the_kinks(fn):
    torch, functions = _torch_functions()
    for point in KINKS[fn]:
        xs = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in point]
        y = functions[fn](*xs)
        grads = torch.autograd.grad(y, xs, allow_unused=True)
        value, partials = _ours(fn, point)
        assert math.isclose(value, y.item(), rel_tol=1e-15, abs_tol=1e-300), (fn, point)
        # torch's hardsigmoid backward multiplies by 1/6 rounded to float32, in float64 too
        rtol = 1e-7 if fn == "hardsigmoid_torch" else 1e-15
        for k, (g, ours) in enumerate(zip(grads, partials, strict=True)):
            theirs = 0.0 if g is None else g.item()
            assert math.isclose(ours, theirs, rel_tol=rtol, abs_tol=1e-300), (fn, point, k, ours, theirs)


def test_the_step_of_a_derivative_has_the_value_given_at_zero():
    x = sp.Symbol("x")
    assert [float(step(v, R(1, 2)).evalf()) for v in (-1, 0, 1)] == [0, 0.5, 1]
    assert step.value(np, np.array([-1.0, 0.0, 2.0]), 0).tolist() == [0.0, 0.0, 1.0]
    assert elementwise_diff(step(x, 0), x) == 0


# -- written in specs and formulas --------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_every_primitive_is_read_by_its_written_name(name):
    fn = PRIMITIVES[name]
    n = arities(fn)[0]
    expr = parse_formula(f"{name}({', '.join(s.name for s in ARGS[:n])})")
    assert type(expr) is fn if isinstance(fn, type) else expr.func == fn


@pytest.mark.parametrize(("formula", "message"), [
    ("max(a)", "max takes exactly 2 arguments"),
    ("clip(a, 0)", "clip takes exactly 3 arguments"),
    ("hard_sigmoid(a, 0.2)", "hard_sigmoid takes exactly 1 or 3 arguments"),
    ("log(a, 2)", "log takes exactly 1 argument"),
    ("relu(a, b)", "relu takes exactly 1 argument"),
])
def test_a_call_with_the_wrong_number_of_arguments_says_how_many(formula, message):
    with pytest.raises(FormulaError, match=message):
        parse_formula(formula)


def test_hard_sigmoid_has_onnx_and_keras_constants_unless_given():
    x = sp.Symbol("x")
    assert hard_sigmoid(x).args == (x, R(1, 5), R(1, 2))
    assert parse_formula("hard_sigmoid(x, 1/6, 1/2)").args == (x, R(1, 6), R(1, 2))
    assert parse_formula("square(x)") == x**2
