"""The cells as a user writes them in a framework, for the benchmark of the generated torch and JAX modules.

One step function per cell, written once from the cell's equations (lstm_symbolic/spec/builtin/*.toml,
examples/slstm.toml) against a small namespace of operations, so that PyTorch and JAX run the same
arithmetic: the weights of each operand stacked row-wise (one matrix product per operand and step,
as a competent user stacks them), the gates split off the product.  On top of it:

- ``TorchLoop``: the straightforward PyTorch module, a Python loop over time, autograd for the
  backward pass (eager, or under ``torch.compile``);
- ``jax_plain_grad``: ``jax.grad`` of a plain ``lax.scan`` forward (no custom VJP), jitted.

Both take the cell's parameter dictionary (the names of the generated modules).
"""

from __future__ import annotations

from types import SimpleNamespace

# cell -> its gates in the stacked order, and its states in the generated modules' order
GATES = {"lstm": "fico", "lstm-peephole": "fico", "slstm": "zifo"}
STATES = {"lstm": ("h", "c"), "lstm-peephole": ("h", "c"), "slstm": ("h", "c", "n", "m")}


def lstm(ops, w, x, state):
    h, c = state
    f, i, g, o = ops.chunk(x @ w["W"].T + h @ w["U"].T + w["b"], 4)
    c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
    return ops.sigmoid(o) * ops.tanh(c), c


def lstm_peephole(ops, w, x, state):
    h, c_prev = state
    z_f, z_i, z_c, z_o = ops.chunk(x @ w["W"].T + h @ w["U"].T + w["b"], 4)
    f = ops.sigmoid(z_f + c_prev * w["p_f"])
    i = ops.sigmoid(z_i + c_prev * w["p_i"])
    c = c_prev * f + ops.tanh(z_c) * i
    o = ops.sigmoid(z_o + c * w["p_o"])
    return o * ops.tanh(c), c


def slstm(ops, w, x, state):
    """xLSTM's sLSTM: exponential input gate, forget gate in log space, normaliser n, stabiliser m."""
    h, c_prev, n_prev, m_prev = state
    z_z, i_pre, f_pre, z_o = ops.chunk(x @ w["W"].T + h @ w["U"].T + w["b"], 4)
    log_f = ops.log_sigmoid(f_pre)
    m = ops.maximum(log_f + m_prev, i_pre)
    i = ops.exp(i_pre - m)
    f = ops.exp(log_f + m_prev - m)
    c = f * c_prev + i * ops.tanh(z_z)
    n = f * n_prev + i
    return ops.sigmoid(z_o) * c / n, c, n, m


STEPS = {"lstm": lstm, "lstm-peephole": lstm_peephole, "slstm": slstm}


def stacked(cell: str, params: dict, cat) -> dict:
    """The user's weights: W, U, b stacked in the cell's gate order, and the rest (peepholes) as they are."""
    gates = GATES[cell]
    out = {k: cat([params[f"{k}_{g}"] for g in gates]) for k in ("W", "U", "b")}
    out.update({n: v for n, v in params.items() if n.split("_")[0] not in ("W", "U", "b")})
    return out


def torch_ops():
    import torch  # noqa: PLC0415 - optional

    return SimpleNamespace(sigmoid=torch.sigmoid, tanh=torch.tanh, exp=torch.exp, maximum=torch.maximum,
                           log_sigmoid=torch.nn.functional.logsigmoid, chunk=lambda a, n: a.chunk(n, dim=-1))


def torch_loop(cell: str, params: dict):
    """``TorchLoop``: an nn.Module holding the stacked weights, called as ``module(xs, state)`` ->
    ``(hs, state_T)``, xs (T, B, input), state a tuple in the cell's order, each (B, hidden)."""
    import torch  # noqa: PLC0415 - optional

    ops, step = torch_ops(), STEPS[cell]

    class TorchLoop(torch.nn.Module):
        def __init__(self):
            super().__init__()
            weights = stacked(cell, {n: torch.as_tensor(v) for n, v in params.items()}, torch.cat)
            self.w = torch.nn.ParameterDict({n: torch.nn.Parameter(v.clone()) for n, v in weights.items()})

        def forward(self, xs, state):
            w = dict(self.w)
            hs = []
            for x in xs:
                state = step(ops, w, x, state)
                hs.append(state[0])
            return torch.stack(hs), state

    return TorchLoop()


def jax_plain_grad(cell: str):
    """jit(grad) of ``sum(hs * d_hs)`` with respect to (params, xs, state0) for a plain lax.scan
    forward of ``cell``; state0 a dict by state name, as the generated module takes it."""
    import jax  # noqa: PLC0415 - optional
    import jax.numpy as jnp  # noqa: PLC0415

    ops = SimpleNamespace(sigmoid=jax.nn.sigmoid, tanh=jnp.tanh, exp=jnp.exp, maximum=jnp.maximum,
                          log_sigmoid=jax.nn.log_sigmoid, chunk=lambda a, n: jnp.split(a, n, axis=-1))
    step, names = STEPS[cell], STATES[cell]

    def loss(params, xs, state0, d_hs):
        w = stacked(cell, params, jnp.concatenate)

        def body(state, x):
            state = step(ops, w, x, state)
            return state, state[0]

        _, hs = jax.lax.scan(body, tuple(state0[s] for s in names), xs)
        return jnp.sum(hs * d_hs)

    return jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
