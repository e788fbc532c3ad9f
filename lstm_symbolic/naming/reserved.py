"""The identifiers the generated code keeps for itself (part of :mod:`lstm_symbolic.naming`): Python's and
C's keywords and built-in names, the C library's, the names of the generated modules and of the C runtime, and
the patterns of the names the emitters derive.  A spec cannot give any of them."""

from __future__ import annotations

import builtins
import keyword
import re


def _each(reason: str, names: str) -> dict[str, str]:
    return dict.fromkeys(names.split(), reason)


_C_KEYWORDS = """auto break case char const continue default do double else enum extern float for goto if inline
    int long register restrict return short signed sizeof static struct switch typedef union unsigned void volatile
    while alignas alignof bool constexpr false nullptr static_assert thread_local true typeof typeof_unqual asm"""
_LIBM = " ".join(f"{f} {f}f {f}l" for f in """acos acosh asin asinh atan atan2 atanh cbrt ceil copysign cos cosh erf
    erfc exp exp2 expm1 fabs fdim floor fma fmax fmin fmod frexp hypot ilogb ldexp lgamma llrint llround log log10
    log1p log2 logb lrint lround modf nan nearbyint nextafter nexttoward pow remainder remquo rint round scalbln
    scalbn sin sinh sqrt tan tanh tgamma trunc""".split())
_MATH_MACROS = "".join(f" M_{m} M_{m}l" for m in "E LOG2E LOG10E LN2 LN10 PI PI_2 PI_4 1_PI 2_PI 2_SQRTPI SQRT2 "
                        "SQRT1_2".split())
_C_LIBRARY = _LIBM + _MATH_MACROS + """ fpclassify isfinite isinf isnan isnormal signbit isgreater isgreaterequal
    isless islessequal islessgreater isunordered math_errhandling float_t double_t complex imaginary I memcpy memmove
    memset memcmp size_t ptrdiff_t wchar_t max_align_t offsetof errno NULL INFINITY NAN HUGE_VAL HUGE_VALF HUGE_VALL"""
_NUMPY_MODULE = """np t T B H I xs stacked sigmoid zeros cache params grads dtype state0 d_state_T d_hs d_xs
    d_state0 d_stacked forward backward step_forward step_backward init_params PARAMS STATES"""
_JAX_MODULE = "jax jnp lax"
_C_SOURCE = """T B D H BH xs hs hs_t params grads cache work state0 state_T d_state_T d_state0 d_hs d_xs
    mm_pk mm_nt mm_nn pk_pack pk_panels wg"""  # (the runtime's mm_pk_f64, ...: the kernel writes LSYM_K(mm_pk))
# Python's built-in names, without those the site module adds (help, exit, ...: present or not by how Python runs).
_PY_BUILTINS = " ".join(n for n in dir(builtins) if not n.startswith("_")
                        and n not in {"copyright", "credits", "exit", "quit", "license", "help"})

RESERVED: dict[str, str] = {
    **_each("a Python built-in name", _PY_BUILTINS),
    **_each("a Python keyword", " ".join(keyword.kwlist)),
    **_each("a C keyword", _C_KEYWORDS),
    **_each("a name of the C library the generated C includes (math.h, string.h, stddef.h, complex.h)",
            _C_LIBRARY),
    **_each("a name of the generated NumPy module", _NUMPY_MODULE),
    **_each("a name of the generated C", _C_SOURCE),
    **_each("a name of the generated JAX module", _JAX_MODULE),
    "t": "the time index of the generated code",
    "T": "the number of steps in the generated code",
    "B": "the batch size in the generated code",
    "H": "the hidden size in the generated code",
    "D": "the input size in the generated C",
    "I": "the input size in the generated NumPy module and the imaginary unit of C's complex.h",
    "np": "the generated module's name for NumPy",
    "xs": "the input sequence of the generated code",
    "hs": "the output sequence of the generated code",
    "sigmoid": "the logistic sigmoid of the generated NumPy module",
    "torch": "the generated PyTorch module's name for torch",
}
# Patterns of names the generated code derives itself: a spec cannot give them.
DERIVED_PATTERNS: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"d_.*"), "reserved for gradients (d_<name> is the gradient of <name>)"),
    (re.compile(r".*_(prev|next)"), "reserved for the neighbouring steps (<name>_prev, <name>_next)"),
)
# Patterns of the generated C and the libraries it includes: no name of the generated code may match.
RESERVED_PATTERNS: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"_.*|.*__.*"),
     "a name of the generated code (its private names and temporaries: _t0, tmp__t0 have '_' first or twice)"),
    (re.compile(r".*_"), "a name of the generated C (its own names end in '_')"),
    (re.compile(r".*_f(32|64)"), "a name of the generated C's functions (those end in _f32 and _f64)"),
    (re.compile(r"(omp|pthread|sched|cblas|openblas|scipy)_.*|Cblas.*"),
     "a name of a library the generated C includes (omp_, pthread_, sched_, cblas_, openblas_, scipy_)"),
    (re.compile(r"(?i)lsym_.*"), "a name of the C runtime the generated C includes (lsym_runtime.h: lsym_, LSYM_)"),
)
# A name in capitals (two or more) is a C macro's in all likelihood (EOF, LSTM_MR): not one a spec gives.
_CAPITALS = (re.compile(r"(?=(?:[^A-Z]*[A-Z]){2})[A-Z0-9_]+"),
             "written in capitals, as the C macros of the generated code and its headers are")


def reserved(name: str, given: bool = True) -> str | None:
    """What ``name`` already is in the generated code or its languages, or None when it is free.
    ``given``: a name a spec gives (else one the emitters derive, which may use their own patterns)."""
    if name in RESERVED:
        return RESERVED[name]
    patterns = DERIVED_PATTERNS + RESERVED_PATTERNS + (_CAPITALS,) if given else RESERVED_PATTERNS
    return next((why for pattern, why in patterns if pattern.fullmatch(name)), None)
