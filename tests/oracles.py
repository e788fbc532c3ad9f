"""Independent oracles shared by the tests: PyTorch autograd on the same weights, and the component-level
derivative of a step too deep for sympy.diff (each shared sub-expression once)."""

from __future__ import annotations

import functools

import mpmath
import numpy as np
import sympy as sp
from conftest import RTOL_TORCH_F64, rel_err

from lstm_symbolic import naming
from lstm_symbolic.core.components import backward_env, forward_env, leaf_env
from lstm_symbolic.core.functions import Primitive, sigmoid
from lstm_symbolic.core.primitives import MPMATH
from lstm_symbolic.gradcheck import random_problem

TORCH_LSTM_GATES = ("i", "f", "c", "o")  # torch's row blocks: i, f, g (= our c), o


def torch_lstm(torch, params, input_size, hidden_size):
    """``torch.nn.LSTM`` (float64) with our weights; the bias is split unevenly over the two biases."""
    net = torch.nn.LSTM(input_size, hidden_size, dtype=torch.float64)
    stack = lambda k: torch.from_numpy(np.concatenate([params[f"{k}_{g}"] for g in TORCH_LSTM_GATES]))  # noqa: E731
    with torch.no_grad():
        net.weight_ih_l0.copy_(stack("W"))
        net.weight_hh_l0.copy_(stack("U"))
        net.bias_ih_l0.copy_(stack("b") * 0.25)
        net.bias_hh_l0.copy_(stack("b") * 0.75)
    return net


def assert_lstm_matches_torch(torch, m, T=7, B=4, I=5, H=3, seed=3):
    """Outputs, last states and every gradient of module ``m`` against torch autograd, 1e-10 relative."""
    params, xs, state0, g_hs, g_T = random_problem(m, T=T, B=B, input_size=I, hidden_size=H, seed=seed)
    hs, state_T, cache = m.forward(params, xs, state0)
    grads, d_xs, d_state0 = m.backward(params, cache, g_hs, g_T)
    net = torch_lstm(torch, params, I, H)
    x_t = torch.from_numpy(xs).requires_grad_()
    h0, c0 = (torch.from_numpy(state0[s][None]).requires_grad_() for s in ("h", "c"))
    out, (h_n, c_n) = net(x_t, (h0, c0))
    loss = (out * torch.from_numpy(g_hs)).sum() + (h_n[0] * torch.from_numpy(g_T["h"])).sum() \
        + (c_n[0] * torch.from_numpy(g_T["c"])).sum()
    loss.backward()
    assert rel_err(hs, out.detach().numpy()) < RTOL_TORCH_F64
    assert rel_err(state_T["h"], h_n[0].detach().numpy()) < RTOL_TORCH_F64
    assert rel_err(state_T["c"], c_n[0].detach().numpy()) < RTOL_TORCH_F64
    for k, g in enumerate(TORCH_LSTM_GATES):
        rows = slice(k * H, (k + 1) * H)
        assert rel_err(grads[f"W_{g}"], net.weight_ih_l0.grad[rows].numpy()) < RTOL_TORCH_F64
        assert rel_err(grads[f"U_{g}"], net.weight_hh_l0.grad[rows].numpy()) < RTOL_TORCH_F64
        assert rel_err(grads[f"b_{g}"], net.bias_ih_l0.grad[rows].numpy()) < RTOL_TORCH_F64
    assert rel_err(d_xs, x_t.grad.numpy()) < RTOL_TORCH_F64
    assert rel_err(d_state0["h"], h0.grad[0].numpy()) < RTOL_TORCH_F64
    assert rel_err(d_state0["c"], c0.grad[0].numpy()) < RTOL_TORCH_F64


