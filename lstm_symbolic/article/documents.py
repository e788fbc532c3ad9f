"""The derivation as an article: every section built from a derivation (Cell → Document).

Forward pass, the chain rule of every adjoint (``steps``), the recursion into step t−1, the
parameter gradients as sums over time (with a profile's stacked layout), the step Jacobian
partial and total, and the conventions.  Decisions live here; templates only lay out.
"""

from __future__ import annotations

import re

import sympy as sp

from .. import naming
from .. import notation as notations
from ..core.cells import Cell
from ..core.derive import Adjoint, Derivation, Step
from ..core.functions import PIECEWISE, UNITS, MatVec, Reduction
from ..errors import UserError
from ..notation import Notation
from ..printing.latex import ONES
from ..spec.builtins import load_cell
from .document import Block, Context, Document, Plain, Prose, Row, Section, wrap_sum
from .jacobian_section import jacobian_section

# How the built-in cells are called in a title ("Backpropagation through time of the LSTM cell").
TITLES = {
    "lstm": "LSTM cell",
    "lstm-peephole": "LSTM cell with peephole connections",
    "lstm-cifg": "LSTM cell with coupled input and forget gates",
    "gru": "GRU cell",
    "gru-reset-after": "GRU cell with the reset gate after the matrix product",
}


def forward_section(ctx: Context) -> Section:
    blocks = []
    for eq in ctx.cell.equations:
        rhs = stacked_forward(ctx, eq.rhs)
        blocks.append(Block(eq.lhs.name, (Row(ctx.tex(eq.lhs), rhs),)))
    intro = "One step of the cell, from $" + ", ".join(
        ctx.tex(sp.Symbol(n)) for n in _step_inputs(ctx.cell)) + "$:"
    return Section("Forward pass", intro, tuple(blocks), "forward")


def _step_inputs(cell: Cell) -> list[str]:
    return [q.name for q in cell.inputs] + [naming.prev(s) for s in cell.states]


def stacked_forward(ctx: Context, rhs) -> str:
    """``rhs`` printed with a profile's stacked weights combined (ng: W_f [a; x])."""
    for stack in ctx.notation.stacks:
        if stack.axis != "columns":
            continue
        parts = [MatVec(sp.Symbol(w), sp.Symbol(v)) for w, v in zip(stack.parts, stack.operands,
                                                                     strict=True)]
        if all(p in rhs.args for p in parts):
            rest = ctx.tex(rhs - sp.Add(*parts))
            return f"{stack.latex} {stack.operand_latex} + {rest}"
    return ctx.tex(rhs)


def ordered_steps(ctx: Context, steps: tuple[Step, ...]) -> list[Step]:
    """Steps in the forward order of what they pass through (f before i before o)."""
    return sorted(steps, key=lambda s: ctx.rank.get(getattr(s.via, "name", ""), len(ctx.rank)))


def chain_term(ctx: Context, step: Step) -> str:
    """The symbolic chain rule of one step: ∂E/∂via ⊙ ∂via/∂target, or its transpose form."""
    via = _forward_of(ctx, step.via)
    target = step.target
    if step.kind == "matvec" and not ctx.notation.scalar:
        return rf"\left({ctx.partial(via, target)}\right)^{{\!\top}} {ctx.grad(via)}"
    return rf"{ctx.grad(via)} {ctx.printer.times} {ctx.partial(via, target)}"


def _forward_of(ctx: Context, via):
    for adj in ctx.derivation.adjoints:
        if adj.name == via:
            return adj.of
    return via


def adjoint_block(ctx: Context, adj: Adjoint, steps: bool) -> Block:
    """``δA = seed + Σ terms``; with ``steps`` the chain rule line first."""
    lhs = ctx.tex(adj.name)
    ordered = ordered_steps(ctx, adj.steps)
    seed = [ctx.tex(adj.seed)] if adj.seed is not None and adj.steps else []
    values = seed + [ctx.tex(s.term) for s in ordered]
    if not steps:
        return Block(_slug(adj), tuple(wrap_sum(values, lhs)))
    chain = seed + [chain_term(ctx, s) for s in ordered]
    grad = ctx.grad(adj.of)
    rows = wrap_sum(chain, lhs if lhs == grad else lhs + " = " + grad)  # ∂E/∂x = ∂E/∂x: once
    rows += wrap_sum(values, "")
    return Block(_slug(adj), tuple(rows))


def _slug(adj: Adjoint) -> str:
    return adj.name.name


def backward_section(ctx: Context, steps: bool) -> Section:
    inputs = set(_step_inputs(ctx.cell))
    blocks = []
    for adj in ctx.derivation.adjoints:
        if not adj.steps or getattr(adj.of, "name", "") in inputs:
            continue
        blocks.append(adjoint_block(ctx, adj, steps))
    return Section("Backward pass within step $t$", _seed_intro(ctx), tuple(blocks), "backward")


