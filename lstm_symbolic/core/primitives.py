"""The element-wise functions of the vocabulary, each with its derivative rule in :data:`DERIVATIVES`.

σ and tanh are atoms of their own (SymPy's tanh asks assumptions exponential in the nesting); the
others (relu, softplus, log_sigmoid, hard_sigmoid, max, min, clip, sqrt, abs, and the step their
derivatives use) derive from :class:`Primitive`, which also knows how to compute each on numbers
(:meth:`Primitive.value`) and how to write it in SymPy's own functions (:meth:`Primitive.oracle`,
for the tests' independent derivatives).  :data:`PRIMITIVES` names them as specs and formulas write them.
"""

from __future__ import annotations

from types import SimpleNamespace

import mpmath
import sympy as sp
from mpmath.libmp import prec_to_dps

# The NumPy functions the primitives' values are written with (:meth:`Primitive.value` takes NumPy or
# this), on mpmath numbers: one spelling of each value for both.
MPMATH = SimpleNamespace(
    maximum=max,
    minimum=min,
    clip=lambda a, lo, hi: min(max(a, lo), hi),
    heaviside=lambda x, at_zero: 1 if x > 0 else at_zero if x == 0 else 0,
    logaddexp=lambda a, b: max(a, b) + mpmath.log1p(mpmath.exp(-abs(a - b))),
    sqrt=mpmath.sqrt,
)


