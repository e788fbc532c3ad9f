"""What the formula front end produces and reports: its error type and shaped values (the two
atoms only formulas contain, ``ColumnSlice`` and ``BatchSum``, are in :mod:`..core.functions`)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, replace

import sympy as sp

from ..errors import LocatedError

Shape = tuple[str | None, ...] | None  # None: unknown (no shapes given); a None dim: unknown size


class FormulaError(LocatedError):
    """A formula cannot be read: ``str()`` is ``"<where>:<line>:<column>: <reason>"``."""

    WHERE = "formula"


def position(text: str, index: int) -> tuple[int, int]:
    """1-based (line, column) of ``text[index]``."""
    index = min(index, len(text))
    return text.count("\n", 0, index) + 1, index - text.rfind("\n", 0, index)


@dataclass(frozen=True)
class Value:
    """A transformed sub-formula: its expression, its shape and its span in the text."""

    expr: sp.Expr
    shape: Shape
    start: int
    end: int
    transposed: bool = False
    matrix_hint: bool = False  # without shapes: looks like a matrix (upper-case name, slice)

    def but(self, **changes) -> Value:
        return replace(self, **changes)

    @property
    def is_matrix(self) -> bool:
        if self.shape is None:
            return self.matrix_hint
        return len(self.shape) == 2


def show(shape: Shape) -> str:
    """``hidden×input``; ``scalar`` for ``()``."""
    if shape is None:
        return "unknown"
    return "×".join(d or "?" for d in shape) if shape else "scalar"


def unify(a: Shape, b: Shape) -> Shape:
    """The common shape of two element-wise operands (scalars broadcast); ValueError if none."""
    if a is None or b is None:
        return None
    if a == () or b == ():
        return a or b
    if len(a) != len(b) or any(x and y and x != y for x, y in zip(a, b, strict=True)):
        raise ValueError(f"{show(a)} and {show(b)}")
    return tuple(x or y for x, y in zip(a, b, strict=True))


def suggest(name: str, known: Iterable[str]) -> str:
    """``" (did you mean 'W_f'?); known: ..."`` for an unknown name."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    listed = ", ".join(known[:15]) + (", ..." if len(known) > 15 else "")
    return f"{hint}; known: {listed or 'none'}"
