"""The rules of the formula transformer (:mod:`lstm_symbolic.formula.transform`) that only LaTeX's
grammar reaches: names with subscripts, ``e^{x}``, ``\\frac``, ``\\max``/``\\operatorname{clip}``, Iverson's
bracket, ``|x|``, ``\\sqrt``, primes (``\\sigma^\\prime``) and superscripts on a call."""

from __future__ import annotations

import re

import sympy as sp
from lark import Token

from ..core.functions import PRIMITIVES, REDUCTIONS, SPELLINGS, arities, step
from .grammar import latex_name
from .values import Value

# Every function a formula calls by name, with the spellings sigma and σ of the logistic function.
FUNCTIONS = {**PRIMITIVES, **SPELLINGS, "sigma": PRIMITIVES["sigmoid"], "σ": PRIMITIVES["sigmoid"]}
# LaTeX's spellings of the piecewise and composed functions, as the LaTeX printer writes them.
_LATEX_FUNCTIONS = {
    "logsigma": PRIMITIVES["log_sigmoid"], "max": PRIMITIVES["max"], "min": PRIMITIVES["min"],
    "relu": PRIMITIVES["relu"], "softplus": PRIMITIVES["softplus"], "clip": PRIMITIVES["clip"],
    "hardsigmoid": PRIMITIVES["hard_sigmoid"], "H": lambda z: step(z, sp.Rational(1, 2)),  # Heaviside's
}
# f′ of each function, from f(z) and z (LaTeX \sigma^\prime, \tanh^{\prime}).
_DERIVATIVES = {
    "sigma": lambda y, z: y * (1 - y), "σ": lambda y, z: y * (1 - y), "sigmoid": lambda y, z: y * (1 - y),
    "tanh": lambda y, z: 1 - y**2, "exp": lambda y, z: y, "log": lambda y, z: 1 / z,
}


class LatexRules:
    """Mixed into the transformer: uses its ``error``, ``_name``, ``number``, ``pow``, ``product``,
    ``_transpose``, ``_apply`` and ``_reduce``."""

    def lname(self, items) -> Value:
        name = latex_name(items[0].value)
        if name is None:
            raise self.error(items[0], f"cannot read the subscript of '{items[0].value}'")
        if name == "e" and (self.shapes is None or "e" not in self.shapes):  # e^{x} is exp(x)
            return Value(sp.E, (), items[0].start_pos, items[0].end_pos)
        return self._name(name, items[0])

    def sup(self, items):
        item = items[0]
        if isinstance(item, Token) and item.type == "TOP":
            return item
        return self.number([item]) if isinstance(item, Token) else item

    def lpow(self, items) -> Value:
        base, caret, sup = items
        if isinstance(sup, Token):
            return self._transpose(base, sup)
        if base.expr == sp.E:
            return self._apply(FUNCTIONS["exp"], [sup], caret)
        return self.pow([base, caret, sup])

    def frac(self, items) -> Value:
        _, a, b = items
        return self.product([a, Token("MULOP", "/", start_pos=b.start), b])

    def lcalln(self, items) -> Value:
        """``\\max(a, b)``, ``\\operatorname{clip}(a, lo, hi)``, ``\\log\\sigma(z)``, ``\\operatorname{H}(z)``."""
        tok, caret, sup, *args = items
        name = re.sub(r"\s|\\|operatorname|[{}]", "", tok.value)
        fn = _LATEX_FUNCTIONS[name]
        if len(args) not in arities(fn):
            n = " or ".join(map(str, arities(fn)))
            raise self.error(tok, f"{tok.value} takes exactly {n} argument{'s' * (arities(fn) != (1,))}")
        return self._raised(self._apply(fn, args, tok), tok, caret, sup)

    def iverson(self, items) -> Value:
        """Iverson's bracket ``[z > 0]`` (0 at 0) or ``[z \\geq 0]`` (1 at 0): the step function."""
        arg, cmp, zero = items
        if zero.expr != 0:
            raise self.error(cmp, "an Iverson bracket reads [z > 0] or [z \\geq 0]")
        return self._apply(lambda z: step(z, int(cmp.value != ">")), [arg], cmp)

    def labs(self, items) -> Value:
        return self._apply(PRIMITIVES["abs"], [items[1]], items[0])

    def lsqrt(self, items) -> Value:
        return self._apply(PRIMITIVES["sqrt"], [items[1]], items[0])

    def _raised(self, value: Value, tok, caret, sup) -> Value:
        if sup is None:
            return value
        if isinstance(sup, Token):
            raise self.error(sup, f"a transpose of {tok.value}(...)")
        return self.pow([value, caret, sup])

    def lcall(self, items) -> Value:
        tok, caret, sup, arg = items
        name, prime, _ = tok.value.partition("^")
        name = name.strip().lstrip("\\")
        reduction = re.fullmatch(r"operatorname\s*\{\s*(sum|mean)\s*\}", name)
        if reduction:  # \operatorname{mean}(v): across the units
            return self._reduce(REDUCTIONS[reduction.group(1)], [arg], tok)
        value = self._apply(FUNCTIONS[name], [arg], tok)
        if prime:  # \sigma^\prime(z) = σ(z)(1 − σ(z)), \tanh^\prime(z) = 1 − tanh²(z): the derivative
            value = Value(_DERIVATIVES[name](value.expr, arg.expr), value.shape, value.start, value.end)
        return self._raised(value, tok, caret, sup)

