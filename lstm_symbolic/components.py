"""Component-level expansion of a cell at small sizes: the exact oracle (Cell → SymPy scalars).

Every vector becomes an explicit column of scalars and every ``W @ v`` an explicit sum, so
that ``sympy.diff`` of a scalar loss gives gradients that owe nothing to the vector rules of
:mod:`derive`.  The same evaluation instantiates the derived vector formulas, for comparison.
"""

from __future__ import annotations

import sympy as sp

from .cells import Cell
from .derive import Derivation
from .functions import MatTVec, MatVec, Outer


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
    for seed in (seeds or {}).values():
        env[seed] = symbols_for(seed.name, ("hidden",), sizes)
    return env


def evaluate(expr: sp.Expr, env: dict) -> sp.Matrix:
    """``expr`` on components: element-wise apart from MatVec, MatTVec and Outer."""
    if expr in env:
        return env[expr]
    if isinstance(expr, Outer):
        return evaluate(expr.args[0], env) * evaluate(expr.args[1], env).T
    if isinstance(expr, sp.Add) and expr.has(Outer):
        return sum((evaluate(a, env) for a in expr.args[1:]), evaluate(expr.args[0], env))
    products = {}
    for atom in expr.atoms(MatVec, MatTVec):
        w, v = (evaluate(a, env) for a in atom.args)
        products[atom] = (w if isinstance(atom, MatVec) else w.T) * v
    opaque = expr.xreplace({a: sp.Integer(0) for a in products})
    vectors = {s: env[s] for s in opaque.free_symbols if s in env}
    length = {m.rows for m in list(products.values()) + list(vectors.values())}
    if len(length) > 1:
        raise ValueError(f"operands of different lengths in {expr}")
    n = length.pop() if length else 1

    def component(k):
        table = {a: m[k] for a, m in products.items()}
        table.update({s: m[k] for s, m in vectors.items()})
        return expr.xreplace(table)

    return sp.Matrix(n, 1, lambda k, _: component(k))


def forward_env(cell: Cell, env: dict) -> dict:
    """``env`` extended with every assigned quantity of one step."""
    env = dict(env)
    for eq in cell.equations:
        env[eq.lhs] = evaluate(eq.rhs, env)
    return env


def backward_env(derivation: Derivation, env: dict) -> dict:
    """``env`` (forward values and seeds) extended with every adjoint and parameter gradient."""
    env = dict(env)
    for adj in derivation.adjoints:
        if adj.name not in env:
            env[adj.name] = evaluate(adj.rhs, env) if adj.rhs != 0 else _zeros_like(env, adj.of)
    for grad in derivation.param_grads:
        env[grad.name] = evaluate(grad.rhs, env) if grad.rhs != 0 else sp.zeros(*env[grad.param].shape)
    return env


def _zeros_like(env: dict, of: sp.Expr) -> sp.Matrix:
    return sp.zeros(*env[of].shape) if of in env else sp.zeros(1, 1)


def exact_mismatches(derivation: Derivation, sizes: dict[str, int] | None = None) -> list[str]:
    """Leaves (inputs, previous states, parameters) whose derived gradient differs from
    ``sympy.diff`` of the component-level loss Σ_s ⟨seed_s, s⟩ of one step - exactly."""
    cell = derivation.cell
    env = forward_env(cell, leaf_env(cell, sizes or {"hidden": 2, "input": 3}, derivation.seeds))
    loss = sum((env[seed].T * env[sp.Symbol(s)])[0] for s, seed in derivation.seeds.items())
    derived = backward_env(derivation, env)
    bad = []
    for q in cell.quantities:
        if q.kind in ("input", "state", "param"):
            want = env[q.symbol].applyfunc(lambda s: sp.diff(loss, s))
            got = derived[sp.Symbol(f"d_{q.name}")]
            if (got - want).applyfunc(sp.expand) != sp.zeros(*want.shape):
                bad.append(q.name)
    return bad
