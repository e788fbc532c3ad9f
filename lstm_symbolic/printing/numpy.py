"""NumPy printer: element-wise expressions on (batch, hidden) arrays."""

from __future__ import annotations

import sympy as sp
from sympy.printing.numpy import NumPyPrinter


class ArrayPrinter(NumPyPrinter):
    """NumPyPrinter writing ``np.`` and calling the module's own stable ``sigmoid``."""

    _module = "np"
    label = "NumPy"  # in the error a form it has no rule for gives
    _kf = {k: "np." + v.split(".")[-1] for k, v in NumPyPrinter._kf.items()}

    def __init__(self, settings=None):
        super().__init__({"fully_qualified_modules": True, "strict": True, **(settings or {})})

    def _module_format(self, fqn, register=True):
        return "np." + fqn.split(".")[-1] if fqn.startswith(("numpy.", "np.")) else fqn

    def _print_sigmoid(self, expr):
        return f"sigmoid({self._print(expr.args[0])})"

    def _np(self, name: str, *args) -> str:
        return f"np.{name}({', '.join(a if isinstance(a, str) else self._print(a) for a in args)})"

    def _print_relu(self, expr):
        return self._np("maximum", expr.args[0], "0")

    def _print_softplus(self, expr):  # log(1 + e^x) without overflow
        return self._np("logaddexp", "0", expr.args[0])

    def _print_log_sigmoid(self, expr):  # −softplus(−x)
        return "-" + self._np("logaddexp", "0", -expr.args[0])

    def _print_hard_sigmoid(self, expr):
        x, alpha, beta = expr.args
        return self._np("clip", alpha * x + beta, "0", "1")

    def _print_maximum(self, expr):
        return self._np("maximum", *expr.args)

    def _print_minimum(self, expr):
        return self._np("minimum", *expr.args)

    def _print_clip(self, expr):
        return self._np("clip", *expr.args)

    def _print_sqrt(self, expr):
        return self._np("sqrt", *expr.args)

    def _print_absolute(self, expr):
        return self._np("abs", *expr.args)

    def _print_step(self, expr):  # [x > 0], the given value at 0
        return self._np("heaviside", *expr.args)

    def _reduce(self, name: str, expr) -> str:
        """A row reduction over the units (the last axis), kept as a column that broadcasts back."""
        return f"{self._module_format('numpy.' + name)}({self._print(expr.args[0])}, axis=-1, keepdims=True)"

    def _print_unit_sum(self, expr):
        return self._reduce("sum", expr)

    def _print_unit_mean(self, expr):
        return self._reduce("mean", expr)

    def _print_Units(self, expr):  # the number of units: the hidden size of the generated module
        return "H"

    def _print_Rational(self, expr):
        return f"{expr.p}/{expr.q}"

    def _unsupported(self, expr):
        raise TypeError(f"the {self.label} printer has no rule for {type(expr).__name__}")

    _print_MatVec = _print_MatTVec = _print_Outer = _unsupported


_PRINTER = ArrayPrinter()


def numpy_code(expr: sp.Expr) -> str:
    return _PRINTER.doprint(expr)


_UFUNCS = {sp.Add: "np.add", sp.Mul: "np.multiply"}


def numpy_code_into(expr: sp.Expr, out: str) -> str | None:
    """``expr`` computed straight into the array ``out`` (its outermost operation given
    ``out=``), or None when that operation takes no ``out`` (a power, a bare symbol).
    The module's ``sigmoid`` accepts ``out`` as NumPy's functions do."""
    if type(expr) in _UFUNCS:
        parts = expr.as_ordered_terms() if isinstance(expr, sp.Add) else expr.as_ordered_factors()
        rest = type(expr)(*parts[:-1])
        return f"{_UFUNCS[type(expr)]}({numpy_code(rest)}, {numpy_code(parts[-1])}, out={out})"
    if isinstance(expr, sp.Function) and len(expr.args) == 1:
        code, arg = numpy_code(expr), numpy_code(expr.args[0])
        name = code[:code.index("(")] if "(" in code else ""
        if code == f"{name}({arg})" and (name.startswith("np.") or name == "sigmoid"):
            return f"{name}({arg}, out={out})"
    return None
