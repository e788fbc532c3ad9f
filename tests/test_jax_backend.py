"""The generated JAX module: its custom VJP against JAX's own autodiff and the NumPy module, under jit,
vmap and grad, and against central differences.

The oracle for "a plain JAX forward with no custom VJP" is written here, independently of the code
generation: each step evaluates the cell's own equations (its spec, as parsed) on jnp arrays by walking
the SymPy expressions, the primitives computed by their ``value`` (the NumPy-style formula every
primitive carries), inside a ``lax.scan``.  It shares no printer, plan or template with the generated
module, so a slip in any of those (a wrong block, a dropped term, a printer rule) shows as a disagreement,
which emitting a second forward from the same plan would not.  JAX differentiates it with its own
autodiff.  Every comparison runs in float64 (x64 enabled around this module's tests only).
"""

from __future__ import annotations

import ast
import functools
import operator
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from conftest import CELLS, RTOL_FD, rel_err

from lstm_symbolic import pipeline
from lstm_symbolic.core.functions import MatVec, Primitive, sigmoid, tanh, unit_mean, unit_sum
from lstm_symbolic.gradcheck import load_module, random_problem

jax = pytest.importorskip("jax")
jnp = jax.numpy

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
RTOL = 1e-10  # float64: the custom VJP against autodiff and against the NumPy module
FAST = ("lstm", "gru-reset-after", "slstm", "lstm-proj")  # the rest are marked slow
SOURCES = [pytest.param(s, marks=() if Path(s).stem in FAST else pytest.mark.slow, id=Path(s).stem)
           for s in CELLS + [str(p) for p in EXAMPLES]]


@pytest.fixture(scope="module", autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="module")
def emitted(tmp_path_factory):
    """{source: (the JAX module, the NumPy module, the cell)}, each emitted and imported when first asked."""
    out, found = tmp_path_factory.mktemp("jax"), {}

    def get(source):
        if source not in found:
            cell = pipeline.load_cell(source)
            folder = out / Path(source).stem
            (path,) = pipeline.emit(cell, "jax", folder)
            (numpy_path,) = pipeline.emit(cell, "numpy", folder)
            found[source] = (load_module(path), load_module(numpy_path), cell)
        return found[source]
    return get


# -- the independent oracle: the cell's equations evaluated on jnp arrays -------------------------

ELEMENTARY = {sigmoid: lambda z: 1 / (1 + jnp.exp(-z)), tanh: jnp.tanh, sp.tanh: jnp.tanh, sp.exp: jnp.exp,
              sp.log: jnp.log}


def evaluate(expr, env):
    """``expr`` (a right-hand side of the cell) on the arrays of ``env`` ({name: (B, n) or parameter})."""
    if isinstance(expr, sp.Symbol):
        return env[expr.name]
    if expr.is_Number:
        return float(expr)
    if isinstance(expr, MatVec):
        weight, operand = expr.args
        return env[operand.name] @ env[weight.name].T
    args = [evaluate(a, env) for a in expr.args]
    if isinstance(expr, sp.Add | sp.Mul):
        return functools.reduce(operator.add if isinstance(expr, sp.Add) else operator.mul, args)
    if isinstance(expr, sp.Pow):
        return args[0] ** args[1]
    if isinstance(expr, Primitive):
        return type(expr).value(jnp, *args)
    if isinstance(expr, unit_sum | unit_mean):  # across the units of each example
        return (jnp.mean if isinstance(expr, unit_mean) else jnp.sum)(args[0], axis=-1, keepdims=True)
    return ELEMENTARY[type(expr)](*args)


def plain_forward(cell, params, xs, state0):
    """(hs, state_T) by a lax.scan of the cell's equations: JAX differentiates it by itself."""
    def step(carry, x):
        env = {**params, cell.inputs[0].name: x, **{cell.prev(s).name: carry[s] for s in cell.states}}
        for eq in cell.equations:
            env[eq.lhs.name] = evaluate(eq.rhs, env)
        return {s: env[s] for s in cell.states}, env[cell.output]
    state_T, hs = jax.lax.scan(step, state0, xs)
    return hs, state_T


