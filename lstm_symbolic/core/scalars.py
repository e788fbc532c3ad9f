"""One function applied to one component, for the component-level oracle (:mod:`.components`): left
symbolic for ``sympy.diff``, or a number by mpmath at a given precision, with bounded work whatever the
arguments are (exp past 10**15 is infinity or 0)."""

from __future__ import annotations

import mpmath
import sympy as sp

from .functions import Primitive, sigmoid, tanh
from .primitives import MPMATH


def apply_function(fn, args: list, digits: int | None, opaque: bool):
    """``fn(*args)`` on one component.  Symbolic: left as an atom (asking SymPy whether a large exact
    argument is zero costs seconds), the project's ``tanh`` as SymPy's, so that ``sympy.diff`` of a
    component-level loss owes nothing to its derivative rule.  The primitives beyond σ and tanh stay
    our atoms, differentiated by their rules as σ is (each rule is checked on its own against
    SymPy's derivative of :meth:`Primitive.oracle` and against PyTorch: tests/test_primitives.py;
    SymPy's ``Max`` and ``Heaviside`` ask the sign of their arguments, which costs minutes on a
    whole cell).  ``opaque``: a Symbol named after the call (SymPy asks a number's sign by evalf,
    exponential in nested calls; equal calls are equal names).  With ``digits``: a number."""
    if digits is not None:
        return _numeric(fn, args, digits)
    if opaque:
        return sp.Symbol(f"{fn.__name__}({', '.join(map(str, args))})")
    fn = sp.tanh if fn is tanh else fn
    return fn(*args, evaluate=False)


# Beyond this magnitude exp(x) is taken as ±infinity or 0 (and tanh, σ as ±1, 0): past it no
# formula's value can be compared, and SymPy's evalf of exp(exp(16)) runs for minutes.
MAX_EXP_ARG = mpmath.mpf(10) ** 15


def _exp(v):
    if mpmath.re(v) > MAX_EXP_ARG:
        return mpmath.inf
    return mpmath.mpf(0) if mpmath.re(v) < -MAX_EXP_ARG else mpmath.exp(v)


def _tanh(v):
    return mpmath.sign(mpmath.re(v)) if abs(mpmath.re(v)) > MAX_EXP_ARG else mpmath.tanh(v)


_MPMATH = {sigmoid: lambda v: 1 / (1 + _exp(-v)), tanh: _tanh, sp.tanh: _tanh, sp.exp: _exp, sp.log: mpmath.log}
_NOT_FINITE = {sp.oo: mpmath.inf, -sp.oo: -mpmath.inf, sp.zoo: mpmath.nan, sp.nan: mpmath.nan}


def _numeric(fn, args: list, digits: int) -> sp.Expr:
    """``fn(*args)`` for numbers, by mpmath at ``digits`` digits: bounded work whatever they are."""
    with mpmath.workdps(digits):
        values = [_mp(x, digits) for x in args]
        try:
            got = fn.value(MPMATH, *values) if issubclass(fn, Primitive) else _MPMATH[fn](*values)
        except (ValueError, ZeroDivisionError):  # log(0)
            return sp.nan
        return _sympy_number(mpmath.mpmathify(got), digits)


def _mp(x: sp.Expr, digits: int):
    if x in _NOT_FINITE:
        return _NOT_FINITE[x]
    re, im = (sp.Float(p, digits)._mpf_ for p in x.as_real_imag())
    return mpmath.mpc(re, im) if im != mpmath.mpf(0)._mpf_ else mpmath.mpf(re)


def _sympy_number(v, digits: int) -> sp.Expr:
    if isinstance(v, mpmath.mpc):
        return _sympy_number(v.real, digits) + sp.I * _sympy_number(v.imag, digits)
    if mpmath.isnan(v):
        return sp.nan
    if mpmath.isinf(v):
        return sp.oo if v > 0 else -sp.oo
    return sp.Float._new(v._mpf_, mpmath.libmp.dps_to_prec(digits))  # v as it is: mpf() would round it
