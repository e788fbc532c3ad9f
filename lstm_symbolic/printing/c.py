"""C printer: element-wise expressions as C99 scalar code, in ``double`` or ``float``.

One printer instance per real type: the ``float`` one calls ``tanhf``/``expf`` and writes
float literals (``1.0F``), through SymPy's ``type_aliases``.  ``sigmoid`` calls the
generated file's own stable ``sigmoid_<suffix>`` (a static inline function).
"""

from __future__ import annotations

import sympy as sp
from sympy.codegen.ast import float32, float64, real
from sympy.printing.c import C99CodePrinter

# real type name in C → (SymPy type, suffix of the generated entry points)
REAL_TYPES = {"double": (float64, "f64"), "float": (float32, "f32")}


class CPrinter(C99CodePrinter):
    """C99CodePrinter for one real type; refuses the linear atoms (they are matrix products)."""

    def __init__(self, ctype: str = "double", settings=None):
        sym_type, self.suffix = REAL_TYPES[ctype]
        # math_macros {}: no M_E, M_SQRT2, ... (POSIX, not C99): sqrt(2), and e below
        super().__init__({"type_aliases": {real: sym_type}, "strict": True, "math_macros": {}, **(settings or {})})

    def _print_Exp1(self, expr):
        return self._print(sp.exp(sp.Integer(1), evaluate=False))

    def _print_sigmoid(self, expr):
        return f"sigmoid_{self.suffix}({self._print(expr.args[0])})"

    def _fn(self, name: str, *args) -> str:
        """A libm call in this printer's type (``fmax`` / ``fmaxf``)."""
        suffix = "f" if self.suffix == "f32" else ""
        return f"{name}{suffix}({', '.join(a if isinstance(a, str) else self._print(a) for a in args)})"

    def _real(self, value) -> str:
        """A number as a literal of this printer's type (``0.5F``); anything else as it is."""
        value = sp.sympify(value)
        return self._print(sp.Float(value) if value.is_Number else value)

    def _print_relu(self, expr):
        return self._fn("fmax", expr.args[0], self._real(0))

    def _print_softplus(self, expr):  # max(x, 0) + log1p(e^-|x|): no overflow
        x = expr.args[0]
        small = self._fn("exp", "-" + self._fn("fabs", x))
        return f"({self._fn('fmax', x, self._real(0))} + {self._fn('log1p', small)})"

    def _print_log_sigmoid(self, expr):  # min(x, 0) − log1p(e^-|x|)
        x = expr.args[0]
        small = self._fn("exp", "-" + self._fn("fabs", x))
        return f"({self._fn('fmin', x, self._real(0))} - {self._fn('log1p', small)})"

    def _print_hard_sigmoid(self, expr):
        x, alpha, beta = expr.args
        return self._fn("fmin", self._fn("fmax", alpha * x + beta, self._real(0)), self._real(1))

    def _print_maximum(self, expr):
        return self._fn("fmax", *expr.args)

    def _print_minimum(self, expr):
        return self._fn("fmin", *expr.args)

    def _print_clip(self, expr):
        a, lo, hi = expr.args
        return self._fn("fmin", self._fn("fmax", a, lo), hi)

    def _print_sqrt(self, expr):
        return self._fn("sqrt", expr.args[0])

    def _print_absolute(self, expr):
        return self._fn("fabs", expr.args[0])

    def _print_step(self, expr):  # [x > 0], the given value at 0
        x, at_zero = self._print(expr.args[0]), expr.args[1]
        if at_zero == 0:
            return f"(({x}) > 0 ? {self._real(1)} : {self._real(0)})"
        return (f"(({x}) > 0 ? {self._real(1)} : (({x}) == 0 ? {self._real(at_zero)} : "
                f"{self._real(0)}))")

    def _print_Pow(self, expr):
        base, exp = expr.args
        if exp.is_Integer and 2 <= exp <= 3 and base.is_Symbol:
            return "(" + "*".join([self._print(base)] * int(exp)) + ")"
        return super()._print_Pow(expr)

    def _print_Units(self, expr):  # the number of units: the kernel's hidden size H, as a real
        return f"(({self._real(1)}) * H)"

    def _unsupported(self, expr):
        raise TypeError(f"the C printer has no rule for {type(expr).__name__}: it is a matrix product "
                        "or a reduction (the plan makes each a pass of its own)")

    _print_MatVec = _print_MatTVec = _print_Outer = _print_unit_sum = _print_unit_mean = _unsupported


_PRINTERS = {ctype: CPrinter(ctype) for ctype in REAL_TYPES}


def c_code(expr: sp.Expr, ctype: str = "double") -> str:
    """``expr`` as a C expression in ``ctype`` (``"double"`` or ``"float"``)."""
    return _PRINTERS[ctype].doprint(expr)


class KernelPrinter(CPrinter):
    """The C printer of a kernel written once for both real types: the type-dependent names go through
    the macros the generated file defines before each pass over its kernel, ``LSYM_K(sigmoid)`` (the
    runtime's ``sigmoid_f64`` or ``sigmoid_f32``), ``LSYM_K_FN(tanh)`` (``tanh`` or ``tanhf``) and
    ``LSYM_K_C(1.0)`` (``1.0`` or ``1.0F``)."""

    def __init__(self, settings=None):
        super().__init__("double", settings)

    def _print_sigmoid(self, expr):
        return f"LSYM_K(sigmoid)({self._print(expr.args[0])})"

    def _print_math_func(self, expr, nest=False, known=None):
        known = known or self.known_functions[expr.__class__.__name__]
        if not isinstance(known, str) or nest:
            raise TypeError(f"the kernel printer has no rule for {type(expr).__name__}")
        return f"LSYM_K_FN({known})({', '.join(self._print(a) for a in expr.args)})"

    def _print_Pow(self, expr):
        base, exp = expr.args
        if exp.is_Integer and 2 <= exp <= 3 and base.is_Symbol:
            return "(" + "*".join([self._print(base)] * int(exp)) + ")"
        if exp == -1:
            return f"LSYM_K_C(1.0)/{self.parenthesize(base, sp.printing.precedence.precedence(expr))}"
        if exp == sp.Rational(1, 2):
            return f"LSYM_K_FN(sqrt)({self._print(base)})"
        return f"LSYM_K_FN(pow)({self._print(base)}, {self._print(exp)})"

    def _print_Rational(self, expr):
        return f"LSYM_K_C({int(expr.p)}.0)/LSYM_K_C({int(expr.q)}.0)"

    def _fn(self, name: str, *args) -> str:
        """A math.h function of the kernel's type (``LSYM_K_FN(fmax)``: ``fmax`` or ``fmaxf``)."""
        return f"LSYM_K_FN({name})({', '.join(a if isinstance(a, str) else self._print(a) for a in args)})"

    def _print_Float(self, flt):
        return f"LSYM_K_C({super()._print_Float(flt)})"

    def _print_Units(self, expr):  # the number of units: the kernel's hidden size H, as a real
        return "((LSYM_K_REAL)H)"


for _name in [n for n in dir(C99CodePrinter) if getattr(C99CodePrinter, n) is C99CodePrinter._print_math_func]:
    setattr(KernelPrinter, _name, KernelPrinter._print_math_func)  # (C99CodePrinter binds each by name)
_KERNEL = KernelPrinter()


def kernel_code(expr: sp.Expr) -> str:
    """``expr`` as a C expression in the kernel's real type ``LSYM_K_REAL``, whichever it is."""
    return _KERNEL.doprint(expr)
