"""PyTorch printer: element-wise expressions on (batch, hidden) tensors, as ``torch.`` functions.

The NumPy :class:`~lstm_symbolic.printing.numpy.ArrayPrinter` with ``torch.`` for ``np.`` and a rule of
its own where PyTorch's function differs from NumPy's (``torch.maximum`` takes two tensors: a number
bound is a ``torch.clamp``; ``torch.heaviside`` takes its value at 0 as a tensor).  Every rule is exact:
no ``threshold`` approximation (``softplus`` is ``logaddexp``), so float64 agrees with the NumPy module.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from .numpy import ArrayPrinter


def _number(e) -> bool:
    return isinstance(e, sp.Expr) and e.is_number


class TorchPrinter(ArrayPrinter):
    """``torch.`` functions on tensors; the sigmoid is PyTorch's own (finite for every argument)."""

    _module = "torch"
    _kf = {k: "torch." + v.split(".")[-1] for k, v in NumPyPrinter._kf.items()}

    def _module_format(self, fqn, register=True):
        return "torch." + fqn.split(".")[-1] if fqn.startswith(("numpy.", "np.", "torch.")) else fqn

    def _torch(self, name: str, *args) -> str:
        return f"torch.{name}({', '.join(a if isinstance(a, str) else self._print(a) for a in args)})"

    def _print_sigmoid(self, expr):
        return self._torch("sigmoid", expr.args[0])

    def _print_tanh(self, expr):
        return self._torch("tanh", expr.args[0])

    def _print_relu(self, expr):
        return self._torch("relu", expr.args[0])

    def _print_softplus(self, expr):  # log(1 + e^x), exact (F.softplus switches to x above a threshold)
        x = self._print(expr.args[0])
        return f"torch.logaddexp(torch.zeros_like({x}), {x})"

    def _print_log_sigmoid(self, expr):
        return self._torch("nn.functional.logsigmoid", expr.args[0])

    def _print_hard_sigmoid(self, expr):
        x, alpha, beta = expr.args
        return self._torch("clamp", alpha * x + beta, "0", "1")

    def _bound(self, expr, side: str) -> str:
        a, b = expr.args
        if _number(b) and not _number(a):
            return self._torch("clamp", a, f"{side}={self._print(b)}")
        if _number(a) and not _number(b):
            return self._torch("clamp", b, f"{side}={self._print(a)}")
        return self._torch("maximum" if side == "min" else "minimum", a, b)

    def _print_maximum(self, expr):
        return self._bound(expr, "min")

    def _print_minimum(self, expr):
        return self._bound(expr, "max")

    def _print_clip(self, expr):
        return self._torch("clamp", *expr.args)

    def _print_sqrt(self, expr):
        return self._torch("sqrt", *expr.args)

    def _print_absolute(self, expr):
        return self._torch("abs", *expr.args)

    def _print_step(self, expr):  # [x > 0], the given value at 0 (a tensor, as torch.heaviside takes it)
        x, at_zero = (self._print(a) for a in expr.args)
        if _number(expr.args[1]):
            at_zero = f"torch.full_like({x}, {at_zero})"
        return f"torch.heaviside({x}, {at_zero})"

    def _unsupported(self, expr):
        raise TypeError(f"the PyTorch printer has no rule for {type(expr).__name__}")

    _print_MatVec = _print_MatTVec = _print_Outer = _unsupported


_PRINTER = TorchPrinter()


def torch_code(expr: sp.Expr) -> str:
    return _PRINTER.doprint(expr)