def loss(forward, g_hs, g_T):
    """A scalar of the outputs whose gradients are the seeds g_hs, g_T: (params, xs, state0) -> loss."""
    def f(params, xs, state0):
        hs, state_T = forward(params, xs, state0)
        return (hs * g_hs).sum() + sum((state_T[s] * g_T[s]).sum() for s in g_T)
    return f


def assert_close(got, want, what):
    for key in want:
        assert rel_err(got[key], want[key]) < RTOL, (what, key, rel_err(got[key], want[key]))


@pytest.fixture(scope="module")
def results(emitted):
    """{source: outputs and gradients of the generated module, the oracle and the NumPy module}."""
    found = {}

    def get(source):
        if source not in found:
            m, mn, cell = emitted(source)
            params, xs, state0, g_hs, g_T = random_problem(mn, T=5, B=3, input_size=4, hidden_size=6, seed=11)
            hs, state_T, cache = mn.forward(params, xs, state0)
            grads, d_xs, d_state0 = mn.backward(params, cache, g_hs, g_T)
            plain = functools.partial(plain_forward, cell)
            found[source] = {
                "numpy": ((hs, state_T), (grads, d_xs, d_state0)),
                "jax": (m.forward(params, xs, state0),
                        jax.grad(loss(m.forward, g_hs, g_T), argnums=(0, 1, 2))(params, xs, state0)),
                "plain": (plain(params, xs, state0),
                          jax.grad(loss(plain, g_hs, g_T), argnums=(0, 1, 2))(params, xs, state0)),
            }
        return found[source]
    return get


def _flat(outputs, grads):
    (hs, state_T), (g_params, g_xs, g_state0) = outputs, grads
    return ({"hs": hs, **{f"state_T {s}": v for s, v in state_T.items()}},
            {**g_params, "xs": g_xs, **{f"state0 {s}": v for s, v in g_state0.items()}})


@pytest.mark.parametrize("source", SOURCES)
def test_the_custom_vjp_equals_autodiff_of_an_independent_forward(results, source):
    got_out, got_grads = _flat(*results(source)["jax"])
    want_out, want_grads = _flat(*results(source)["plain"])
    assert_close(got_out, want_out, "forward")
    assert_close(got_grads, want_grads, "gradient")
    assert set(got_grads) == set(want_grads) and len(got_grads) > 3


@pytest.mark.parametrize("source", SOURCES)
def test_outputs_and_gradients_equal_the_numpy_module(results, source):
    got_out, got_grads = _flat(*results(source)["jax"])
    want_out, want_grads = _flat(*results(source)["numpy"])
    assert_close(got_out, want_out, "forward")
    assert_close(got_grads, want_grads, "gradient")


def test_the_oracle_is_not_blind(emitted):
    """A mutated backward (one gradient block scaled) fails the comparison with the oracle."""
    m, mn, cell = emitted("lstm")
    params, xs, state0, g_hs, g_T = random_problem(mn, T=3, B=2, input_size=3, hidden_size=4, seed=1)
    fwd, bwd = m._sequence_forward, m._backward
    wrong = jax.custom_vjp(lambda p, x, s: fwd(p, x, s)[0])
    wrong.defvjp(fwd, lambda saved, ct: jax.tree_util.tree_map(lambda g: g * 1.001, bwd(saved, *ct)))
    got = jax.grad(loss(wrong, g_hs, g_T))(params, xs, state0)
    want = jax.grad(loss(functools.partial(plain_forward, cell), g_hs, g_T))(params, xs, state0)
    assert max(rel_err(got[k], want[k]) for k in m.PARAMS) > 1e-4


# -- jit, vmap, grad ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lstm_problem(emitted):
    m, mn, _ = emitted("lstm")
    return m, mn, random_problem(mn, T=4, B=2, input_size=3, hidden_size=5, seed=7)


