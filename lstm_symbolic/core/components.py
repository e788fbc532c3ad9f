"""Component-level expansion of a cell at small sizes: the exact oracle (Cell → SymPy scalars).

Every vector becomes an explicit column of scalars and every ``W @ v`` an explicit sum, so
that ``sympy.diff`` of a scalar loss gives gradients that owe nothing to the vector rules of
:mod:`derive`.  The same evaluation instantiates the derived vector formulas, for comparison,
and the formulas ``verify`` reads (with column slices and batch sums).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import sympy as sp

from .. import naming
from .cells import Cell
from .derive import Derivation
from .functions import BatchSum, ColumnSlice, MatTVec, MatVec, Outer, Primitive, Reduction, Units, sigmoid, tanh
from .scalars import apply_function


def symbols_for(name: str, shape: tuple[str, ...], sizes: dict[str, int]) -> sp.Matrix:
    """A matrix of fresh component symbols ``name[k]`` / ``name[r,c]`` for a quantity."""
    rows = sizes[shape[0]]
    cols = sizes[shape[1]] if len(shape) == 2 else 1
    if len(shape) == 1:
        return sp.Matrix(rows, 1, lambda r, _: sp.Symbol(f"{name}[{r}]"))
    return sp.Matrix(rows, cols, lambda r, c: sp.Symbol(f"{name}[{r},{c}]"))


def leaf_env(cell: Cell, sizes: dict[str, int], seeds: dict[str, sp.Symbol] | None = None) -> dict:
    """Component symbols for the inputs, previous states, parameters and (optionally) seeds."""
    env = {}
    for q in cell.quantities:
        if q.kind in ("input", "state", "param"):
            env[q.symbol] = symbols_for(q.name, q.shape, sizes)
    for state, seed in (seeds or {}).items():
        env[seed] = symbols_for(seed.name, cell.state_shape(state), sizes)
    env[Units()] = sp.Integer(sizes["hidden"])
    return env


class ValueShapeError(ValueError):
    """A formula cannot be evaluated: operands of different shapes, a bad slice, 1/0."""


def _dims(shape) -> str:
    return "×".join(str(n) for n in shape)


_NUMPY_FUNCS = {sigmoid: lambda a: 1 / (1 + np.exp(-a)), tanh: np.tanh, sp.tanh: np.tanh, sp.exp: np.exp,
                sp.log: np.log}


def _bound(expr, env, stop: bool, value) -> int | None:
    if (stop and expr == sp.oo) or (not stop and expr == 0):
        return None
    got = value(expr, env)
    number = float(got) if np.ndim(got) == 0 and not isinstance(got, sp.MatrixBase) else None
    if number is None or not number.is_integer():
        raise ValueShapeError(f"a slice bound must be a whole number, not {expr}")
    return int(number)


class SymPyArrays:
    """Values as SymPy matrices, exactly (or, with ``digits``, Floats computed by mpmath); one
    example, so the batch sum is the identity.  ``opaque``: see :func:`~lstm_symbolic.core.scalars.apply_function`."""

    mismatch = sp.ShapeError

    def __init__(self, digits: int | None = None, opaque: bool = False):
        self.digits, self.opaque = digits, opaque

    def number(self, expr: sp.Expr):
        return expr if self.digits is None else sp.Float(expr, self.digits)

    add = staticmethod(lambda a, b: _ew_add(a, b))
    mul = staticmethod(lambda a, b: _ew_mul(a, b))
    transpose = staticmethod(lambda m: m.T)
    batch_sum = staticmethod(lambda x: x)

    @staticmethod
    def reduce(x, mean: bool):
        """Across the units of one example: a number."""
        if not isinstance(x, sp.MatrixBase):
            raise ValueShapeError("a reduction across the units of a number")
        return sp.Add(*x) / (x.rows if mean else 1)

    @staticmethod
    def power(base, e):
        return base.applyfunc(lambda v: v**e) if isinstance(base, sp.MatrixBase) else base**e

    def apply(self, fn, *args):
        """``fn`` element-wise on its arguments (a number goes with any shape)."""
        shape = next((a.shape for a in args if isinstance(a, sp.MatrixBase)), None)
        if shape is None:
            return apply_function(fn, list(args), self.digits, self.opaque)
        if any(isinstance(a, sp.MatrixBase) and a.shape != shape for a in args):
            raise ValueShapeError(f"shape mismatch: {fn.__name__} of different shapes")
        return sp.Matrix(*shape, lambda i, j: apply_function(
            fn, [a[i, j] if isinstance(a, sp.MatrixBase) else a for a in args], self.digits, self.opaque))

    @staticmethod
    def zeros(shape: tuple[int, int]):
        return sp.zeros(*shape)


class NumPyArrays:
    """Values as float64 NumPy arrays, one column per example; ``d @ v.T`` and the batch sum add
    the examples up."""

    mismatch = ValueError
    number = staticmethod(float)
    add, mul, power = np.add, np.multiply, np.power  # ufuncs: not bound as methods
    transpose = staticmethod(np.transpose)
    batch_sum = staticmethod(lambda x: np.sum(x, axis=1, keepdims=True))
    reduce = staticmethod(lambda x, mean: (np.mean if mean else np.sum)(x, axis=0, keepdims=True))
    @staticmethod
    def apply(fn, *args):
        return _NUMPY_FUNCS[fn](*args) if fn in _NUMPY_FUNCS else fn.value(np, *args)
    zeros = staticmethod(np.zeros)


EXACT, NUMPY = SymPyArrays(), NumPyArrays()


def evaluate(expr: sp.Expr, env: dict, digits: int | None = None, *, opaque: bool = False):
    """``expr`` on SymPy matrices (``env``: Symbol → Matrix or number), exactly: element-wise
    apart from MatVec, MatTVec and Outer; column slices; the batch sum (one example: itself).
    With ``digits`` (and ``env`` of Floats), numerically: every number and function value is a
    Float of that precision, computed by mpmath (never SymPy's evalf of a symbolic tree).
    ``opaque``: for values that are numbers, each function value a Symbol (see :func:`.scalars.apply_function`)."""
    return value_of(expr, env, EXACT if digits is None and not opaque else SymPyArrays(digits, opaque))


def numpy_value(expr: sp.Expr, env: dict):
    """``expr`` on NumPy arrays (columns are examples); ``d @ v.T`` sums over the batch."""
    return value_of(expr, env, NUMPY)


def value_of(expr: sp.Expr, env: dict, arrays: SymPyArrays | NumPyArrays):
    """The one evaluator: ``expr`` on the values of ``env`` (Symbol → value), with ``arrays``
    saying what a value is (:class:`SymPyArrays` or :class:`NumPyArrays`)."""
    if expr in env:
        return env[expr]
    if expr.is_Number or expr in (sp.zoo, sp.nan):
        if not expr.is_finite:
            raise ValueShapeError("the formula divides by zero (its value is not finite)")
        return arrays.number(expr)
    value = partial(value_of, arrays=arrays)
    if isinstance(expr, ColumnSlice):
        return slice_value(expr, env, value)
    args = [value(a, env) for a in expr.args]
    try:
        return _combine(expr, args, arrays)
    except ValueShapeError:
        raise
    except arrays.mismatch as exc:
        raise ValueShapeError(f"shape mismatch: {exc}") from None


def _combine(expr, args, arrays):
    if isinstance(expr, sp.Add):
        return fold_values(args, arrays.add)
    if isinstance(expr, sp.Mul):
        return fold_values(args, arrays.mul)
    if isinstance(expr, sp.Pow):
        return arrays.power(*args)
    if type(expr) in _NUMPY_FUNCS or isinstance(expr, Primitive):
        return arrays.apply(type(expr), *args)
    if isinstance(expr, (MatVec, MatTVec, Outer)):
        return linear_value(expr, *args, transpose=arrays.transpose)
    if isinstance(expr, BatchSum):
        return arrays.batch_sum(args[0])
    if isinstance(expr, Reduction):
        return arrays.reduce(args[0], expr.mean)
    if isinstance(expr, Units):
        raise ValueShapeError("the number of units n is not known here")
    raise ValueShapeError(f"cannot evaluate {type(expr).__name__}")


def fold_values(values, op: Callable):
    out = values[0]
    for v in values[1:]:
        out = op(out, v)
    return out


def _ew_add(a, b):
    if isinstance(a, sp.MatrixBase) != isinstance(b, sp.MatrixBase):
        m, s = (a, b) if isinstance(a, sp.MatrixBase) else (b, a)
        return m.applyfunc(lambda v: v + s)
    if isinstance(a, sp.MatrixBase) and a.shape != b.shape:
        raise ValueShapeError(f"shape mismatch: sum of {_dims(a.shape)} and {_dims(b.shape)}")
    return a + b


def _ew_mul(a, b):
    if isinstance(a, sp.MatrixBase) and isinstance(b, sp.MatrixBase):
        if a.shape != b.shape:
            raise ValueShapeError(f"shape mismatch: element-wise product of {_dims(a.shape)} and {_dims(b.shape)}")
        return a.multiply_elementwise(b)
    return a * b


def _is_array(value) -> bool:
    return isinstance(value, (sp.MatrixBase, np.ndarray)) and np.ndim(value) == 2


def linear_value(expr, w, v, transpose: Callable):
    """``W @ v``, ``W.T @ v``, ``d @ v.T``; a number as the vector of a product is a constant
    vector (what ``sigmoid(0)`` becomes when a diagnosis sets a gradient to zero)."""
    if isinstance(expr, Outer):
        if not (_is_array(w) and _is_array(v)):
            raise ValueShapeError("shape mismatch: an outer product of a number")
        return w @ transpose(v)
    if not _is_array(w):
        raise ValueShapeError("shape mismatch: a number in place of a matrix")
    m = w if isinstance(expr, MatVec) else transpose(w)
    if not _is_array(v):
        n = m.shape[1]
        v = sp.ones(n, 1) * v if isinstance(m, sp.MatrixBase) else np.full((n, 1), float(v))
    return m @ v


def slice_value(expr: ColumnSlice, env, value):
    w = value(expr.args[0], env)
    start = _bound(expr.args[1], env, False, value)
    stop = _bound(expr.args[2], env, True, value)
    return w[:, start:stop]


def forward_env(cell: Cell, env: dict, arrays: SymPyArrays | NumPyArrays = EXACT) -> dict:
    """``env`` extended with every assigned quantity of one step (a value already given is kept)."""
    env = dict(env)
    for eq in cell.equations:
        if eq.lhs not in env:
            env[eq.lhs] = value_of(eq.rhs, env, arrays)
    return env


def backward_env(derivation: Derivation, env: dict, arrays: SymPyArrays | NumPyArrays = EXACT) -> dict:
    """``env`` (forward values and seeds) extended with every adjoint and parameter gradient; a
    vector (bias) gradient is summed over the batch."""
    env = dict(env)
    for adj in derivation.adjoints:
        if adj.name not in env:
            env[adj.name] = value_of(adj.rhs, env, arrays) if adj.rhs != 0 else _zeros_like(env, adj.of, arrays)
    for grad in derivation.param_grads:
        got = value_of(grad.rhs, env, arrays) if grad.rhs != 0 else arrays.zeros(env[grad.param].shape)
        env[grad.name] = arrays.batch_sum(got) if grad.kind == "vector" else got
    return env


def _zeros_like(env: dict, of: sp.Expr, arrays) -> object:
    return arrays.zeros(env[of].shape if of in env else (1, 1))


def exact_mismatches(derivation: Derivation, sizes: dict[str, int] | None = None) -> list[str]:
    """Leaves (inputs, previous states, parameters) whose derived gradient differs from
    ``sympy.diff`` of the component-level loss Σ_s ⟨seed_s, s⟩ of one step - exactly."""
    cell = derivation.cell
    env = forward_env(cell, leaf_env(cell, sizes or cell.oracle_sizes(), derivation.seeds))
    loss = sum((env[seed].T * env[sp.Symbol(s)])[0] for s, seed in derivation.seeds.items())
    derived = backward_env(derivation, env)
    bad = []
    for q in cell.quantities:
        if q.kind in ("input", "state", "param"):
            want = env[q.symbol].applyfunc(lambda s: sp.diff(loss, s))
            got = derived[sp.Symbol(naming.adjoint(q.name))]
            if (got - want).applyfunc(sp.expand) != sp.zeros(*want.shape):
                bad.append(q.name)
    return bad
