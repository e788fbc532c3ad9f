"""The article IR: sections of prepared LaTeX equations, and the context that prints them.

A :class:`Document` holds only strings, decided and printed in Python (see ``article.py``,
which builds one); the templates under ``article/templates/`` only lay them out.  A document is
notation-specific: the same derivation through another profile gives the same mathematics
under other names.  Prose is ours, with inline ``$math$``; user text inside it (a cell's name)
is kept apart as :class:`Plain`, which every renderer escapes for its language.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sympy as sp

from ..core.cells import Cell
from ..core.derive import Derivation, derive
from ..notation import Notation
from ..notation.profile_file import check_profile
from ..printing.latex import CellLatexPrinter, symbol_table

WRAP = 62  # estimated visible characters per display line before a sum is broken


@dataclass(frozen=True)
class Plain:
    """User text (a cell's name or description) inside prose: never markup, whatever it holds."""

    text: str


# Our prose with inline $math$ (str pieces) around user text (Plain pieces); a str alone is all ours.
Prose = str | tuple[str | Plain, ...]


@dataclass(frozen=True)
class Row:
    """One aligned line: ``lhs &= rhs`` (lhs empty on a continuation line)."""

    lhs: str
    rhs: str
    rel: str = "="


@dataclass(frozen=True)
class Block:
    """One equation (possibly over several lines); ``slug`` names its image file."""

    slug: str
    rows: tuple[Row, ...]
    note: str = ""


@dataclass(frozen=True)
class Section:
    title: Prose
    intro: Prose
    blocks: tuple[Block, ...]
    slug: str = ""
    items: tuple[Prose, ...] = ()  # bullet points (text with inline $math$)


@dataclass(frozen=True)
class Document:
    """A titled list of sections in one notation."""

    title: Prose
    cell: str
    notation: str
    sections: tuple[Section, ...]
    author: str = ""  # the user's, plain text (escaped by every renderer)
    date: str = ""

    def equations(self) -> tuple[tuple[str, Block], ...]:
        """Every block with its ordered file stem, e.g. ``("001-forward-z_f", block)``."""
        out, k = [], 0
        for section in self.sections:
            for block in section.blocks:
                k += 1
                out.append((f"{k:03d}-{section.slug}-{block.slug}", block))
        return tuple(out)

    def _repr_latex_(self) -> str:
        """Display math for Jupyter: one ``aligned`` block per section."""
        out = []
        for section in self.sections:
            rows = [row for block in section.blocks for row in block.rows]
            if rows:
                lines = [rf"{r.lhs} &{r.rel} {r.rhs}" for r in rows]
                out.append("$$\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}$$")
        return "\n".join(out)


class Context:
    """A cell, its derivation and a profile, with the printer they share."""

    def __init__(self, cell: Cell, profile: Notation, derivation: Derivation | None = None):
        check_profile(profile, cell)
        self.cell, self.notation = cell, profile
        self.derivation = derivation or derive(cell)
        self.table = symbol_table(cell, profile, self.derivation)
        quantities = list(cell.quantities)
        if profile.order == "gates-first":  # values computed in the step before what it reads
            quantities.sort(key=lambda q: q.kind != "intermediate")
        order = [q.name for q in quantities] + [s.name for s in self.derivation.seeds.values()]
        order += [a.name.name for a in self.derivation.adjoints]
        self.rank = {name: k for k, name in enumerate(dict.fromkeys(order))}
        self.printer = CellLatexPrinter(self.table, scalar=profile.scalar, order=self.rank,
                                        times=profile.times, matmul=profile.matmul)

    def tex(self, expr) -> str:
        return self.printer.doprint(expr)

    def _var(self, expr) -> str:
        text = self.tex(expr)
        return text if isinstance(expr, sp.Symbol) else rf"\left({text}\right)"

    def partial(self, num, den) -> str:
        return rf"\frac{{\partial {self._var(num)}}}{{\partial {self._var(den)}}}"

    def grad(self, of) -> str:
        return rf"\frac{{\partial E}}{{\partial {self._var(of)}}}"


def pieces(text: Prose) -> tuple[str | Plain, ...]:
    """The pieces of ``text``: ours (str) and the user's (Plain)."""
    return (text,) if isinstance(text, str) else text


def visible_width(latex: str) -> int:
    """A rough count of printed characters, for line breaking."""
    text = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", lambda m: max(m.groups(), key=len), latex)
    text = re.sub(r"\\(left|right|mathrm|mathit|operatorname)", "", text)
    text = re.sub(r"\\[A-Za-z]+", "x", text)
    return len(re.sub(r"[{}^_\s]|,", "", text))


def wrap_sum(terms: list[str], lhs: str, rel: str = "=") -> list[Row]:
    """``lhs = t1 + t2 + ...`` over as many lines as needed, breaking before a ``+``."""
    rows, line = [], ""
    for term in terms:
        sep = "" if not line else " - " if term.startswith("-") else " + "
        piece = term[1:].lstrip() if sep == " - " else term
        if line and visible_width(line + piece) > WRAP:
            rows.append(line)
            line = ("- " if sep == " - " else "+ ") + piece
        else:
            line += sep + piece
    rows.append(line)
    out = [Row(lhs, rows[0], rel)]
    out += [Row("", r"\quad " + r, "") for r in rows[1:]]
    return out


def diag_pieces(printer: CellLatexPrinter, expr: sp.Expr, whole: str, width: int) -> list[str]:
    """A diagonal factor printed as ``whole``, as pieces a product may break between: ``[whole]`` when it fits
    in ``width``, else opened by ``\\Bigl(`` and closed by ``\\Bigr)``, broken before each + of a sum and each
    ⊙ of a product (a sum inside a product between ``\\bigl(`` and ``\\bigr)``, broken likewise)."""
    if visible_width(whole) <= width:
        return [whole]
    inner = _pieces(printer, expr, width)
    inner[0] = ("" if printer.scalar else r"\operatorname{diag}") + r"\Bigl(" + inner[0]
    inner[-1] += r"\Bigr)"
    return inner


def _pieces(printer: CellLatexPrinter, expr: sp.Expr, width: int) -> list[str]:
    text = printer.doprint(expr)
    if visible_width(text) <= width:
        return [text]
    if expr.is_Add:
        out = []
        for k, term in enumerate(printer.add_terms(expr)):
            sign = "- " if k and term.could_extract_minus_sign() else "+ " if k else ""
            parts = _pieces(printer, -term if sign == "- " else term, width)
            out += [sign + parts[0], *parts[1:]]
        return out
    if expr.is_Mul:
        if expr.could_extract_minus_sign():
            parts = _pieces(printer, -expr, width)
            return ["-" + parts[0], *parts[1:]]
        (num, den), out = sp.fraction(expr), []
        if den != 1:  # a fraction too wide: 1/den times its numerator
            out, expr = [rf"\frac{{1}}{{{printer.doprint(den)}}}"], num
        coeff, factors = expr.as_coeff_mul()
        out += [printer.doprint(coeff)] if coeff != 1 else []
        for factor in sorted(factors, key=printer._factor_key):
            parts = _pieces(printer, factor, width)
            if factor.is_Add:
                parts = [r"\bigl(" + parts[0], *parts[1:-1], parts[-1] + r"\bigr)"] if len(parts) > 1 \
                    else [printer._add_parens(parts[0])]
            out += [f"{printer.times} {parts[0]}" if out else parts[0], *parts[1:]]
        return out
    return [text]