class sigmoid(sp.Function):  # noqa: N801 - SymPy convention: functions are lower case
    """The logistic sigmoid, σ(x) = 1 / (1 + e^{-x})."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x is sp.S.Zero:  # not x.is_zero: the assumptions system is slow on large arguments
            return sp.S.Half
        return None

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise sp.ArgumentIndexError(self, argindex)
        return DERIVATIVES[sigmoid](self, self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sp.exp(-x))

    def _eval_evalf(self, prec):
        return (1 / (1 + sp.exp(-self.args[0])))._eval_evalf(prec)


class tanh(sp.Function):  # noqa: N801 - SymPy convention: functions are lower case
    """The hyperbolic tangent, as an atom with a derivative rule and nothing else.

    SymPy's own ``tanh`` asks the assumptions of its argument when it is built and when it
    is multiplied; on nested calls those queries cost time exponential in the depth
    (``tanh`` nested 10 deep: minutes).  This one, like :class:`sigmoid`, asks nothing.
    """

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x is sp.S.Zero:
            return sp.S.Zero
        return None

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise sp.ArgumentIndexError(self, argindex)
        return DERIVATIVES[tanh](self, self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return (sp.exp(x) - sp.exp(-x)) / (sp.exp(x) + sp.exp(-x))

    def _eval_evalf(self, prec):
        return sp.tanh(self.args[0])._eval_evalf(prec)


class Primitive(sp.Function):
    """An element-wise primitive of the vocabulary beyond σ and tanh: an atom that asks SymPy
    nothing (no assumptions, no automatic evaluation), differentiated by its rule in
    :data:`DERIVATIVES`.  ``oracle`` writes it in SymPy's own functions (``Max``, ``log``, ...), so
    that the exact oracle differentiates it without our rule; ``value`` computes it on numbers
    (mpmath or NumPy, through ``lib``)."""

    def _eval_evalf(self, prec):
        """The value on numbers, by :meth:`value` in mpmath at ``prec`` bits (None: not all numbers)."""
        args = [a.evalf(prec_to_dps(prec)) for a in self.args]
        if not all(a.is_Number for a in args):
            return None
        with mpmath.workprec(prec):
            got = self.value(MPMATH, *[mpmath.mpf(sp.Float(a, prec_to_dps(prec))._mpf_) for a in args])
            return sp.Float(mpmath.mpf(got), prec_to_dps(prec))

    def fdiff(self, argindex=1):
        parts = partials(self)
        if not 1 <= argindex <= len(parts):
            raise sp.ArgumentIndexError(self, argindex)
        return parts[argindex - 1]


class step(Primitive):  # noqa: N801
    """The unit step with its value at 0 given: ``step(x, 0)`` is [x > 0], ``step(x, 1)`` is
    [x >= 0].  It only appears in derivatives (of relu, max, clip, ...); its own derivative is 0."""

    nargs = 2

    @staticmethod
    def oracle(x, at_zero):
        return sp.Heaviside(x, at_zero)

    @staticmethod
    def value(lib, x, at_zero):
        return lib.heaviside(x, at_zero)


class relu(Primitive):  # noqa: N801
    """max(x, 0)."""

    nargs = 1

    @staticmethod
    def oracle(x):
        return sp.Max(x, 0)

    @staticmethod
    def value(lib, x):
        return lib.maximum(x, 0)


class softplus(Primitive):  # noqa: N801
    """log(1 + e^x), computed without overflow."""

    nargs = 1

    @staticmethod
    def oracle(x):
        return sp.log(1 + sp.exp(x))

    @staticmethod
    def value(lib, x):
        return lib.logaddexp(0, x)


class log_sigmoid(Primitive):  # noqa: N801
    """log σ(x) = −softplus(−x), computed without overflow."""

    nargs = 1

    @staticmethod
    def oracle(x):
        return -sp.log(1 + sp.exp(-x))

    @staticmethod
    def value(lib, x):
        return -softplus.value(lib, -x)


class hard_sigmoid(Primitive):  # noqa: N801
    """clip(αx + β, 0, 1); ``hard_sigmoid(x)`` has ONNX's and Keras 2's α = 0.2, β = 0.5
    (PyTorch's ``hardsigmoid`` and Keras 3's are ``hard_sigmoid(x, 1/6, 1/2)``)."""

    nargs = (1, 3)
    DEFAULTS = (sp.Rational(1, 5), sp.Rational(1, 2))

    @classmethod
    def eval(cls, x, alpha=None, beta=None):
        if alpha is None:
            return cls(x, *cls.DEFAULTS)
        return None

    @staticmethod
    def oracle(x, alpha, beta):
        return sp.Min(sp.Max(alpha * x + beta, 0), 1)

    @staticmethod
    def value(lib, x, alpha, beta):
        return clip.value(lib, alpha * x + beta, 0, 1)


class maximum(Primitive):  # noqa: N801
    """max(a, b), element-wise (written ``max``)."""

    nargs = 2

    @staticmethod
    def oracle(a, b):
        return sp.Max(a, b)

    @staticmethod
    def value(lib, a, b):
        return lib.maximum(a, b)


class minimum(Primitive):  # noqa: N801
    """min(a, b), element-wise (written ``min``)."""

    nargs = 2

    @staticmethod
    def oracle(a, b):
        return sp.Min(a, b)

    @staticmethod
    def value(lib, a, b):
        return lib.minimum(a, b)


class clip(Primitive):  # noqa: N801
    """min(max(a, lo), hi), as TensorFlow's ``cell_clip`` and ONNX's ``clip``."""

    nargs = 3

    @staticmethod
    def oracle(a, lo, hi):
        return sp.Min(sp.Max(a, lo), hi)

    @staticmethod
    def value(lib, a, lo, hi):
        return lib.clip(a, lo, hi)


class sqrt(Primitive):  # noqa: N801
    """√x (an atom, so that its derivative 1/(2√x) reads in the stored value)."""

    nargs = 1

    @staticmethod
    def oracle(x):
        return sp.sqrt(x)

    @staticmethod
    def value(lib, x):
        return lib.sqrt(x)


class absolute(Primitive):  # noqa: N801
    """|x| (written ``abs``)."""

    nargs = 1

    @staticmethod
    def oracle(x):  # not Abs: its derivative asks for re(x) and im(x) of a symbol with no assumptions
        return sp.Piecewise((x, x >= 0), (-x, True))

    @staticmethod
    def value(lib, x):
        return abs(x)


# f'(x) in terms of y = f(x) (and the arguments where the output does not suffice); a function of several
# arguments gives one partial per argument.  At a kink the derivative is PyTorch's: relu'(0) = 0, clip passes the
# gradient at its bounds, max/min share it at a tie, |x|'(0) = 0, hard_sigmoid' = 0 at its corners.  SymPy's own
# tanh has its rule too, for cells built in Python with it; specs and formulas give :class:`tanh`.
DERIVATIVES = {
    sigmoid: lambda y, x: y * (1 - y),  # σ' = σ(1 − σ)
    tanh: lambda y, x: 1 - y**2,  # tanh' = 1 − tanh²
    sp.tanh: lambda y, x: 1 - y**2,  # tanh' = 1 − tanh²
    sp.exp: lambda y, x: y,  # exp' = exp
    sp.log: lambda y, x: 1 / x,  # log' = 1/x
    relu: lambda y, x: step(y, 0),  # [x > 0]
    softplus: lambda y, x: 1 - sp.exp(-y),  # σ(x)
    log_sigmoid: lambda y, x: 1 - sp.exp(y),  # 1 − σ(x)
    hard_sigmoid: lambda y, x, a, b: (a * step(y, 0) * step(1 - y, 0), x * step(y, 0) * step(1 - y, 0),
                                      step(y, 0) * step(1 - y, 0)),
    maximum: lambda y, a, b: (step(a - b, sp.S.Half), step(b - a, sp.S.Half)),
    minimum: lambda y, a, b: (step(b - a, sp.S.Half), step(a - b, sp.S.Half)),
    clip: lambda y, a, lo, hi: (step(a - lo, 1) * step(hi - a, 1), step(lo - a, 0), step(a - hi, 0)),
    sqrt: lambda y, x: 1 / (2 * y),
    absolute: lambda y, x: step(x, 0) - step(-x, 0),  # sign(x)
    step: lambda y, x, at_zero: (sp.S.Zero, sp.S.Zero),
}


def partials(e: sp.Expr) -> tuple[sp.Expr, ...]:
    """The partial derivatives of the registered function application ``e``, one per argument."""
    got = DERIVATIVES[type(e)](e, *e.args)
    return got if isinstance(got, tuple) else (got,)


# The element-wise primitives a cell or a formula may call, by their written name.
PRIMITIVES = {
    "sigmoid": sigmoid, "tanh": tanh, "exp": sp.exp, "log": sp.log, "relu": relu, "softplus": softplus,
    "log_sigmoid": log_sigmoid, "hard_sigmoid": hard_sigmoid, "max": maximum, "min": minimum, "clip": clip,
    "sqrt": sqrt, "abs": absolute, "step": step,
}
WRITTEN = {fn: name for name, fn in PRIMITIVES.items()}  # maximum → "max"
# Written names that are a composition of others rather than a primitive of their own.
SPELLINGS = {"square": lambda x: x**2}


def arities(fn) -> tuple[int, ...]:
    """The numbers of arguments a written call of ``fn`` may take (``hard_sigmoid``: 1, or 3 with its
    constants; SymPy's ``log`` only 1: no base)."""
    return tuple(sorted(fn.nargs)) if isinstance(fn, type) and issubclass(fn, Primitive) else (1,)


PIECEWISE = (relu, hard_sigmoid, maximum, minimum, clip, absolute, step)  # derivatives in step: kinks