def test_jit_agrees_with_eager(lstm_problem):
    m, _, (params, xs, state0, g_hs, g_T) = lstm_problem
    eager = jax.grad(loss(m.forward, g_hs, g_T), argnums=(0, 1, 2))(params, xs, state0)
    jitted = jax.jit(jax.grad(loss(m.forward, g_hs, g_T), argnums=(0, 1, 2)))(params, xs, state0)
    hs, state_T = jax.jit(m.forward)(params, xs, state0)
    assert rel_err(hs, m.forward(params, xs, state0)[0]) < RTOL
    assert_close(_flat((hs, state_T), jitted)[1], _flat((hs, state_T), eager)[1], "jit")


def test_vmap_over_a_batch_of_sequences(lstm_problem, rng):
    """vmap over a leading axis of xs and state0 equals one call per sequence, values and gradients."""
    m, mn, (params, _, _, g_hs, g_T) = lstm_problem
    N, (T, B, H), I = 3, g_hs.shape, params["W_f"].shape[1]
    xs = rng.standard_normal((N, T, B, I))
    state0 = {s: rng.standard_normal((N, B, H)) for s in m.STATES}
    hs, state_T = jax.vmap(m.forward, in_axes=(None, 0, 0))(params, xs, state0)

    def total(p):
        out, last = jax.vmap(m.forward, in_axes=(None, 0, 0))(p, xs, state0)
        return (out * g_hs).sum() + sum((last[s] * g_T[s]).sum() for s in m.STATES)
    grads = jax.jit(jax.grad(total))(params)
    want = {k: 0 for k in m.PARAMS}
    for n in range(N):
        one = {s: state0[s][n] for s in m.STATES}
        hs_n, state_n, cache = mn.forward(params, xs[n], one)
        assert rel_err(hs[n], hs_n) < RTOL and all(rel_err(state_T[s][n], state_n[s]) < RTOL for s in m.STATES)
        g, _, _ = mn.backward(params, cache, g_hs, g_T)
        want = {k: want[k] + g[k] for k in m.PARAMS}
    assert_close(grads, want, "vmap")


def test_a_missing_state0_is_zeros_and_its_gradient_is_dropped(lstm_problem):
    m, mn, (params, xs, _, g_hs, g_T) = lstm_problem
    hs, _ = m.forward(params, xs)
    assert rel_err(hs, mn.forward(params, xs)[0]) < RTOL
    grads, d_xs = jax.grad(loss(lambda p, x, _: m.forward(p, x), g_hs, g_T), argnums=(0, 1))(params, xs, None)
    want, want_xs, _ = mn.backward(params, mn.forward(params, xs)[2], g_hs, g_T)
    assert_close(grads, want, "state0=None")
    assert rel_err(d_xs, want_xs) < RTOL
    hs_vmapped, _ = jax.vmap(m.forward, in_axes=(None, 0))(params, xs[None])
    assert rel_err(hs_vmapped[0], hs) < RTOL


def test_central_differences(lstm_problem, rng):
    """The dot-product test on every parameter, xs and state0: a third check, independent of any autodiff."""
    m, _, (params, xs, state0, g_hs, g_T) = lstm_problem
    f = loss(m.forward, g_hs, g_T)
    grads = jax.grad(f, argnums=(0, 1, 2))(params, xs, state0)
    args, eps = (params, xs, state0), 1e-6
    leaves, tree = jax.tree_util.tree_flatten(args)
    directions = [rng.standard_normal(np.shape(a)) for a in leaves]
    shifted = [jax.tree_util.tree_unflatten(tree, [a + sign * eps * v for a, v in zip(leaves, directions, strict=True)])
               for sign in (1, -1)]
    fd = (float(f(*shifted[0])) - float(f(*shifted[1]))) / (2 * eps)
    analytic = sum(float((g * v).sum()) for g, v in zip(jax.tree_util.tree_leaves(grads), directions, strict=True))
    assert abs(fd - analytic) < RTOL_FD * abs(fd)


