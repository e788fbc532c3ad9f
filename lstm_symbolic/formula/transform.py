"""The lark tree of a formula → SymPy (with shapes), one rule per grammar rule.

Part of the formula front end (:mod:`lstm_symbolic.formula.parse`).  Every value carries its
shape and its place in the text, so that each refusal names the line and column.
Non-recursive, so a long chain (``-----x``) cannot exhaust the Python stack.
"""

from __future__ import annotations

import re

import sympy as sp
from lark import Token
from lark.visitors import Transformer_NonRecursive

from ..core.functions import (
    PRIMITIVES,
    REDUCTIONS,
    SPELLINGS,
    UNITS,
    BatchSum,
    ColumnSlice,
    MatTVec,
    MatVec,
    Outer,
    Units,
    arities,
)
from .latex_rules import FUNCTIONS, LatexRules
from .values import FormulaError, Shape, Value, position, show, suggest, unify

MAX_EXPONENT = 16
MAX_NUMBER_BITS = 4096
MAX_LITERAL = 40
MAX_CALLS = 100  # function calls nested in one another (LaTeX's \tanh \tanh x needs no brackets)
_TOP = "T"  # a `^\top` superscript
_KNOWN = ", ".join(sorted(set(PRIMITIVES) | set(SPELLINGS) | set(REDUCTIONS)))
_SUMS = ("sum", "np.sum")
class ToSympy(LatexRules, Transformer_NonRecursive):
    """Transforms one parse tree; ``shapes`` None accepts any name and leaves shapes unknown."""

    def __init__(self, text: str, shapes, where: str, latex: bool):
        super().__init__()
        self.text, self.shapes, self.where, self.latex = text, shapes, where, latex
        self.calls: dict[sp.Expr, int] = {}  # sub-expression → function calls nested in it

    # -- errors -------------------------------------------------------------------------
    def error(self, at, reason: str) -> FormulaError:
        start = at.start_pos if isinstance(at, Token) else at.start
        return FormulaError(reason, *position(self.text, start), self.where)

    def src(self, v: Value) -> str:
        return " ".join(self.text[v.start : v.end].split()) or "?"

    def plain(self, v: Value, what: str = "here") -> Value:
        if v.transposed:
            raise self.error(v, f"a transpose (.T, ^\\top) may only be an operand of @, not {what}")
        return v

    # -- leaves -------------------------------------------------------------------------
    def name(self, items) -> Value:
        return self._name(items[0].value, items[0])

    def _name(self, name: str, tok: Token) -> Value:
        if name in ("True", "False", "None"):
            raise self.error(tok, f"'{name}' is not a quantity")
        shape = None
        if name == UNITS and (self.shapes is None or name not in self.shapes):  # the number of hidden units
            return Value(Units(), (), tok.start_pos, tok.end_pos)
        if self.shapes is not None:
            if name not in self.shapes:
                raise self.error(tok, f"unknown name '{name}'{suggest(name, self.shapes)}")
            shape = self.shapes[name]
        hint = bool(re.match(r"[A-Z]", name)) and not name.startswith("Gamma")
        return Value(sp.Symbol(name), shape, tok.start_pos, tok.end_pos, matrix_hint=hint)

    def number(self, items) -> Value:
        tok = items[0]
        mantissa, _, exponent = tok.value.lower().partition("e")
        if len(mantissa) > MAX_LITERAL or (exponent and abs(int(exponent)) > MAX_LITERAL):
            raise self.error(tok, f"number '{tok.value[:20]}...' is too long")
        return Value(sp.Rational(tok.value), (), tok.start_pos, tok.end_pos)

    # -- element-wise -------------------------------------------------------------------
    def _join(self, values: list[Value], at, op: str) -> Shape:
        shape = self.plain(values[0], f"an operand of {op}").shape
        for v in values[1:]:
            try:
                shape = unify(shape, self.plain(v, f"an operand of {op}").shape)
            except ValueError as exc:
                raise self.error(at, f"element-wise '{op}' of different shapes ({exc}): "
                                 f"{self.src(values[0])} and {self.src(v)}") from None
        return shape

    def _span(self, values, **kw) -> dict:
        return dict(start=values[0].start, end=values[-1].end, **kw)

    def sum(self, items) -> Value:
        if len(items) == 1:
            return items[0]
        values, signs = items[::2], [+1] + [-1 if t.value == "-" else 1 for t in items[1::2]]
        shape = self._join(values, items[1] if len(items) > 1 else values[0], "+")
        expr = sp.Add(*[s * v.expr for s, v in zip(signs, values, strict=True)])
        return Value(expr, shape, **self._span(values))

    def signed(self, items) -> Value:
        tok, v = items
        self.plain(v, f"the operand of unary {tok.value}")
        return v.but(expr=-v.expr if tok.value == "-" else v.expr, start=tok.start_pos)

    def pow(self, items) -> Value:
        base, tok, exponent = items
        self.plain(base, "the base of a power")
        e = self.plain(exponent, "an exponent").expr
        if not (e.is_Rational and abs(e) <= MAX_EXPONENT and e.q <= MAX_EXPONENT):
            raise self.error(exponent, f"the exponent must be a number between -{MAX_EXPONENT} "
                             f"and {MAX_EXPONENT}, not {self.src(exponent)}")
        b = base.expr
        bits = (abs(b.p).bit_length() + b.q.bit_length()) * abs(e.p) if b.is_Rational else 0
        if bits > MAX_NUMBER_BITS:
            raise self.error(base, "this power is too large a number")
        if base.shape not in (None, ()) and len(base.shape) != 1:
            raise self.error(tok, f"power of the matrix {self.src(base)}")
        return base.but(expr=b**e, end=exponent.end, matrix_hint=False)

    # -- products -----------------------------------------------------------------------
    def product(self, items) -> Value:
        """Left to right; element-wise runs are collected and multiplied at once."""
        if len(items) == 1:
            return items[0]
        run, k = [items[0]], 1
        while k < len(items):
            op = items[k] if isinstance(items[k], Token) else None
            rhs = items[k + 1] if op is not None else items[k]
            k += 2 if op is not None else 1
            kind = op.value if op is not None and op.type == "MULOP" else "ew"
            if op is None or op.type == "CDOT":
                left = run[-1]
                kind = "@" if left.is_matrix or left.transposed or rhs.transposed else "ew"
            if kind == "@":
                run = [self._matmul(self._collapse(run, op or rhs), rhs, op or rhs)]
            else:
                run.append(rhs.but(expr=1 / rhs.expr) if kind == "/" else rhs)
        return self._collapse(run, items[1] if len(items) > 1 else items[0])

    jprod = product

    def _collapse(self, run: list[Value], at) -> Value:
        if len(run) == 1:
            return run[0]
        shape = self._join(run, at, "*")
        return Value(sp.Mul(*[v.expr for v in run]), shape, **self._span(run))

    def _matmul(self, a: Value, b: Value, at) -> Value:
        if a.transposed and b.transposed:
            raise self.error(at, "both operands of @ are transposed")
        span = self._span([a, b])
        if self.shapes is None:
            atom = MatTVec if a.transposed else Outer if b.transposed else MatVec
            return Value(atom(a.expr, b.expr), None, **span, matrix_hint=atom is Outer)
        sa, sb = a.shape, b.shape
        if len(sa) == 2 and len(sb) == 1 and not b.transposed:
            rows, cols = (sa[1], sa[0]) if a.transposed else sa
            if cols and sb[0] and cols != sb[0]:
                raise self._mismatch(a, b, at)
            return Value((MatTVec if a.transposed else MatVec)(a.expr, b.expr), (rows,), **span)
        if len(sa) == 1 and len(sb) == 1 and b.transposed and not a.transposed:
            return Value(Outer(a.expr, b.expr), (sa[0], sb[0]), **span)
        raise self._mismatch(a, b, at, "the language has W @ v, W.T @ d and d @ v.T")

    def _mismatch(self, a: Value, b: Value, at, hint: str = "") -> FormulaError:
        t = [".T" if v.transposed else "" for v in (a, b)]
        return self.error(at, f"shape mismatch in {self.src(a)} @ {self.src(b)}: "
                          f"{self.src(a)} is {show(a.shape)}{t[0]}, {self.src(b)} is "
                          f"{show(b.shape)}{t[1]}" + (f"; {hint}" if hint else ""))

    # -- postfix ------------------------------------------------------------------------
    def attr(self, items) -> Value:
        v, tok = items
        attr = tok.value.lstrip(". \t\r\n")
        if attr != "T":
            raise self.error(tok, f"attribute access '.{attr}' is not allowed (only .T)")
        return self._transpose(v, tok)

    def _transpose(self, v: Value, tok: Token) -> Value:
        if v.transposed:
            raise self.error(tok, "a transpose of a transpose")
        return v.but(transposed=True, end=tok.end_pos)

    def slice(self, items) -> Value:
        w, start, stop = items
        if not isinstance(w.expr, sp.Symbol) or w.transposed or (w.shape and len(w.shape) != 2):
            raise self.error(w, f"only a named matrix can be sliced, not {self.src(w)}")
        for bound in (b for b in (start, stop) if b is not None):
            if self.plain(bound, "a slice bound").shape not in (None, ()):
                reason = f"a slice bound is a number or a size, not {self.src(bound)}"
                raise self.error(bound, reason)
        ends = [None if b is None else b.expr for b in (start, stop)]
        shape = None if w.shape is None else (w.shape[0], None)
        return Value(ColumnSlice.of(w.expr, *ends), shape, w.start, w.end, matrix_hint=True)

    def kwarg(self, items):
        return tuple(items)

    def call(self, items) -> Value:
        tok, args = items[0], items[1:]
        fname = "np.sum" if tok.type == "NPSUM" else tok.value
        positional = [a for a in args if isinstance(a, Value)]
        keywords = {k.value: v for k, v in (a for a in args if not isinstance(a, Value))}
        if tok.type == "NPCALL":
            return self._numpy_call(re.sub(r"\s", "", tok.value)[3:], tok, positional, keywords)
        if fname in REDUCTIONS and not keywords:
            return self._reduce(REDUCTIONS[fname], positional, tok)
        if fname in _SUMS:
            self._sum_keywords(tok, keywords)
        elif fname not in FUNCTIONS:
            raise self.error(tok, f"unknown function '{fname}'; known: {_KNOWN}, "
                             "np.sum(X, axis=1, keepdims=True)")
        elif keywords:
            raise self.error(tok, f"{fname} takes no keyword arguments")
        fn = BatchSum if fname in _SUMS else FUNCTIONS[fname]
        counts = arities(fn) if fname not in SPELLINGS and fname not in _SUMS else (1,)
        if len(positional) not in counts:
            n = " or ".join(map(str, counts))
            raise self.error(tok, f"{fname} takes exactly {n} argument{'s' * (counts != (1,))}")
        return self._apply(fn, positional, tok)

    def _numpy_call(self, name: str, tok: Token, args: list[Value], keywords: dict) -> Value:
        """A notebook's NumPy spelling: ``np.tanh(a)``, ``np.dot(A, b)``, ``np.multiply(a, b)``,
        ``np.square(a)``; the same meaning as ``tanh(a)``, ``A @ b``, ``a * b``, ``a**2``."""
        arity = 2 if name in ("dot", "matmul", "multiply") else 1
        if keywords or len(args) != arity:
            raise self.error(tok, f"np.{name} takes exactly {arity} argument{'s' * (arity > 1)}, no keywords")
        if name in ("dot", "matmul"):
            return self._matmul(args[0], args[1], tok)
        if name == "multiply":
            return self.product([args[0], Token("MULOP", "*", start_pos=tok.start_pos), args[1]])
        if name == "square":
            two = Value(sp.Integer(2), (), tok.start_pos, tok.end_pos)
            return self.pow([args[0], Token("POW", "**", start_pos=tok.start_pos), two])
        return self._apply(FUNCTIONS[name], args[:1], tok)

    def _sum_keywords(self, tok: Token, keywords: dict) -> None:
        if set(keywords) - {"axis", "keepdims"} or keywords.get("axis", Token("", "")).value != "1":
            reason = "a batch sum is np.sum(X, axis=1, keepdims=True) or sum(X, axis=1)"
            raise self.error(tok, reason)
        if "keepdims" in keywords and keywords["keepdims"].value not in ("True", "False"):
            raise self.error(keywords["keepdims"], "keepdims is True or False")

    def _reduce(self, fn, args: list[Value], tok: Token) -> Value:
        """``sum(v)`` / ``mean(v)`` across the units of the vector v: a per-example scalar."""
        if len(args) != 1:
            raise self.error(tok, f"{tok.value} takes exactly 1 argument (a vector)")
        self.plain(args[0], f"the argument of {tok.value}")
        if args[0].shape not in (None,) and len(args[0].shape) != 1:
            raise self.error(tok, f"{tok.value}(v) runs over the units of a vector, not a {show(args[0].shape)} value")
        return Value(fn(args[0].expr), None if args[0].shape is None else (), tok.start_pos, args[-1].end)

    def _apply(self, fn, args: list[Value], tok: Token) -> Value:
        """``fn`` applied element-wise; its arguments have one shape (a number goes with any)."""
        for arg in args:
            self.plain(arg, f"an argument of {tok.value}")
            if self._nesting(arg.expr) >= MAX_CALLS:
                raise self.error(tok, f"functions nested deeper than {MAX_CALLS}")
        shape = self._join(args, tok, tok.value) if len(args) > 1 else args[0].shape
        return Value(fn(*[a.expr for a in args]), shape, tok.start_pos, args[-1].end)

    def _nesting(self, expr: sp.Expr) -> int:
        """Function calls nested in ``expr``; remembered, so a formula costs time linear in its size."""
        stack = [expr]
        while stack:
            top = stack[-1]
            todo = [a for a in top.args if a not in self.calls]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            inner = max((self.calls[a] for a in top.args), default=0)
            self.calls[top] = inner + isinstance(top, sp.Function)
        return self.calls[expr]
