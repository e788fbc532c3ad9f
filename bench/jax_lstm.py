"""The LSTM in JAX for the benchmark: ``jax.lax.scan`` over time, ``jax.grad``, jitted.

Imported only when JAX is installed (it is never a dependency of the project).  Same
parameter dictionary and gate order as the generated module.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)  # float64 runs in float64; float32 stays float32

GATES = ("f", "i", "c", "o")


def _forward(params, xs, h0, c0):
    W = jnp.concatenate([params[f"W_{g}"] for g in GATES])
    U = jnp.concatenate([params[f"U_{g}"] for g in GATES])
    b = jnp.concatenate([params[f"b_{g}"] for g in GATES])

    def step(carry, x):
        h, c = carry
        f, i, g, o = jnp.split(x @ W.T + h @ U.T + b, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    (h, c), hs = jax.lax.scan(step, (h0, c0), xs)
    return hs


def _loss(params, xs, h0, c0, d_hs):
    return jnp.sum(_forward(params, xs, h0, c0) * d_hs)


# Gradients of <d_hs, hs> with respect to every parameter, xs, h0 and c0.
forward_backward = jax.jit(jax.grad(_loss, argnums=(0, 1, 2, 3)))
