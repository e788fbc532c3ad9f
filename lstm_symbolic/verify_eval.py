"""Values of formulas for ``verify``: exact on components (SymPy) and fast in NumPy.

Part of ``verify``.  A formula in a notation's names is evaluated in an environment of the
notation's names: every vector a column (NumPy: one column per example), ``*`` element-wise,
``W @ v``, ``W.T @ d``, ``d @ v.T`` (summed over the batch's columns), column slices of stacked
weights, and the batch sum (the identity for one example).  Nothing here evaluates Python.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import sympy as sp

from .derive import Derivation
from .formula_values import BatchSum, ColumnSlice
from .functions import MatTVec, MatVec, Outer, sigmoid
from .verify_names import Names


class ValueShapeError(ValueError):
    """A formula cannot be evaluated: operands of different shapes, a bad slice, 1/0."""


def _dims(shape) -> str:
    return "×".join(str(n) for n in shape)


def _apply(fn, x):
    """``fn(x)`` on one component: evaluated when ``x`` holds Floats (the 60-digit draw; SymPy
    keeps ``sigmoid(0.3)`` unevaluated, so σ is written out), else left as an atom - asking SymPy
    whether a large exact argument is zero costs seconds."""
    if not x.atoms(sp.Float):
        return fn(x, evaluate=False)
    return 1 / (1 + sp.exp(-x)) if fn is sigmoid else fn(x)


_SYMPY_FUNCS = (sigmoid, sp.tanh, sp.exp, sp.log)
_NUMPY_FUNCS = {sigmoid: lambda a: 1 / (1 + np.exp(-a)), sp.tanh: np.tanh, sp.exp: np.exp, sp.log: np.log}


def _bound(expr, env, stop: bool, value) -> int | None:
    if (stop and expr == sp.oo) or (not stop and expr == 0):
        return None
    got = value(expr, env)
    number = float(got) if np.ndim(got) == 0 and not isinstance(got, sp.MatrixBase) else None
    if number is None or not number.is_integer():
        raise ValueShapeError(f"a slice bound must be a whole number, not {expr}")
    return int(number)


def component_value(expr: sp.Expr, env: dict):
    """``expr`` on SymPy matrices (``env``: user Symbol → Matrix or number); exact."""
    if expr in env:
        return env[expr]
    if expr.is_Number or expr in (sp.zoo, sp.nan):
        if not expr.is_finite:
            raise ValueShapeError("the formula divides by zero (its value is not finite)")
        return expr
    args = [component_value(a, env) for a in expr.args] if not isinstance(expr, ColumnSlice) else []
    try:
        return _combine_sympy(expr, args, env)
    except sp.ShapeError as exc:
        raise ValueShapeError(f"shape mismatch: {exc}") from None


def _combine_sympy(expr, args, env):
    if isinstance(expr, sp.Add):
        return _fold(args, _ew_add)
    if isinstance(expr, sp.Mul):
        return _fold(args, _ew_mul)
    if isinstance(expr, sp.Pow):
        base, e = args
        return base.applyfunc(lambda v: v**e) if isinstance(base, sp.MatrixBase) else base**e
    if type(expr) in _SYMPY_FUNCS:
        fn = type(expr)
        if isinstance(args[0], sp.MatrixBase):
            return args[0].applyfunc(lambda x: _apply(fn, x))
        return _apply(fn, args[0])
    if isinstance(expr, (MatVec, MatTVec, Outer)):
        return _linear(expr, *args, transpose=lambda m: m.T)
    if isinstance(expr, ColumnSlice):
        return _slice(expr, env, component_value)
    if isinstance(expr, BatchSum):
        return args[0]
    raise ValueShapeError(f"cannot evaluate {type(expr).__name__}")


def _fold(values, op: Callable):
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


def _linear(expr, w, v, transpose: Callable):
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


def _slice(expr: ColumnSlice, env, value):
    w = value(expr.args[0], env)
    start = _bound(expr.args[1], env, False, value)
    stop = _bound(expr.args[2], env, True, value)
    return w[:, start:stop]


def numpy_value(expr: sp.Expr, env: dict):
    """``expr`` on NumPy arrays (columns are examples); ``d @ v.T`` sums over the batch."""
    if expr in env:
        return env[expr]
    if expr.is_Number or expr in (sp.zoo, sp.nan):
        if not expr.is_finite:
            raise ValueShapeError("the formula divides by zero (its value is not finite)")
        return float(expr)
    if isinstance(expr, ColumnSlice):
        return _slice(expr, env, numpy_value)
    args = [numpy_value(a, env) for a in expr.args]
    try:
        if isinstance(expr, sp.Add):
            return _fold(args, np.add)
        if isinstance(expr, sp.Mul):
            return _fold(args, np.multiply)
        if isinstance(expr, sp.Pow):
            return np.power(args[0], args[1])
        if type(expr) in _NUMPY_FUNCS:
            return _NUMPY_FUNCS[type(expr)](args[0])
        if isinstance(expr, (MatVec, MatTVec, Outer)):
            return _linear(expr, *args, transpose=np.transpose)
        if isinstance(expr, BatchSum):
            return np.sum(args[0], axis=1, keepdims=True)
    except ValueError as exc:
        raise ValueShapeError(f"shape mismatch: {exc}") from None
    raise ValueShapeError(f"cannot evaluate {type(expr).__name__}")


def user_env(names: Names, internal: dict[str, object], sizes: dict[str, int], *, exact: bool) -> dict:
    """The notation's names (Symbols) → values, from ``internal`` (internal name → value):
    stacks joined (``concat`` = [h_prev; x], ``Wf`` = [U_f W_f]), sizes as whole numbers."""
    if exact:
        rows, cols = (lambda ps: sp.Matrix.vstack(*ps)), (lambda ps: sp.Matrix.hstack(*ps))
    else:
        rows, cols = np.vstack, np.hstack
    env = {}
    for user, name in names.renames.items():
        if name in internal:
            env[sp.Symbol(user)] = internal[name]
    for user, (how, parts) in names.stacked.items():
        if all(p in internal for p in parts):
            env[sp.Symbol(user)] = (rows if how == "rows" else cols)([internal[p] for p in parts])
    for user, size in names.sizes.items():
        env[sp.Symbol(user)] = sp.Integer(sizes[size]) if exact else sizes[size]
    return env


def as_floats(leaves: dict, digits: int) -> dict:
    """Exact leaves as ``digits``-digit SymPy Floats (the same draw, evaluated numerically)."""
    return {k: v.applyfunc(lambda r: sp.Float(r, digits)) for k, v in leaves.items()}


def random_leaves(derivation: Derivation, sizes: dict[str, int], rng, *, exact: bool, batch: int = 1) -> dict:
    """Random values of the inputs, previous states, parameters and seeds (internal names).

    Exact: SymPy matrices of small non-zero rationals (one example); otherwise NumPy arrays,
    vectors with one column per example.
    """
    cell = derivation.cell
    shapes = {q.name: q.shape for q in cell.quantities if q.kind in ("input", "state", "param")}
    shapes.update({str(s): ("hidden",) for s in derivation.seeds.values()})
    leaves = {}
    for name, shape in shapes.items():
        rows = sizes[shape[0]]
        cols = sizes[shape[1]] if len(shape) == 2 else (1 if exact or name.startswith("b_") else batch)
        if exact:
            num = rng.integers(1, 7, size=(rows, cols)) * rng.choice([-1, 1], size=(rows, cols))
            den = rng.integers(2, 7, size=(rows, cols))
            leaves[name] = sp.Matrix([[sp.Rational(int(p), int(q)) for p, q in zip(nr, dr, strict=True)]
                                      for nr, dr in zip(num, den, strict=True)])
        else:
            leaves[name] = rng.normal(0.0, 0.6, size=(rows, cols))
    return leaves


def state_values(derivation: Derivation, leaves: dict, *, exact: bool) -> dict:
    """Forward values, adjoints and parameter gradients (internal name → value) from ``leaves``;
    a forward value already in ``leaves`` is kept (a cache given by the user)."""
    value = component_value if exact else numpy_value
    env = {sp.Symbol(k): v for k, v in leaves.items()}
    zero = (lambda like: sp.zeros(*like.shape)) if exact else np.zeros_like
    for eq in derivation.cell.equations:
        if eq.lhs not in env:
            env[eq.lhs] = value(eq.rhs, env)
    for adj in derivation.adjoints:
        if adj.name not in env:
            env[adj.name] = value(adj.rhs, env) if adj.rhs != 0 else zero(env[adj.of])
    for grad in derivation.param_grads:
        got = value(grad.rhs, env) if grad.rhs != 0 else zero(env[grad.param])
        if grad.kind == "vector" and not exact:
            got = np.sum(got, axis=1, keepdims=True)
        env[grad.name] = got
    return {str(k): v for k, v in env.items()}