def assert_saturated_cell_stays_finite(m):
    """Inputs scaled by 1e4 saturate every gate: outputs and gradients stay finite, with no warning."""
    import warnings

    params, xs, s0, g_hs, g_T = random_problem(m, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, _, cache = m.forward(params, xs * 1e4, s0)
        grads, d_xs, _ = m.backward(params, cache, g_hs, g_T)
    assert all(np.all(np.isfinite(g)) for g in grads.values()) and np.all(np.isfinite(d_xs))


# -- sympy.diff of the expanded step, each shared sub-expression once ---------------------------------------------
# sympy.diff walks an expression as a tree; a cell whose units read every unit through a mean (lstm-layernorm)
# expands to a DAG whose tree is exponential in its depth.  The same derivative, taken in reverse over the DAG
# with SymPy's own derivative of every node (what sympy.diff applies node by node), at a random point in 60 digits.

DIGITS = 60


def memoised_mismatches(derivation, sizes=None, seed=5) -> list[str]:
    """Like ``exact_mismatches``: the leaves whose derived gradient differs from the derivative of the
    component-level loss Σ_s ⟨seed_s, s⟩, here both at a random point with ``DIGITS`` digits (a relative
    difference above 10^-(DIGITS - 10) is a mismatch)."""
    cell = derivation.cell
    leaves = leaf_env(cell, sizes or cell.oracle_sizes(), derivation.seeds)
    env = forward_env(cell, leaves)
    loss = sp.Add(*[a * b for s, seed_ in derivation.seeds.items()
                    for a, b in zip(env[seed_], env[sp.Symbol(s)], strict=True)])
    derived = backward_env(derivation, env)
    rng = np.random.default_rng(seed)
    with mpmath.workdps(DIGITS):
        memo = {sym: mpmath.mpf(float(rng.normal())) for v in leaves.values() if isinstance(v, sp.MatrixBase)
                for sym in v}
        grads = _reverse(loss, memo)
        bad = []
        for q in (q for q in cell.quantities if q.kind in ("input", "state", "param")):
            want = [grads.get(s, mpmath.mpf(0)) for s in env[q.symbol]]
            got = [_value(e, memo) for e in derived[sp.Symbol(naming.adjoint(q.name))]]
            if max(abs(w - g) / (1 + abs(w)) for w, g in zip(want, got, strict=True)) > mpmath.mpf(10) ** (10 - DIGITS):
                bad.append(q.name)
    return bad


def _reverse(loss, memo) -> dict:
    """d loss / d node for every node of ``loss``'s DAG, parents before children (reverse post-order)."""
    order, seen, stack = [], set(), [(loss, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
        elif node not in seen:
            seen.add(node)
            stack.append((node, True))
            stack.extend((a, False) for a in node.args if not a.is_Number)
    adjoint = {loss: mpmath.mpf(1)}
    for node in reversed(order):
        if node not in adjoint or not node.args:
            continue
        for k, arg in enumerate(node.args):
            if not arg.is_Number:
                adjoint[arg] = adjoint.get(arg, 0) + adjoint[node] * _partial(node, k, memo)
    return adjoint


_DUMMIES = sp.symbols("a0:8", cls=sp.Dummy)


@functools.cache
def _template(func, nargs: int, k: int) -> sp.Expr:
    """SymPy's ∂ func(a_0, ..) / ∂ a_k."""
    return sp.diff(func(*_DUMMIES[:nargs]), _DUMMIES[k])


def _partial(node, k: int, memo) -> mpmath.mpf:
    if node.is_Add:
        return mpmath.mpf(1)
    values = [_value(a, memo) for a in node.args]
    if node.is_Mul:
        return mpmath.fprod(values[:k] + values[k + 1:])
    return _value(_template(node.func, len(node.args), k), dict(zip(_DUMMIES, values, strict=False)))


_FUNCS = {sp.tanh: mpmath.tanh, sp.exp: mpmath.exp, sp.log: mpmath.log, sigmoid: lambda v: 1 / (1 + mpmath.exp(-v))}


def _value(e, memo):
    """``e`` at the point in ``memo`` (which it extends: every sub-expression once)."""
    stack = [e]
    while stack:
        top = stack[-1]
        if top in memo:
            stack.pop()
            continue
        todo = [a for a in top.args if a not in memo]
        if todo and not top.is_Number:
            stack.extend(todo)
            continue
        stack.pop()
        args = [memo[a] for a in top.args]
        if top.is_Number:
            memo[top] = mpmath.mpf(sp.Float(top, DIGITS)._mpf_)
        elif top.is_Add:
            memo[top] = mpmath.fsum(args)
        elif top.is_Mul:
            memo[top] = mpmath.fprod(args)
        elif top.is_Pow:
            memo[top] = args[0] ** args[1]
        elif isinstance(top, Primitive):
            memo[top] = top.value(MPMATH, *args)
        else:
            memo[top] = _FUNCS[type(top)](*args)
    return memo[e]
