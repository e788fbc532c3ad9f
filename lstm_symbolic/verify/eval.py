"""Values of formulas for ``verify``: exact on components (SymPy) and fast in NumPy, both by the
one evaluator of :mod:`lstm_symbolic.core.components`.

Part of ``verify``.  A formula in a notation's names is evaluated in an environment of the
notation's names: every vector a column (NumPy: one column per example), ``*`` element-wise,
``W @ v``, ``W.T @ d``, ``d @ v.T`` (summed over the batch's columns), column slices of stacked
weights, and the batch sum (the identity for one example).  Nothing here evaluates Python.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..core.components import NUMPY, SymPyArrays, backward_env, forward_env, numpy_value
from ..core.derive import Derivation
from ..core.functions import Units
from .names import Names

__all__ = ["as_floats", "numpy_value", "random_leaves", "state_values", "user_env"]


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
    env[Units()] = sp.Integer(sizes["hidden"]) if exact else float(sizes["hidden"])  # H: what a mean divides by
    return env


def as_floats(leaves: dict, digits: int) -> dict:
    """Exact leaves as ``digits``-digit SymPy Floats (the same draw, evaluated numerically)."""
    return {k: v.applyfunc(lambda r: sp.Float(r, digits)) for k, v in leaves.items()}


def all_sizes(cell, sizes: dict[str, int]) -> dict[str, int]:
    """``sizes`` (hidden, input) with every other size of ``cell``: hidden + input (1 where hidden is 1)."""
    other = 1 if sizes["hidden"] == 1 else sizes["hidden"] + sizes["input"]
    return {**{s: other for s in cell.sizes}, **sizes}


def random_leaves(derivation: Derivation, sizes: dict[str, int], rng, *, exact: bool, batch: int = 1) -> dict:
    """Random values of the inputs, previous states, parameters and seeds (internal names).

    Exact: SymPy matrices of small non-zero rationals (one example); otherwise NumPy arrays,
    vectors with one column per example.
    """
    cell = derivation.cell
    sizes = all_sizes(cell, sizes)
    shapes = {q.name: q.shape for q in cell.quantities if q.kind in ("input", "state", "param")}
    shapes.update({str(s): cell.state_shape(state) for state, s in derivation.seeds.items()})
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


def state_values(derivation: Derivation, leaves: dict, *, exact: bool, digits: int | None = None) -> dict:
    """Forward values, adjoints and parameter gradients (internal name → value) from ``leaves``;
    a forward value already in ``leaves`` is kept (a cache given by the user).  Exact: function
    values are opaque Symbols; ``digits``: the leaves (SymPy matrices of Floats) evaluated
    numerically at that precision (see :func:`~lstm_symbolic.core.components.evaluate`).  The
    evaluator is the exact oracle's, :func:`~lstm_symbolic.core.components.value_of`."""
    arrays = SymPyArrays(digits, opaque=True) if exact else NUMPY
    env = {sp.Symbol(k): v for k, v in leaves.items()}
    units = env[derivation.cell.prev(derivation.cell.output)].shape[0]  # the n a mean's adjoint divides by
    env[Units()] = sp.Integer(units) if exact else float(units)
    env = forward_env(derivation.cell, env, arrays)
    return {str(k): v for k, v in backward_env(derivation, env, arrays).items()}