def _seed_intro(ctx: Context) -> str:
    parts = []
    for state, seed in ctx.derivation.seeds.items():
        s_t = ctx.tex(sp.Symbol(state))
        if seed.name.endswith("_next"):
            parts.append(f"${ctx.tex(seed)}$ is the gradient reaching ${s_t}$ from step $t+1$")
        else:
            parts.append(f"${ctx.tex(seed)} = \\partial E/\\partial {s_t}$ is everything "
                         f"reaching ${s_t}$ (the loss at $t$ and step $t+1$)")
    where = "; ".join(parts)
    return (f"Given the gradients arriving at step $t$ ({where}), the adjoints are computed "
            "in this order, "
            "each from adjoints already known:")


def recursion_section(ctx: Context, steps: bool) -> Section:
    """δx_t, δh_{t-1}, δc_{t-1}, and how they seed step t−1."""
    blocks = [adjoint_block(ctx, a, steps) for a in ctx.derivation.input_adjoints]
    rows = []
    for state, seed in ctx.derivation.seeds.items():
        prev = ctx.tex(sp.Symbol(naming.adjoint(naming.prev(state))))
        if seed.name.endswith("_next"):
            rows.append(Row(ctx.notation.seed_latex(state, "t-1"), prev))
        elif state == ctx.cell.output:
            s_prev = ctx.tex(sp.Symbol(naming.prev(state)))
            loss = rf"\frac{{\partial E_{{t-1}}}}{{\partial {s_prev}}}"
            rows.append(Row(ctx.notation.adjoint_of(s_prev), f"{prev} + {loss}", r"\leftarrow"))
    blocks.append(Block("recursion", tuple(rows)))
    intro = ("The gradients this step passes back, to the input and to step $t-1$; "
             "step $t-1$ then starts from the gradients in the last lines "
             "(with the loss at $t-1$ added to the output's):")
    return Section("Gradients passed back: the recursion", intro, tuple(blocks), "recursion")


def params_section(ctx: Context) -> Section:
    """Every parameter gradient as a sum over time, one line per adjoint they share."""
    groups: dict[tuple, list[str]] = {}
    for grad in ctx.derivation.param_grads:
        ordered = ordered_steps(ctx, grad.steps)
        terms = [ctx.tex(s.term) for s in ordered] or ["0"]
        body = terms[0] if len(terms) == 1 else r"\left(" + " + ".join(terms) + r"\right)"
        key = tuple(s.via.name for s in ordered if isinstance(s.via, sp.Symbol))
        groups.setdefault(key, []).append(
            (grad.name.name, ctx.tex(grad.name), rf"\textstyle\sum_{{t=1}}^{{T}} {body}"))
    blocks = []
    for members in groups.values():
        for k in range(0, len(members), 3):  # at most three to a line
            (slug, lhs, rhs), rest = members[k], members[k + 1:k + 3]
            rhs += "".join(rf", \qquad {other} = {value}" for _, other, value in rest)
            blocks.append(Block(slug, (Row(lhs, rhs),)))
    blocks += layout_blocks(ctx)
    intro = ("Parameters are shared by every step, so their gradients are sums over "
             "$t = 1, \\dots, T$ (and over the examples of a batch) of each step's contribution:")
    return Section("Parameter gradients", intro, tuple(blocks), "params")


def layout_blocks(ctx: Context) -> list[Block]:
    """How a profile's stored (stacked) weights and their gradients are assembled."""
    blocks = []
    params = set(ctx.cell.param_names)
    for stack in ctx.notation.stacks:
        if not set(stack.parts) <= params:
            continue
        sep = r" & " if stack.axis == "columns" else r" \\ "
        parts = [ctx.tex(sp.Symbol(p)) for p in stack.parts]
        grads = [ctx.tex(sp.Symbol(naming.adjoint(p))) for p in stack.parts]
        rhs = (rf"\begin{{bmatrix}} {sep.join(parts)} \end{{bmatrix}}, \qquad "
               rf"{ctx.notation.adjoint_of(stack.latex)} = \begin{{bmatrix}} {sep.join(grads)} \end{{bmatrix}}")
        d_lin = _stack_adjoint(ctx, stack.parts[0])
        if stack.operands and d_lin is not None:
            rhs += rf" = \textstyle\sum_{{t=1}}^{{T}} {ctx.tex(d_lin)}\, {stack.operand_latex}^{{\top}}"
        blocks.append(Block("stack-" + re.sub(r"\W", "", stack.code), (Row(stack.latex, rhs),)))
    return blocks


