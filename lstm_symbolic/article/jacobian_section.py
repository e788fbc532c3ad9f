"""The article's section on the step Jacobian (d memory_t / d memory_{t-1}): partial, and total when
another state carries the memory, each term a product of diagonals, weights and reduction factors, labelled
and laid out to fit the page (part of :mod:`lstm_symbolic.article.documents`)."""

from __future__ import annotations

import sympy as sp

from .. import naming
from ..core.cells import Cell
from ..core.functions import linear_atoms
from ..core.jacobian import Diag, Jacobian, Term, jacobian
from ..printing.latex import term_factors
from . import document
from .document import Block, Context, Row, Section, visible_width, wrap_sum

# The order in which the usual expansion of dc_t/dc_{t-1} lists the gates, labelling the terms
# p (the carousel), q (forget gate), r (candidate), s (input gate).
EXPANSION_ORDER = ("f", "c_tilde", "i")


def jacobian_section(ctx: Context) -> Section:
    """d memory_t / d memory_{t-1}: partial, and total when another state carries it."""
    cell, blocks = ctx.cell, []
    mem = sp.Symbol(cell.memory)
    mem_prev = sp.Symbol(naming.prev(cell.memory))
    partial = jacobian(cell, total=False)
    lhs = ctx.partial(mem, mem_prev)
    held = [ctx.tex(sp.Symbol(naming.prev(s))) for s in cell.states if s != cell.memory]
    label = rf"\left.{lhs}\right|_{{{', '.join(held)}}}" if held else lhs
    blocks.append(Block("partial", tuple(wrap_sum(_jacobian_sum(ctx, partial.terms), label))))
    total, labels = jacobian(cell, total=True), ""
    if total.total:
        block, labels = _total_block(ctx, total, partial, mem, mem_prev)
        blocks.append(block)
    carousel = isinstance(partial.diagonal, sp.Symbol)  # diag(f_t) and nothing else
    intro = _jacobian_intro(ctx, held, carousel) + labels
    return Section(_jacobian_title(ctx), intro, tuple(blocks), "jacobian")


def _jacobian_sum(ctx: Context, terms) -> list[str]:
    """The printed terms of a Jacobian; a diagonal holding a sum is written as a sum of
    diagonals (diag(a + b) = diag(a) + diag(b)), so that a long one can break between them."""
    out = []
    for term in terms:
        if term.is_diagonal and term.factors and not ctx.notation.scalar \
                and isinstance(term.factors[0].expr, sp.Add):
            out += [" ".join(term_factors(Term((Diag(a),)), ctx.printer))
                    for a in ctx.printer.add_terms(term.factors[0].expr)]
        else:
            out.append(" ".join(term_factors(term, ctx.printer)))
    return out or ["0"]


def wrap_product(factors: list[str], lhs: str) -> list[Row]:
    """``lhs = f1 f2 ...`` over as many lines as needed, breaking between factors."""
    lines = [""]
    for factor in factors:
        if lines[-1] and visible_width(lines[-1] + factor) > WRAP_PRODUCT:
            lines.append(factor)
        else:
            lines[-1] = f"{lines[-1]} {factor}".strip()
    return [Row(lhs, lines[0])] + [Row("", r"\quad " + line, "") for line in lines[1:]]


WRAP_PRODUCT = 56  # a product's line is narrower: its continuation is indented