# -- the module itself -------------------------------------------------------------------------

def test_float32_by_default_and_the_init_scheme(emitted):
    m, _, _ = emitted("lstm")
    params = m.init_params(jax.random.key(0), 3, 16)
    assert set(params) == set(m.PARAMS) and params["W_f"].shape == (16, 3) and params["b_o"].shape == (16,)
    assert all(p.dtype == jnp.float32 for p in params.values())
    assert max(float(jnp.abs(p).max()) for p in params.values()) <= 0.25  # U(-1/sqrt(16), 1/sqrt(16))
    hs, state_T = m.forward(params, jnp.ones((2, 1, 3), jnp.float32))
    assert hs.dtype == jnp.float32 and hs.shape == (2, 1, 16) and set(state_T) == {"h", "c"}


def test_the_module_imports_jax_only_and_is_named_like_the_numpy_one(tmp_path):
    (path,) = pipeline.emit("lstm-peephole", "jax", tmp_path)
    assert path.name == "lstm_peephole_jax.py"
    tree = ast.parse(path.read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported == {"jax", "jax.numpy"}
    assert (ROOT / "generated" / "lstm_peephole" / "lstm_peephole_jax.py").read_text() == path.read_text()


def test_the_command_line_emits_it(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lstm_symbolic", "emit", "lstm-cifg", "--lang", "jax", "-o",
                           str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "lstm_cifg_jax.py").is_file() and "lstm_cifg_jax.py" in done.stdout


def test_a_wrong_shape_is_one_line_naming_the_argument(lstm_problem):
    m, _, (params, xs, state0, _, _) = lstm_problem  # T=4, B=2, input 3, hidden 5
    with pytest.raises(ValueError, match=r"xs: expected \(T, B, input\), got shape \(4, 3\)"):
        m.forward(params, xs[:, 0], state0)
    with pytest.raises(ValueError, match=r"params: missing W_f"):
        m.forward({k: v for k, v in params.items() if k != "W_f"}, xs, state0)
    with pytest.raises(ValueError, match=r"params\['U_o'\]: expected shape \(hidden, hidden\) = \(5, 5\), got \(5, 4"):
        m.forward({**params, "U_o": params["U_o"][:, :4]}, xs, state0)
    with pytest.raises(ValueError, match=r"params\['W_i'\]: expected shape \(hidden, input\) = \(5, 3\), got \(5, 2\)"):
        m.forward({**params, "W_i": params["W_i"][:, :2]}, xs, state0)
    with pytest.raises(ValueError, match=r"state0\['c'\]: expected shape \(B, hidden\) = \(2, 5\), got \(1, 5\)"):
        m.forward(params, xs, {**state0, "c": state0["c"][:1]})


def test_lstm_proj_takes_proj_size_and_sizes_each_state(emitted):
    """A size beyond hidden and input: a keyword of init_params, read from the parameters by forward."""
    m, _, _ = emitted("lstm-proj")
    assert m.STATE_SIZES == {"h": "proj"}
    with pytest.raises(TypeError, match="proj_size"):
        m.init_params(jax.random.key(0), 3, 5)
    params = m.init_params(jax.random.key(0), 3, 5, proj_size=2, dtype=jnp.float64)
    assert params["W_hr"].shape == (2, 5) and params["U_f"].shape == (5, 2)
    xs = jnp.ones((4, 3, 3))
    hs, state_T = m.forward(params, xs)
    assert hs.shape == (4, 3, 2) and state_T["h"].shape == (3, 2) and state_T["c"].shape == (3, 5)
    with pytest.raises(ValueError, match=r"state0\['h'\]: expected shape \(B, proj\) = \(3, 2\), got \(3, 5\)"):
        m.forward(params, xs, {"h": jnp.zeros((3, 5))})
    with pytest.raises(ValueError, match=r"params\['W_hr'\]: expected shape \(proj, hidden\) = \(2, 5\), got \(2, 4\)"):
        m.forward({**params, "W_hr": params["W_hr"][:, :4]}, xs)
