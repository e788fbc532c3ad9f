"""JAX printer: element-wise expressions on (batch, hidden) arrays as ``jnp.`` and ``jax.nn.`` calls.

The NumPy printer's rules with ``jnp`` for ``np``; the logistic family by ``jax.nn`` (its sigmoid is
``lax.logistic``, finite for every argument).  What the generated module imports: ``jax``, ``jax.numpy``
as ``jnp`` and ``jax.lax`` as ``lax``.
"""

from __future__ import annotations

import sympy as sp

from .numpy import ArrayPrinter


class JaxPrinter(ArrayPrinter):
    """ArrayPrinter writing ``jnp.`` where it writes ``np.``, and ``jax.nn.`` for the logistic family."""

    _module = "jnp"
    label = "JAX"  # in the error a form it has no rule for gives
    _kf = {k: "jnp." + v.split(".")[-1] for k, v in ArrayPrinter._kf.items()}

    def _module_format(self, fqn, register=True):
        return "jnp." + fqn.split(".")[-1] if fqn.startswith(("numpy.", "np.")) else fqn

    def _np(self, name: str, *args) -> str:
        return f"jnp.{name}({', '.join(a if isinstance(a, str) else self._print(a) for a in args)})"

    def _nn(self, name: str, expr) -> str:
        return f"jax.nn.{name}({self._print(expr.args[0])})"

    def _print_sigmoid(self, expr):
        return self._nn("sigmoid", expr)

    def _print_relu(self, expr):
        return self._nn("relu", expr)

    def _print_softplus(self, expr):
        return self._nn("softplus", expr)

    def _print_log_sigmoid(self, expr):
        return self._nn("log_sigmoid", expr)


_PRINTER = JaxPrinter()


def jax_code(expr: sp.Expr) -> str:
    return _PRINTER.doprint(expr)
