"""Bounded work (issue 15, item 4): inputs inside the documented limits finish in time.

One case per finding: ``tanh`` nested 10 deep took 10 s and 12 deep ran past 60 s (an 89-byte
verify file: SymPy's assumption queries on nested ``tanh``); ``sigmoid(exp(exp(16)))`` hung in
evalf; a chain of 1,000 equations took over 30 s; verify against a long spec took minutes.  The
time bounds are several times the measured figures, for a loaded 2-core machine.  Then the
exactness of the fast paths: the chain-rule derivative from ``DERIVATIVES`` equals ``sympy.diff``,
the project's ``tanh`` is SymPy's value for value, and the 60-digit evaluation by mpmath agrees
with SymPy's where SymPy finishes.  (A spec or formula file that is a device or a FIFO is refused
in tests/test_hostile_files.py.)
"""

from __future__ import annotations

import time

import mpmath
import pytest
import sympy as sp

from lstm_symbolic import notation, pipeline
from lstm_symbolic.core.components import evaluate
from lstm_symbolic.core.derive import derive
from lstm_symbolic.core.functions import DERIVATIVES, MatVec, MissingRuleError, elementwise_diff, sigmoid, tanh
from lstm_symbolic.core.jacobian import jacobian
from lstm_symbolic.formula.parse import FormulaError, parse_formula
from lstm_symbolic.printing.c import c_code
from lstm_symbolic.printing.latex import latex_of, symbol_table
from lstm_symbolic.printing.numpy import numpy_code
from lstm_symbolic.spec.load import SpecError, parse_spec
from lstm_symbolic.verify import check_formula, check_text
from lstm_symbolic.verify.check import Checker

c, x, z, W = sp.symbols("c x z W")


class Clock:
    """``with Clock(limit):`` fails the test when the block takes longer than ``limit`` seconds."""

    def __init__(self, limit: float):
        self.limit = limit

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        if exc[0] is None:
            assert self.seconds < self.limit, f"took {self.seconds:.1f} s, the bound is {self.limit} s"


def nested(fn: str, depth: int, inner: str) -> str:
    return f"{fn}(" * depth + inner + ")" * depth


def chain_spec(n: int, first: str = "tanh(W @ x + h_prev)") -> str:
    lines = ['name = "chain"', 'states = ["h"]', "[inputs]", 'x = "hidden"', "[params]",
             'W = ["hidden", "hidden"]', "[equations]", f'a0 = "{first}"']
    lines += [f'a{k} = "tanh(a{k - 1})"' for k in range(1, n)]
    return "\n".join(lines + [f'h = "a{n - 1}"']) + "\n"


@pytest.fixture(scope="module")
def lstm_checker() -> Checker:
    """The judge of formulas on the built-in LSTM, with its random draws made (not timed)."""
    checker = Checker(pipeline.load_cell("lstm"), "default", False)
    assert checker.draws
    return checker


# -- nested tanh ---------------------------------------------------------------------------------
def test_tanh_nested_100_deep_parses_in_time():
    with Clock(5):
        expr = parse_formula(nested("tanh", 99, "c"))
    assert expr.count(tanh) == 99


@pytest.mark.parametrize("depth", [10, 12, 40])
def test_a_verify_file_of_nested_tanh_is_judged_in_time(lstm_checker, depth):
    """Was 10 s at depth 10 and over 60 s at 12, inside SymPy's assumption queries."""
    with Clock(10):
        verdict = check_formula(lstm_checker, "d_c", nested("tanh", depth, "c"))
    assert verdict.verdict == "wrong" and "misses the term d_c_next" in verdict.diagnosis


def test_the_89_byte_file_end_to_end():
    text = f'cell = "lstm"\n[formulas]\nd_c = "{nested("tanh", 12, "c")}"\n'
    with Clock(60):  # builds the LSTM's draws too
        (verdict,) = check_text(text)
    assert verdict.verdict == "wrong"


def test_a_spec_equation_of_tanh_nested_99_deep_derives_in_time():
    with Clock(20):
        cell = parse_spec(chain_spec(1, first=nested("tanh", 99, "W @ x + h_prev")))
        d = derive(cell)
        jac = jacobian(cell, total=True)
    assert d.adjoint_of("a0").rhs != 0 and len(jac.terms) == 1