def _total_block(ctx: Context, total: Jacobian, partial: Jacobian, mem, mem_prev
                 ) -> tuple[Block, str]:
    """The total Jacobian as labelled terms (in the order of the usual expansion), and the
    sentence that says what each label stands for."""
    terms = sorted(total.terms, key=lambda t: _term_key(ctx, t))
    letters = _letters(len(terms))
    d = r"\mathrm{d}"
    lhs = rf"\frac{{{d} {ctx.tex(mem)}}}{{{d} {ctx.tex(mem_prev)}}}"
    if not terms:  # the memory does not reach itself through another state either
        return Block("total", (Row(lhs, "0"),)), ""
    many = rf"\textstyle\sum_{{k=1}}^{{{len(terms)}}} J_{{k}}"  # (letters J_k: more terms than letters)
    rows = [Row(lhs, many if letters[-1].startswith("J_") else " + ".join(letters))]
    said, through = [], []
    products = [term_factors(t, ctx.printer) for t in terms if not t.is_diagonal]
    # One too wide for a line: every product then breaks after its weight, all alike.
    split = any(visible_width(" ".join(f)) > WRAP_PRODUCT for f in products)
    for letter, term in zip(letters, terms, strict=True):
        if term.is_diagonal:
            rows += wrap_sum(_jacobian_sum(ctx, [term]), letter)
            same = partial.diagonal is not None and sp.expand(
                sp.Add(*[f.expr for f in term.factors]) - partial.diagonal) == 0
            said.append(f"${letter}$ is the partial Jacobian" if same
                        else f"${letter}$ is the diagonal part")
        else:
            factors = term_factors(term, ctx.printer)
            if any(visible_width(f) > document.WRAP for f in factors):  # a diagonal wider than a line breaks inside
                rows += wrap_product([p for f, text in zip(term.factors, factors, strict=True) for p in (
                    document.diag_pieces(ctx.printer, f.expr, text, WRAP_PRODUCT) if isinstance(f, Diag) else [text])],
                    letter)
            elif split and len(factors) > 2:
                factors = [" ".join(factors[:2]), " ".join(factors[2:])]
                rows += [Row(letter, factors[0]), Row("", r"\quad " + factors[1], "")]
            else:
                rows += wrap_product(factors, letter)
            gate = _gate_of(ctx.cell, term)
            if gate is not None:
                through.append((f"${letter}$", f"${ctx.tex(sp.Symbol(gate))}$"))
    text = ""
    if through:
        letters_, gates = zip(*through, strict=True)
        verb = "runs" if len(through) == 1 else "run"
        said.append(f"{_and(letters_)} {verb} through {_and(gates)}")
    if said:
        text = " " + "; ".join(said) + "."
        gates = [g for g in (_gate_of(ctx.cell, t) for t in terms) if g is not None]
        if gates == list(EXPANSION_ORDER) and len(terms) == 4:
            text += (" These are the terms $p + q + r + s$ of the usual product-rule expansion "
                     f"of $\\partial {ctx.tex(mem)} / \\partial {ctx.tex(mem_prev)}$, in its order.")
    return Block("total", tuple(rows)), text


def _and(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _term_key(ctx: Context, term: Term) -> tuple:
    gate = _gate_of(ctx.cell, term)
    order = EXPANSION_ORDER.index(gate) if gate in EXPANSION_ORDER else len(EXPANSION_ORDER)
    return (not term.is_diagonal, order, ctx.rank.get(gate or "", len(ctx.rank)))


def _gate_of(cell: Cell, term: Term) -> str | None:
    """The gate a total-Jacobian term passes through: the value computed from the
    pre-activation that the term's weight feeds (U_f → z_f → f)."""
    weight = next((f for f in term.factors if isinstance(f, sp.Symbol)), None)
    if weight is None:
        return None
    pre = next((eq.lhs for eq in cell.equations
                if any(a.args[0] == weight for a in linear_atoms(eq.rhs))), None)
    gate = next((eq.lhs.name for eq in cell.equations if pre is not None
                 and pre in eq.rhs.free_symbols), None)
    return gate


def _letters(n: int) -> list[str]:
    pool = "pqrsuvwklmn"
    return list(pool[:n]) if n <= len(pool) else [f"J_{{{k + 1}}}" for k in range(n)]


def _jacobian_title(ctx: Context) -> str:
    mem = ctx.tex(sp.Symbol(ctx.cell.memory))
    prev = ctx.tex(sp.Symbol(naming.prev(ctx.cell.memory)))
    return rf"The step Jacobian $\partial {mem} / \partial {prev}$"


def _jacobian_intro(ctx: Context, held: list[str], carousel: bool) -> str:
    if not held:
        return "The memory is the only state, so the partial and the total Jacobian coincide:"
    out = ctx.cell.output
    eq = ctx.cell.equation(out)
    names = [q.name for q in ctx.cell.quantities if q.kind == "intermediate"]
    shifted = ctx.tex(naming.shift_back(eq.rhs, names))
    out_prev = ctx.tex(sp.Symbol(naming.prev(out)))
    return ("Two different matrices, always labelled. The partial Jacobian holds "
            f"${', '.join(held)}$ fixed{' (the constant error carousel)' if carousel else ''}. "
            f"The total Jacobian lets ${out_prev} = {shifted}$ move with the memory, which adds "
            "one term for every gate that reads it.")
