"""Primitives of the element-wise algebra: the bottom layer of the pipeline.

A vector quantity is a SymPy ``Symbol`` standing for one of its components, so every
right-hand side of a cell is an element-wise expression.  The only pieces that are not
element-wise are linear terms ``W @ v``, kept as the atom :class:`MatVec` with fixed rules
(``d_W += d_a v^T``, ``d_v += W^T d_a``).  :class:`MatTVec` and :class:`Outer` are the two
forms those rules produce.

Every non-linear primitive (:mod:`.primitives`) has its derivative in :data:`DERIVATIVES`, written in terms of
the primitive's own output ``y`` the way articles write it; a primitive without a rule is
refused loudly by :func:`check_primitives`.
"""

from __future__ import annotations

import sympy as sp

from ..errors import UserError
from .primitives import (  # noqa: F401 - the registry, re-exported: the layer above reads it here
    DERIVATIVES,
    PIECEWISE,
    PRIMITIVES,
    SPELLINGS,
    WRITTEN,
    Primitive,
    absolute,
    arities,
    clip,
    hard_sigmoid,
    log_sigmoid,
    maximum,
    minimum,
    partials,
    relu,
    sigmoid,
    softplus,
    sqrt,
    step,
    tanh,
)


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


class Reduction(_Linear):
    """A reduction across the units of one example: a per-example scalar that broadcasts back when it
    meets a vector.  Linear, so the reverse sweep has fixed rules for it (:mod:`.derive`)."""

    nargs = 1
    mean = False


class unit_sum(Reduction):  # noqa: N801 - written ``sum``
    """``sum(v)`` = Σ_k v_k.  Its adjoint spreads back unchanged: ``d_v += d_r`` (broadcast)."""


class unit_mean(Reduction):  # noqa: N801 - written ``mean``
    """``mean(v)`` = Σ_k v_k / n.  Its adjoint spreads back divided: ``d_v += d_r / n``."""

    mean = True


class Units(sp.Function):
    """n, the number of units a reduction runs over (the hidden size): ``Units()`` has no arguments."""

    nargs = 0
    is_commutative = True
    is_positive = True


REDUCTIONS = {"sum": unit_sum, "mean": unit_mean}  # by their written names
UNITS = "H"  # how formulas write Units(): the generated code's hidden size, a name no spec may take


def linear_atoms(expr: sp.Expr) -> list[sp.Expr]:
    """The MatVec atoms of ``expr`` in a deterministic order."""
    return list(sp.ordered(expr.atoms(MatVec)))


def check_primitives(expr: sp.Expr) -> None:
    """Raise :class:`MissingRuleError` naming any function without a derivative rule."""
    for fn in expr.atoms(sp.Function):
        if isinstance(fn, LINEAR_ATOMS + (Reduction, Units)):
            continue
        if type(fn) not in DERIVATIVES:
            raise MissingRuleError(
                f"no derivative rule for '{type(fn).__name__}': add it to "
                "lstm_symbolic.core.functions.DERIVATIVES"
            )


def elementwise_diff(expr: sp.Expr, wrt: sp.Expr) -> sp.Expr:
    """∂expr/∂wrt by the chain rule, each function's derivative from :data:`DERIVATIVES`; every
    linear atom is an independent variable (``wrt`` is a Symbol or one of them).

    The same sums and products as ``sympy.diff`` gives, without its general machinery: work
    linear in the size of ``expr`` (each shared sub-expression is differentiated once).
    """
    found: dict[sp.Expr, bool] = {}
    done: dict[sp.Expr, sp.Expr] = {}

    def has(e: sp.Expr) -> bool:
        if e not in found:
            found[e] = e == wrt or (not isinstance(e, LINEAR_ATOMS + (Reduction,)) and any(has(a) for a in e.args))
        return found[e]

    def d(e: sp.Expr) -> sp.Expr:
        if e == wrt:
            return sp.S.One
        if not has(e):
            return sp.S.Zero
        if e not in done:
            done[e] = _chain_rule(e, d)
        return done[e]

    return d(expr)


def _chain_rule(e: sp.Expr, d) -> sp.Expr:
    """The derivative of ``e`` (a sum, product, power or registered function) given ``d``,
    the derivative of its arguments."""
    if e.is_Add:
        return sp.Add(*[d(a) for a in e.args])
    if e.is_Mul:
        args, parts = list(e.args), [d(a) for a in e.args]
        return sp.Add(*[sp.Mul(*args[:k], da, *args[k + 1 :]) for k, da in enumerate(parts) if da != 0])
    if e.is_Pow:
        base, n = e.args
        if d(n) != 0:
            raise MissingRuleError(f"no derivative rule for a power with a variable exponent: {e}")
        return n * base ** (n - 1) * d(base)
    if type(e) in DERIVATIVES:
        return sp.Add(*[p * da for p, da in zip(partials(e), map(d, e.args), strict=True) if da != 0])
    raise MissingRuleError(f"no derivative rule for '{type(e).__name__}': add it to "
                           "lstm_symbolic.core.functions.DERIVATIVES")


# The two atoms only formulas (verify's input) contain.


class ColumnSlice(sp.Function):
    """``W[:, start:stop]``: columns of a stacked weight (``Wf[:, :n_a]``).

    Stored as ``(W, start, stop)`` with an open start as 0 and an open stop as ``oo``;
    :attr:`start` and :attr:`stop` give ``None`` for open ends.
    """

    nargs = 3
    is_commutative = True

    @classmethod
    def of(cls, matrix: sp.Expr, start: sp.Expr | None, stop: sp.Expr | None) -> ColumnSlice:
        return cls(matrix, sp.S.Zero if start is None else start, sp.oo if stop is None else stop)

    @property
    def matrix(self) -> sp.Expr:
        return self.args[0]

    @property
    def start(self) -> sp.Expr | None:
        return None if self.args[1] == 0 else self.args[1]

    @property
    def stop(self) -> sp.Expr | None:
        return None if self.args[2] == sp.oo else self.args[2]

    def _sympystr(self, printer) -> str:
        ends = ["" if e is None else printer._print(e) for e in (self.start, self.stop)]
        return f"{printer._print(self.matrix)}[:, {ends[0]}:{ends[1]}]"


class BatchSum(sp.Function):
    """``np.sum(X, axis=1, keepdims=True)``: the sum of a per-example quantity over the batch."""

    nargs = 1
