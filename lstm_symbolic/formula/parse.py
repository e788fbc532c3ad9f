"""The formula language: text (plain or LaTeX) → SymPy, safely.  Front end of spec and verify.

The text is checked (length, characters, nesting), parsed by a LALR grammar
(:mod:`lstm_symbolic.formula.grammar`) and the lark tree is transformed into SymPy objects
directly: nothing the user wrote is ever evaluated as Python.

Semantics, per time step and per example (column vectors):

* ``+ - * / **`` and ``\\odot \\circ \\otimes`` are element-wise; ``**`` takes a constant
  exponent (|n| ≤ 16).  Precedence is Python's: ``-a**2`` is ``-(a**2)``; ``@`` binds like
  ``*``, left to right, so ``a @ b * c`` is ``(a @ b) * c``.
* ``W @ v`` → ``MatVec(W, v)``; ``W.T @ d`` → ``MatTVec(W, d)``; ``d @ v.T`` → ``Outer(d, v)``.
  With shapes the shapes decide; without, the position of ``.T`` does.  A transpose is only
  allowed as an operand of a matrix product.
* ``\\cdot`` and juxtaposition (``W_f x_t``) are a matrix product when the left factor is a
  matrix (by ``shapes``; without shapes: a name starting with an upper-case letter or a
  column slice) or when either factor is transposed; otherwise element-wise.
* ``Wf[:, :n_a]`` → :class:`ColumnSlice`; ``np.sum(X, axis=1, keepdims=True)`` and
  ``sum(X, axis=1)`` → :class:`BatchSum`.
* Text with a backslash, ``^``, ``_{`` or one of ``⊙ ∘ · σ ⊤`` is read as LaTeX, and so
  is text that only the LaTeX grammar can read (``W_f x_t + b_f``).
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping

import sympy as sp
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from ..core.functions import BatchSum, ColumnSlice
from . import grammar as grammar
from .transform import ToSympy
from .values import FormulaError, position

__all__ = [
    "BatchSum",
    "ColumnSlice",
    "FormulaError",
    "is_latex",
    "parse_formula",
    "parse_latex_formula",
    "parse_shaped",
]

MAX_LENGTH = 10_000
MAX_DEPTH = 100

Shapes = Mapping[str, tuple[str, ...]]


def parse_formula(text: str, shapes: Shapes | None = None, *, where: str = "formula") -> sp.Expr:
    """The SymPy expression of ``text`` (plain or LaTeX, detected by :func:`is_latex`).

    ``shapes`` maps every allowed name to its shape (``("hidden",)``, ``("hidden", "input")``,
    ``()`` for a scalar); ``None`` accepts any name.  Raises :class:`FormulaError`.
    """
    return parse_shaped(text, shapes, where=where)[0]


def parse_latex_formula(
    text: str, shapes: Shapes | None = None, *, where: str = "formula"
) -> sp.Expr:
    """Like :func:`parse_formula`, reading ``text`` as LaTeX whatever it looks like."""
    return parse_shaped(text, shapes, where=where, latex=True)[0]


def is_latex(text: str) -> bool:
    """A backslash, ``^``, ``_{`` or a LaTeX symbol (⊙ ∘ · σ ⊤) makes a formula LaTeX."""
    return any(s in text for s in ("\\", "^", "_{")) or bool(set(text) & grammar.UNICODE_SYMBOLS)


def parse_shaped(
    text: str, shapes: Shapes | None = None, *, where: str = "formula", latex: bool | None = None
) -> tuple[sp.Expr, tuple[str | None, ...] | None]:
    """``(expression, shape)``; the shape is ``None`` when ``shapes`` is ``None``.

    ``latex`` None detects the syntax; plain text that only LaTeX can read (``W_f x_t``,
    a product written without an operator) is read as LaTeX.
    """
    if not isinstance(text, str):
        raise FormulaError(f"a formula is text, not {type(text).__name__}", where=where)
    guess = is_latex(text) if latex is None else latex
    if not guess:
        text = _DICT_LOOKUP.sub(lambda m: m.group(3).ljust(len(m.group())), text)
    _check_text(text, where, guess)
    if guess:
        text = grammar.LATEX_BLANKS.sub(lambda m: " " * len(m.group()), text)
    try:
        tree = grammar.parser(guess).parse(text)
    except UnexpectedInput as exc:
        if (row := _ROW_SLICE.search(text)) and not guess:
            raise FormulaError(f"'{row.group()}' slices rows; formulas slice the columns of a stacked weight "
                               "(Wf[:, :n_a]): write the row block as its own name or transpose it",
                               *position(text, row.start()), where) from None
        if latex is not None or guess or "[" in text:  # x[0] is not x·[0]
            raise _syntax_error(exc, text, where) from None
        try:
            tree, guess = grammar.parser(True).parse(text), True
        except UnexpectedInput:
            raise _syntax_error(exc, text, where) from None
    table = None if shapes is None else _Shapes(shapes)
    transformer = ToSympy(text, table, where, guess)
    try:
        value = transformer.transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, FormulaError):
            raise exc.orig_exc from None
        raise
    transformer.plain(value, "the whole formula")
    return value.expr, value.shape


# A notebook's dictionary lookup, `parameters['Wf']`: read as the name `Wf` (kept at its length,
# so positions stay right) before the quotes could be refused.  Nothing is looked up.
_DICT_LOOKUP = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\[\s*(['\"])([A-Za-z_][A-Za-z0-9_]*)\2\s*\]")
_ROW_SLICE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\s*\[[^\[\],:]*:[^\[\],]*,\s*:?\s*\]")


def _shape(shape) -> tuple[str, ...]:
    return (shape,) if isinstance(shape, str) else tuple(shape)


class _Shapes(Mapping):
    """``shapes`` with each shape as a tuple, converted when read: a spec parses each equation
    against every name so far, and copying the table per equation would be quadratic."""

    def __init__(self, shapes: Shapes):
        self._shapes = shapes

    def __getitem__(self, name: str) -> tuple[str, ...]:
        return _shape(self._shapes[name])

    def __iter__(self):
        return iter(self._shapes)

    def __len__(self) -> int:
        return len(self._shapes)


def _check_text(text: str, where: str, latex: bool) -> None:
    """Refuse, before any parsing, what no formula contains."""
    if len(text) > MAX_LENGTH:
        raise FormulaError(
            f"formula is {len(text)} characters long; the limit is {MAX_LENGTH}",
            *position(text, MAX_LENGTH), where,
        )
    for i, ch in enumerate(text):
        if reason := _bad_char(ch, latex):
            raise FormulaError(reason, *position(text, i), where)
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch in "([{") - (ch in ")]}")
        if depth > MAX_DEPTH:
            reason = f"brackets nested deeper than {MAX_DEPTH}"
            raise FormulaError(reason, *position(text, i), where)
    for m in re.finditer(r"(?<![\\A-Za-z0-9_])[A-Za-z_][A-Za-z0-9_]*", text):
        word = m.group()
        if (keyword.iskeyword(word) and word not in ("True", "False", "None")) or "__" in word:
            raise FormulaError(
                f"'{word}' is Python, not part of the formula language",
                *position(text, m.start()), where,
            )
    if latex:
        for m in re.finditer(r"\\([A-Za-z]+|.?)", text):
            if m.group(1) not in grammar.LATEX_COMMANDS:
                known = " ".join(f"\\{c}" for c in sorted(grammar.LATEX_COMMANDS) if c.isalpha())
                raise FormulaError(
                    f"unknown LaTeX command '{m.group()}'; known: {known}",
                    *position(text, m.start()), where,
                )


def _bad_char(ch: str, latex: bool) -> str | None:
    if ch in "'\"":
        return "strings are not part of the formula language"
    if ch == ";":
        return "';' is not allowed: a formula is one expression"
    if ch in grammar.UNICODE_SYMBOLS:
        return None if latex else f"'{ch}' is LaTeX"
    if not ch.isascii():
        return f"non-ASCII character {ch!r} (U+{ord(ch):04X})"
    if not ch.isprintable() and ch not in "\t\n\r":
        return f"control character U+{ord(ch):04X}"
    return None


_TERMINALS = {
    "NAME": "a name", "LNAME": "a name", "NUMBER": "a number", "LPAR": "'('", "RPAR": "')'",
    "LSQB": "'['", "RSQB": "']'", "LBRACE": "'{'", "RBRACE": "'}'", "COMMA": "','",
    "COLON": "':'", "EQUAL": "'='", "ADDOP": "'+' or '-'", "MULOP": "'*', '/' or '@'",
    "POW": "'**'", "CARET": "'^'", "FUNC": "a function", "TOP": "'\\top'",
    "NPSUM": "np.sum", "NPCALL": "a NumPy function",
    "FRAC": "\\frac", "EWISE": "\\odot", "CDOT": "\\cdot", "ATTR": "'.T'",
}


def _syntax_error(exc: UnexpectedInput, text: str, where: str) -> FormulaError:
    line, column = max(exc.line, 1), max(exc.column, 1)
    if isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream]
        hint = "; attribute access is not allowed (only .T)" if ch == "." else ""
        return FormulaError(f"unexpected character {ch!r}{hint}", line, column, where)
    expected = sorted({_TERMINALS.get(t, t) for t in getattr(exc, "expected", ()) or ()})
    wanted = f"; expected {', '.join(expected[:6])}" if expected else ""
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        return FormulaError(f"unexpected {exc.token.value!r}{wanted}", line, column, where)
    line, column = position(text, len(text))
    return FormulaError(f"unexpected end of formula{wanted}", line, column, where)