def test_functions_nested_deeper_than_100_are_refused_where_they_start():
    """LaTeX calls need no brackets, so the bracket limit did not bound their nesting."""
    assert parse_formula(r"\tanh " * 100 + "c").count(tanh) == 100
    with pytest.raises(FormulaError, match=r"^formula:1:1: functions nested deeper than 100$"):
        parse_formula(r"\tanh " * 101 + "c")
    with pytest.raises(FormulaError, match=r"^formula:1:7: functions nested deeper than 100$"):
        parse_formula("x + 2*" + r"\sigma " * 101 + "c")
    spec = chain_spec(1).replace('a0 = "tanh(W @ x + h_prev)"', "a0 = '" + r"\tanh " * 101 + "(W @ x + h_prev)'")
    with pytest.raises(SpecError, match=r"^spec:8:\d+: functions nested deeper than 100$"):
        parse_spec(spec)


# -- huge numbers --------------------------------------------------------------------------------
@pytest.mark.parametrize("formula", [
    "sigmoid(exp(exp(16)))",  # hung in evalf
    "sigmoid(exp(exp(16*c)))",  # ran out of memory in evalf
    nested("exp", 6, "16"),
    nested("exp", 6, "c") + " + d_c_next",
    "log(exp(exp(exp(16))))",
])
def test_huge_values_are_judged_in_time(lstm_checker, formula):
    with Clock(10):
        verdict = check_formula(lstm_checker, "d_c", formula)
    assert verdict.verdict == "wrong", verdict


def test_numbers_at_60_digits_are_mpmath_values():
    with mpmath.workdps(60):
        assert evaluate(sigmoid(sp.exp(sp.exp(16))), {}, 60) == sp.Float(1, 60)
        assert evaluate(sp.exp(-sp.exp(sp.exp(16))), {}, 60) == 0
        assert evaluate(sp.exp(sp.exp(sp.exp(16))), {}, 60) == sp.oo
        assert evaluate(tanh(-sp.exp(sp.exp(sp.exp(16)))), {}, 60) == sp.Float(-1, 60)
        assert abs(complex(evaluate(sp.log(sp.Integer(-1), evaluate=False), {}, 60)) - complex(0, mpmath.pi)) < 1e-15
    for expr in (sigmoid(sp.Rational(1, 3)), tanh(sp.Rational(-5, 7)), sp.exp(sp.Rational(3, 2)) * sp.log(3)):
        want = expr.rewrite(sp.exp).evalf(60) if isinstance(expr, sigmoid) else expr.evalf(60)
        assert abs(evaluate(expr, {}, 60) - want) < sp.Float(10) ** -55


# -- long cells ----------------------------------------------------------------------------------
def test_a_chain_of_1000_equations_derives_in_seconds():
    """Was over 30 s (sympy.diff with assumption queries, a copy of the stored values and of the
    declaration ranks per equation, a product re-sorted at every step of the Jacobian)."""
    with Clock(45):
        cell = parse_spec(chain_spec(1000))
        d = derive(cell)
        jac = jacobian(cell)
    assert d.adjoint_of("a0").rhs == sp.Symbol("d_a1") * (1 - sp.Symbol("a1") ** 2)
    assert jac.diagonal == sp.Mul(*[1 - sp.Symbol(f"a{k}") ** 2 for k in range(1000)])


def test_verify_against_a_200_equation_spec_in_time(tmp_path):
    (tmp_path / "chain.toml").write_text(chain_spec(200))
    text = ('cell = "chain.toml"\n[formulas]\nd_a0 = "d_a1*(1 - a1**2)"\n'
            'd_a198 = "d_h*(1 - h**2)"\nd_a100 = "d_a101*(1 - a101**2)"\n')
    load = lambda name: pipeline.load_cell(str(tmp_path / name))  # noqa: E731
    with Clock(60):
        verdicts = check_text(text, "f.toml", load)
    assert [v.verdict for v in verdicts] == ["holds", "holds", "holds"]


