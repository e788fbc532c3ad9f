"""PyTorch printer: element-wise expressions on (batch, hidden) tensors, as ``torch.`` functions.

The NumPy :class:`~lstm_symbolic.printing.numpy.ArrayPrinter` with ``torch.`` for ``np.`` and a rule of
its own where PyTorch's function differs from NumPy's (``torch.maximum`` takes two tensors: a number
bound is a ``torch.clamp``; the unit step is a sign, not ``torch.heaviside``).  Every rule is exact:
no ``threshold`` approximation (``softplus`` is ``logaddexp``), so float64 agrees with the NumPy module.
"""

from __future__ import annotations

import functools

import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from .numpy import ArrayPrinter


def _number(e) -> bool:
    return isinstance(e, sp.Expr) and e.is_number


def _derivative(expr) -> tuple[str, sp.Expr, sp.Symbol] | None:
    """``g*y*(1 - y)`` as ``("sigmoid_backward", g, y)``, ``g*(1 - y**2)`` as ``("tanh_backward", g, y)``
    (one ATen kernel for three or two, the same arithmetic); None for another product."""
    if not isinstance(expr, sp.Mul):
        return None
    factors = expr.args
    for f in factors:
        y = sp.Symbol("_") if not isinstance(f, sp.Add) else (1 - f)
        if isinstance(y, sp.Symbol) and y in factors:
            name, rest = "sigmoid_backward", expr / (y * f)
        elif isinstance(y, sp.Pow) and y.exp == 2 and isinstance(y.base, sp.Symbol):
            name, rest, y = "tanh_backward", expr / f, y.base
        else:
            continue
        if not rest.is_number:
            return name, rest, y
    return None


def _addcmul(expr, numbers: frozenset = frozenset()) -> tuple[sp.Expr, sp.Expr, sp.Expr, sp.Expr] | None:
    """``c + k*a*b`` (a sum, one term of it the product of two factors and a number k) as ``(c, a, b, k)``,
    one ``torch.addcmul`` kernel for a product and a sum; None for another expression, or where ``c``, ``a``
    or ``b`` holds no tensor (only ``numbers``: symbols that hold a number, as ``_t2 = H**(-1.0)``)."""
    if not isinstance(expr, sp.Add):
        return None
    for term in reversed(expr.as_ordered_terms()):
        k, factors = term.as_coeff_mul()
        if len(factors) == 2 and all(f.free_symbols - numbers for f in factors) and not _derivative(term):
            rest = expr - term
            return (rest, *factors, k) if rest.free_symbols - numbers else None
    return None


class TorchPrinter(ArrayPrinter):
    """``torch.`` functions on tensors; the sigmoid is PyTorch's own (finite for every argument)."""

    _module = "torch"
    label = "PyTorch"  # in the error a form it has no rule for gives
    numbers: frozenset = frozenset()  # symbols that hold a number, not a tensor
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

    def _print_step(self, expr):
        """[x > 0] with its value at 0, from vectorised kernels (``torch.heaviside`` has none: about ten
        times an element-wise op): ``relu(x).sign_()`` at 0 is 0, ``(sign(x) + 1) / 2`` at 0 is 1/2."""
        x, at_zero = self._print(expr.args[0]), expr.args[1]
        if at_zero == 0:
            return f"torch.relu({x}).sign_()"
        if at_zero == sp.Rational(1, 2):
            return f"torch.sign({x}).add_(1).mul_(0.5)"
        if at_zero == 1:
            return f"torch.sign({x}).add_(1).clamp_(max=1)"
        value = f"torch.full_like({x}, {self._print(at_zero)})" if _number(at_zero) else self._print(at_zero)
        return f"torch.heaviside({x}, {value})"

    def _print_Add(self, expr, order=None):
        if parts := _addcmul(expr, self.numbers):
            return _addcmul_code(parts, self._print)
        return super()._print_Add(expr, order)

    def _print_Mul(self, expr):
        if fused := _derivative(expr):
            return f"torch.ops.aten.{fused[0]}({self._print(fused[1])}, {self._print(fused[2])})"
        return super()._print_Mul(expr)


def _addcmul_code(parts, code, out: str = "") -> str:
    rest, a, b, k = parts
    value = "" if k == 1 else f", value={code(k)}"
    return f"torch.addcmul({code(rest)}, {code(a)}, {code(b)}{value}{out})"


@functools.lru_cache(maxsize=8)
def _printer(numbers: frozenset) -> TorchPrinter:
    printer = TorchPrinter()
    printer.numbers = numbers
    return printer


def torch_code(expr: sp.Expr, numbers: frozenset = frozenset()) -> str:
    """``expr`` as a torch expression; ``numbers``: symbols that hold a number (no tensor functions on them)."""
    return _printer(frozenset(numbers)).doprint(expr)


_OPS = {sp.Add: "torch.add", sp.Mul: "torch.mul"}
_INTO = frozenset({"torch.sigmoid", "torch.tanh", "torch.exp", "torch.log", "torch.sqrt", "torch.abs",
                   "torch.maximum", "torch.minimum", "torch.clamp"})


def _closes_at_end(code: str, start: int) -> bool:
    """Whether the parenthesis opened at ``code[start]`` is the one closed last."""
    depth = 0
    for k, ch in enumerate(code[start:], start):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0:
            return k == len(code) - 1
    return False


def torch_code_into(expr: sp.Expr, out: str, numbers: frozenset = frozenset()) -> str | None:
    """``expr`` computed straight into the tensor ``out`` (its outermost operation given ``out=``: no
    temporary and no copy), or None when that operation takes no ``out`` (a power, a bare symbol).
    A term ``-y`` of a sum is a ``torch.sub`` (``1 - o``: one operation), a factor ``1/x`` a ``torch.div``."""
    def code(e):
        return torch_code(e, numbers)

    if fused := _derivative(expr):
        return f"torch.ops.aten.{fused[0]}.grad_input({code(fused[1])}, {code(fused[2])}, grad_input={out})"
    if parts := _addcmul(expr, numbers):
        return _addcmul_code(parts, code, f", out={out}")
    if type(expr) in _OPS:
        add = isinstance(expr, sp.Add)
        parts = list(expr.as_ordered_terms() if add else expr.as_ordered_factors())
        op, last = _OPS[type(expr)], parts[-1]
        if add and (minus := [p for p in parts if not _number(p) and p.could_extract_minus_sign()]):
            op, last = "torch.sub", minus[-1]
        elif not add and (over := [p for p in parts if isinstance(p, sp.Pow) and p.exp == -1]):
            op, last = "torch.div", over[-1]
        rest = type(expr)(*[p for p in parts if p is not last])
        last = -last if op == "torch.sub" else last.base if op == "torch.div" else last
        return f"{op}({code(rest)}, {code(last)}, out={out})"
    if isinstance(expr, sp.Function):
        text = code(expr)
        name = text[:text.index("(")] if "(" in text else ""
        if name in _INTO and _closes_at_end(text, len(name)):
            return f"{text[:-1]}, out={out})"
    return None
