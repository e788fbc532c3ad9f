"""Guard tests that bite: every primitive's derivative comes from ``functions.DERIVATIVES``.

For each registered primitive a one-equation cell using it is derived; replacing the rule with a
wrong one changes the derivation (so no other rule - SymPy's own, a cache - stands in for it),
and putting the rule back gives the right derivation again.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sympy as sp

from lstm_symbolic import naming
from lstm_symbolic.core import functions
from lstm_symbolic.core.cells import make_cell
from lstm_symbolic.core.components import exact_mismatches
from lstm_symbolic.core.derive import derive
from lstm_symbolic.core.jacobian import jacobian
from lstm_symbolic.formula import grammar

x, h_prev, W = sp.symbols("x h_prev W")


def one_step(fn) -> object:
    """h = fn(W @ x + h_prev): the smallest cell that calls ``fn`` (``exp`` of a square for ``log``)."""
    z = functions.MatVec(W, x) + h_prev
    constants = [sp.Rational(k, 3) for k in range(-1, 2)]  # the other arguments of max, clip, ...
    rhs = fn(z**2 + 1) if fn is sp.log else fn(z, *constants[: functions.arities(fn)[0] - 1])
    if fn is functions.step:  # its derivative is 0: h = z * step(z, 0) (relu) still reaches W
        rhs = z * rhs
    return make_cell(f"one-{fn.__name__}", "one primitive", inputs={"x": ("input",)}, states=("h",),
                     params={"W": ("hidden", "input")}, equations=[("h", rhs)])


def backward(cell) -> tuple:
    """Every adjoint and gradient, and the Jacobian d h_t / d h_{t-1}."""
    d = derive.__wrapped__(cell)  # not the cache: every call derives again
    return (tuple((a.name, a.rhs) for a in d.adjoints) + tuple((g.name, g.rhs) for g in d.param_grads),
            str(jacobian(cell).terms))


def _wrong(y, *args):
    """A wrong rule of any number of arguments."""
    return 7 * y + 3 if len(args) == 1 else tuple(7 * y + 3 + k for k in range(len(args)))


def test_every_primitive_has_a_rule():
    assert set(functions.PRIMITIVES.values()) <= set(functions.DERIVATIVES)


@pytest.mark.parametrize("fn", list(functions.DERIVATIVES), ids=lambda f: f"{f.__module__}.{f.__name__}")
def test_a_wrong_rule_changes_the_derivation(monkeypatch, fn):
    cell = one_step(fn)
    right = backward(cell)
    assert exact_mismatches(derive.__wrapped__(cell)) == []
    with monkeypatch.context() as patch:
        patch.setitem(functions.DERIVATIVES, fn, _wrong)
        wrong = backward(cell)
        assert wrong[0] != right[0], f"the rule of {fn.__name__} is not the one the derivation uses"
        assert wrong[1] != right[1], f"the rule of {fn.__name__} is not the one the Jacobian uses"
        assert exact_mismatches(derive.__wrapped__(cell)) != [], "the exact oracle follows the wrong rule"
    assert backward(cell) == right


# -- one naming module ---------------------------------------------------------------------------
PACKAGE = Path(__file__).resolve().parents[1] / "lstm_symbolic"
# files still spelling d_ themselves (none: use naming.is_adjoint).
NOT_YET: set[str] = set()


def test_the_formula_language_reads_the_names_naming_calls_readable():
    assert re.search(r"^NAME: /(.*)/$", grammar.PLAIN, re.M).group(1) == naming.FORMULA_NAME.pattern


def test_only_naming_knows_how_an_adjoint_is_spelled():
    spelled = re.compile(r"""startswith\(\s*["']d_["']""")
    found = [f"{p.relative_to(PACKAGE)}:{n}" for p in sorted(PACKAGE.rglob("*.py"))
             if str(p.relative_to(PACKAGE)) not in NOT_YET | {"naming/__init__.py"}
             for n, line in enumerate(p.read_text().splitlines(), 1) if spelled.search(line)]
    assert found == [], "use naming.is_adjoint / naming.primal"