@pytest.mark.slow
def test_verify_against_a_1000_equation_spec_in_time(tmp_path):
    (tmp_path / "chain.toml").write_text(chain_spec(1000))
    text = 'cell = "chain.toml"\n[formulas]\nd_a0 = "d_a1*(1 - a1**2)"\nd_a998 = "d_h*(1 - h**2)"\n'
    load = lambda name: pipeline.load_cell(str(tmp_path / name))  # noqa: E731
    with Clock(120):
        verdicts = check_text(text, "f.toml", load)
    assert [v.verdict for v in verdicts] == ["holds", "holds"]


# -- the fast paths are exact ----------------------------------------------------------------------
EXPRESSIONS = [
    tanh(tanh(tanh(c))),
    sigmoid(z) * tanh(c) + c**2,
    sp.exp(-c) * sp.log(1 + c**2) / (1 + sigmoid(c * z)),
    (1 - tanh(c) ** 2) ** 3 * c ** sp.Rational(-1, 2),
    z * MatVec(W, x) + tanh(MatVec(W, x)) * c,
    sp.tanh(c) * sp.exp(sp.tanh(c)),
]


@pytest.mark.parametrize("expr", EXPRESSIONS)
@pytest.mark.parametrize("wrt", [c, z])
def test_the_chain_rule_equals_sympy_diff(expr, wrt):
    """Equal to ``sympy.diff`` (which takes the rules from the functions' fdiff), exactly."""
    atom = sp.Dummy()
    opaque = expr.xreplace({MatVec(W, x): atom})
    want = sp.diff(opaque, wrt).xreplace({atom: MatVec(W, x)})
    assert sp.expand(elementwise_diff(expr, wrt) - want) == 0


def test_a_linear_atom_is_a_variable_of_its_own():
    expr = z * MatVec(W, x) + tanh(MatVec(W, x))
    assert elementwise_diff(expr, x) == 0 and elementwise_diff(expr, W) == 0
    assert elementwise_diff(expr, MatVec(W, x)) == z + 1 - tanh(MatVec(W, x)) ** 2


def test_the_rules_agree_with_sympys_own_functions():
    """``DERIVATIVES`` against SymPy's tanh and σ written with exp, at 50 digits."""
    u = sp.Symbol("u")
    for ours, theirs in ((tanh(u), sp.tanh(u)), (sigmoid(u), 1 / (1 + sp.exp(-u)))):
        rule = DERIVATIVES[type(ours)](theirs, u)
        for point in (sp.Rational(-7, 3), sp.Rational(1, 5), sp.Integer(4)):
            gap = (rule - sp.diff(theirs, u)).subs(u, point).evalf(50)
            assert abs(gap) < sp.Float(10) ** -45


def test_a_function_without_a_rule_or_a_variable_exponent_is_refused():
    with pytest.raises(MissingRuleError, match="no derivative rule for 'sin'"):
        elementwise_diff(sp.sin(c) * z, c)
    with pytest.raises(MissingRuleError, match="variable exponent"):
        elementwise_diff(c**z, z)


def test_tanh_is_sympys_tanh_as_a_value_and_in_print():
    assert tanh(0) == 0 and tanh(c) != sp.tanh(c)
    assert abs(tanh(sp.Rational(1, 3)).evalf(40) - sp.tanh(sp.Rational(1, 3)).evalf(40)) < sp.Float(10) ** -38
    assert sp.diff(tanh(c), c) == 1 - tanh(c) ** 2
    assert (tanh(c).rewrite(sp.exp) - sp.tanh(c).rewrite(sp.exp)).equals(0)
    assert numpy_code(1 - tanh(c) ** 2) == "1 - np.tanh(c)**2"
    assert c_code(1 - tanh(c) ** 2) == "1 - pow(tanh(c), 2)"
    assert c_code(tanh(c), "float") == "tanhf(c)"
    cell = pipeline.load_cell("lstm")
    table = symbol_table(cell, notation.get("default"), derive(cell))
    assert latex_of(1 - tanh(c) ** 2, table) == r"1 - \tanh^{2}(c_{t})"
