"""Primitives of the element-wise algebra: the bottom layer of the pipeline.

A vector quantity is a SymPy ``Symbol`` standing for one of its components, so every
right-hand side of a cell is an element-wise expression.  The only pieces that are not
element-wise are linear terms ``W @ v``, kept as the atom :class:`MatVec` with fixed rules
(``d_W += d_a v^T``, ``d_v += W^T d_a``).  :class:`MatTVec` and :class:`Outer` are the two
forms those rules produce.

Every non-linear primitive has its derivative in :data:`DERIVATIVES`, written in terms of
the primitive's own output ``y`` the way articles write it; a primitive without a rule is
refused loudly by :func:`check_primitives`.
"""

from __future__ import annotations

import sympy as sp

from .errors import UserError


class sigmoid(sp.Function):  # noqa: N801 - SymPy convention: functions are lower case
    """The logistic sigmoid, σ(x) = 1 / (1 + e^{-x})."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x is sp.S.Zero:  # not x.is_zero: the assumptions system is slow on large arguments
            return sp.S.Half
        return None

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise sp.ArgumentIndexError(self, argindex)
        return DERIVATIVES[sigmoid](self, self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sp.exp(-x))

    def _eval_evalf(self, prec):
        return (1 / (1 + sp.exp(-self.args[0])))._eval_evalf(prec)


# f'(x) in terms of y = f(x) (and x where the output does not suffice).
DERIVATIVES = {
    sigmoid: lambda y, x: y * (1 - y),  # σ' = σ(1 − σ)
    sp.tanh: lambda y, x: 1 - y**2,  # tanh' = 1 − tanh²
    sp.exp: lambda y, x: y,  # exp' = exp
    sp.log: lambda y, x: 1 / x,  # log' = 1/x
}

# The element-wise primitives a cell or a formula may call, by their written name.
PRIMITIVES = {"sigmoid": sigmoid, "tanh": sp.tanh, "exp": sp.exp, "log": sp.log}


class MissingRuleError(UserError, ValueError):
    """A function occurs for which no derivative rule is registered."""


class _Linear(sp.Function):
    """Base of the linear atoms: opaque to element-wise differentiation."""

    nargs = 2
    is_commutative = True


class MatVec(_Linear):
    """``W @ v``: matrix W (a Symbol) times the vector v (a Symbol)."""


class MatTVec(_Linear):
    """``W^T @ d``: the transposed product that carries an adjoint back through ``W @ v``."""


class Outer(_Linear):
    """``d v^T``: the outer product that a weight gradient accumulates."""


LINEAR_ATOMS = (MatVec, MatTVec, Outer)


def linear_atoms(expr: sp.Expr) -> list[sp.Expr]:
    """The MatVec atoms of ``expr`` in a deterministic order."""
    return list(sp.ordered(expr.atoms(MatVec)))


def check_primitives(expr: sp.Expr) -> None:
    """Raise :class:`MissingRuleError` naming any function without a derivative rule."""
    for fn in expr.atoms(sp.Function):
        if isinstance(fn, LINEAR_ATOMS):
            continue
        if type(fn) not in DERIVATIVES:
            raise MissingRuleError(
                f"no derivative rule for '{type(fn).__name__}': add it to "
                "lstm_symbolic.functions.DERIVATIVES"
            )


def elementwise_diff(expr: sp.Expr, wrt: sp.Expr) -> sp.Expr:
    """∂expr/∂wrt with every MatVec atom treated as an independent variable.

    ``wrt`` is a Symbol or one of the MatVec atoms of ``expr``.
    """
    atoms = linear_atoms(expr)
    stand_ins = {a: sp.Dummy(f"lin{k}") for k, a in enumerate(atoms)}
    opaque = expr.xreplace(stand_ins)
    target = stand_ins.get(wrt, wrt)
    back = {v: k for k, v in stand_ins.items()}
    return sp.diff(opaque, target).xreplace(back)