def _stack_adjoint(ctx: Context, part: str):
    """The adjoint ``d_lin`` whose outer products make up the gradient of weight ``part``."""
    for grad in ctx.derivation.param_grads:
        if grad.param.name == part and len(grad.steps) == 1 and grad.steps[0].kind == "outer":
            return grad.steps[0].term.args[0]
    return None


def conventions_section(ctx: Context) -> Section:
    n, d = ctx.notation, ctx.notation.adjoint_of
    times, wx = n.times, f"W {n.matmul} x".replace("  ", " ")
    if n.scalar:
        items = [f"One unit: every quantity is a scalar and ${times}$ is an ordinary product."]
    else:
        items = [f"Vectors are column vectors; ${wx}$ is a matrix-vector product and "
                 "$^{\\top}$ a transpose.",
                 f"${times}$ is the element-wise (Hadamard) product; it binds weaker than the "
                 f"matrix product, so $a {times} {wx}$ means $a {times} ({wx})$.",
                 f"A weight gradient has the weight's shape: ${d('W')} = \\sum_t {d('z_t')}\\, "
                 "v_t^{\\top}$ for $z_t = W v_t + \\dots$ (rows: outputs, columns: inputs)."]
    sigma = "$\\sigma$ is the logistic sigmoid."
    items.append(f"$E$ is the loss summed over all steps; {sigma}" if n.adjoint == "partial" else
                 f"${d('v')} \\equiv \\partial E / \\partial v$ is the gradient of the loss $E$ "
                 f"summed over all steps with respect to $v$; {sigma}")
    items += list(n.notes_for(q.name for q in ctx.cell.quantities))
    if any(eq.rhs.atoms(*PIECEWISE) for eq in ctx.cell.equations):
        items.append("$[x > 0]$ is 1 where $x > 0$ and 0 elsewhere ($[x \\geq 0]$ likewise), and $H(x)$ "
                     "is the unit step with $H(0) = \\tfrac12$: the derivatives of the piecewise "
                     "functions, with PyTorch's values at the kinks.")
    if any(isinstance(eq.rhs, Reduction) for eq in ctx.cell.equations):
        items.append(f"$\\mathbf{{1}}$ is the vector of ${UNITS}$ ones: ${ONES}$ is the Jacobian of a sum across "
                     f"the units broadcast back to every unit, and $\\frac{{1}}{{{UNITS}}}{ONES}$ that of a mean.")
    intro = f"The notation is {n.description}."
    return Section("Conventions", intro, (), "conventions", tuple(items))


def cell_title(cell: Cell) -> Prose:
    """``LSTM cell`` for a built-in cell, ``<name> cell`` for any other."""
    if cell.name in TITLES and _is_builtin(cell):
        return (TITLES[cell.name],)
    return (Plain(cell.name), " cell")


def _is_builtin(cell: Cell) -> bool:
    try:
        return load_cell(cell.name) == cell
    except UserError:
        return False


def _heading(lead: str, cell: Cell, title: str | None) -> Prose:
    return (Plain(title),) if title else (lead, *cell_title(cell))


def derivation_document(cell: Cell | str, notation: str | Notation = "default", *,
                        steps: bool = False, derivation: Derivation | None = None,
                        title: str | None = None, author: str = "", date: str = "") -> Document:
    """The whole derivation of ``cell`` (a Cell, a built-in name or a spec path) as an article
    in ``notation``; ``title`` (default: Backpropagation through time of the <cell>),
    ``author`` and ``date`` (default: none) head it."""
    cell = load_cell(cell) if isinstance(cell, str) else cell
    profile = notation if isinstance(notation, Notation) else notations.get(notation)
    ctx = Context(cell, profile, derivation)
    sections = (conventions_section(ctx), forward_section(ctx), backward_section(ctx, steps),
                recursion_section(ctx, steps), params_section(ctx), jacobian_section(ctx))
    heading = _heading("Backpropagation through time of the ", cell, title)
    return Document(heading, cell.name, profile.name, sections, author, date)


def jacobian_document(cell: Cell | str, notation: str | Notation = "default", *,
                      total: bool = False, title: str | None = None, author: str = "",
                      date: str = "") -> Document:
    """Only the step Jacobian: the partial one, or (``total``) both, labelled."""
    cell = load_cell(cell) if isinstance(cell, str) else cell
    profile = notation if isinstance(notation, Notation) else notations.get(notation)
    ctx = Context(cell, profile)
    section = jacobian_section(ctx)
    if not total:
        section = Section(section.title, "", section.blocks[:1], section.slug)
    heading = _heading("The step Jacobian of the ", cell, title)
    return Document(heading, cell.name, profile.name, (section,), author, date)
