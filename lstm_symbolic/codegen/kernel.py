"""The computation plan shared by the code emitters (Derivation → Kernel).

Linear atoms that share an operand are one matrix product with the weights stacked
(``x @ [W_f; W_i; W_c; W_o]^T``).  A product whose operand is an input does not depend on
the recurrence: the whole sequence's projection is one product before the time loop, and
its adjoint products (``d_x``, ``d_W``) one product after it.  Every weight gradient is one
product over all steps after the loop.  Element-wise work is an ordered list of
assignments with common subexpressions shared.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .. import naming
from ..core.cells import Cell, CellError
from ..core.derive import Derivation
from ..core.functions import MatTVec, MatVec, Reduction, unit_mean


@dataclass(frozen=True)
class Group:
    """The weights applied to one operand, stacked in declaration order."""

    operand: sp.Symbol
    weights: tuple[sp.Symbol, ...]
    adjoints: tuple[sp.Symbol, ...]  # d_lin of each block, same order
    per_step: bool  # False: operand is an input, projected for all steps at once

    @property
    def name(self) -> str:
        return self.operand.name

    def block(self, k: int) -> sp.Symbol:
        """The symbol standing for ``weights[k] @ operand`` in the forward statements."""
        return sp.Symbol(f"{self.weights[k].name}_{self.operand.name}")

    @property
    def back(self) -> sp.Symbol:
        """The symbol standing for Σ_k weights[k]^T d_lin_k in the backward statements."""
        return sp.Symbol(f"back_{self.operand.name}")


@dataclass(frozen=True)
class Assign:
    lhs: sp.Symbol
    rhs: sp.Expr


@dataclass(frozen=True)
class Reduce:
    """``lhs = sum(rhs)`` (``mean``: divided by the number of units) across the units of each example:
    a per-example scalar, complete only at the end of the pass that adds ``rhs`` up."""

    lhs: sp.Symbol
    rhs: sp.Expr
    mean: bool = False


def reduced(statements) -> tuple:
    """``statements`` with each reduction of an assignment hoisted into a :class:`Reduce` of its own
    (named ``_r<k>`` where it is only part of a right-hand side)."""
    out, names = [], sp.numbered_symbols("_r")
    for st in statements:
        if not isinstance(st, Assign) or not st.rhs.has(Reduction):
            out.append(st)
        elif isinstance(st.rhs, Reduction):
            out.append(Reduce(st.lhs, st.rhs.args[0], isinstance(st.rhs, unit_mean)))
        else:
            atoms = sorted(st.rhs.atoms(Reduction), key=sp.default_sort_key)
            fresh = {a: next(names) for a in atoms}
            out += [Reduce(fresh[a], a.args[0], isinstance(a, unit_mean)) for a in atoms]
            out.append(Assign(st.lhs, st.rhs.xreplace(fresh)))
    return tuple(out)


def reads(st) -> set:
    """The symbols a statement reads (an Assign's or a Reduce's right-hand side)."""
    return st.rhs.free_symbols if isinstance(st, (Assign, Reduce)) else set()


@dataclass(frozen=True)
class Project:
    """``proj = operand @ stacked(group)^T`` inside the step."""

    group: Group


@dataclass(frozen=True)
class BackProject:
    """``back = [d_lin ...] @ stacked(group)`` inside the step."""

    group: Group


@dataclass(frozen=True)
class Kernel:
    cell: Cell
    groups: tuple[Group, ...]
    forward: tuple  # Assign | Project, in order
    saved: tuple[sp.Symbol, ...]  # forward values the backward statements read
    backward: tuple  # Assign | BackProject, in order
    state_grads: tuple[tuple[str, sp.Expr], ...]  # (state, d_<state>_prev symbol or 0)
    input_grads: tuple[tuple[str, sp.Expr], ...]  # per-step part of d_x (0 when deferred)
    vector_grads: tuple[tuple[str, sp.Expr], ...]  # (param, per-example rhs), summed over batch
    seeds: tuple[tuple[str, sp.Symbol], ...]  # (state, seed symbol)

    @property
    def deferred(self) -> tuple[Group, ...]:
        return tuple(g for g in self.groups if not g.per_step)

    @property
    def recurrent(self) -> tuple[Group, ...]:
        return tuple(g for g in self.groups if g.per_step)


def _groups(derivation: Derivation) -> tuple[Group, ...]:
    cell = derivation.cell
    rank = cell.order()
    inputs = {q.symbol for q in cell.inputs}
    by_operand: dict[sp.Symbol, dict[sp.Symbol, sp.Symbol]] = {}
    for lin in derivation.linears:
        by_operand.setdefault(lin.operand, {})[lin.weight] = lin.adjoint
    groups = []
    for v in sorted(by_operand, key=lambda s: rank[s]):
        weights = tuple(sorted(by_operand[v], key=lambda s: rank[s]))
        d_v = derivation.adjoint_of(v.name)
        deferred = v in inputs and all(s.kind == "matvec" for s in d_v.steps)
        adjoints = tuple(by_operand[v][w] for w in weights)
        groups.append(Group(v, weights, adjoints, per_step=not deferred))
    return tuple(groups)


def _blocks(groups: tuple[Group, ...]) -> dict[MatVec, sp.Symbol]:
    """``{W @ v: W_v}``: each linear atom's forward value (a backward formula may read it)."""
    return {MatVec(w, g.operand): g.block(k) for g in groups for k, w in enumerate(g.weights)}


def _forward(cell: Cell, groups: tuple[Group, ...]) -> tuple:
    blocks = _blocks(groups)
    statements: list = []
    projected: set[str] = set()
    for eq in cell.equations:
        for g in groups:
            if g.per_step and g.name not in projected and eq.rhs.has(*[MatVec(w, g.operand) for w in g.weights]):
                statements.append(Project(g))
                projected.add(g.name)
        statements.append(Assign(eq.lhs, eq.rhs.xreplace(blocks)))
    return reduced(statements)


def _replace_back(expr: sp.Expr, groups: tuple[Group, ...]) -> tuple[sp.Expr, list[Group]]:
    """Swap each group's Σ W^T d_lin for its ``back`` symbol."""
    used = []
    for g in groups:
        terms = [MatTVec(w, d) for w, d in zip(g.weights, g.adjoints, strict=True)]
        if expr.has(*terms):
            expr = expr.xreplace({t: 0 for t in terms}) + g.back
            used.append(g)
    return expr, used


def check_names(kernel: Kernel) -> None:
    """What every emitter needs of a cell (the spec's checks, again, for cells made in Python): names
    that do not clash with the generated code's, and a parameter with hidden rows (the hidden size)."""
    cell = kernel.cell
    naming.check_cell(cell, [(w.name, g.name) for g in kernel.groups for w in g.weights])
    if not any(p.shape[0] == "hidden" for p in cell.params):
        raise CellError(f"cell '{cell.name}': the generated code reads the hidden size from a parameter "
                        "with hidden rows, and the cell has none")
    for size in (s for s in cell.sizes[2:] if not any(s in p.shape for p in cell.params)):
        raise CellError(f"cell '{cell.name}': the generated code reads the size {size} from a parameter, "
                        "and no parameter has it")
    for g in kernel.groups:
        if len({cell.shape(w.name)[0] for w in g.weights}) > 1:
            raise CellError(f"cell '{cell.name}': the weights multiplying {g.name} have different rows; "
                            "the generated code stacks them: give them one size")


def build_kernel(derivation: Derivation) -> Kernel:
    """Plan the step's forward and backward computation for the emitters."""
    cell = derivation.cell
    if len(cell.inputs) != 1:
        names = ", ".join(q.name for q in cell.inputs)
        raise CellError(f"{cell.name}: generated code takes one input sequence xs, and this cell has "
                        f"{len(cell.inputs)} inputs ({names}): stack them into one input")
    groups = _groups(derivation)
    seeds = {s.name for s in derivation.seeds.values()}
    deferred_inputs = {g.operand for g in groups if not g.per_step}
    blocks = _blocks(groups)
    plain: list = []
    for adj in derivation.adjoints:
        if adj.name.name in seeds or adj.of in deferred_inputs:
            continue
        rhs, used = _replace_back(adj.rhs.xreplace(blocks), tuple(g for g in groups if g.per_step))
        plain += [BackProject(g) for g in used] + [Assign(adj.name, rhs)]
    vector = tuple((p.param.name, p.rhs.xreplace(blocks)) for p in derivation.param_grads if p.kind == "vector")
    backward = _share_subexpressions(plain, [e for _, e in vector])
    backward, vector = reduced(backward[:-1]), tuple(zip([n for n, _ in vector], backward[-1], strict=True))
    state_grads = tuple(
        (s, derivation.adjoint_of(naming.prev(s)).name if derivation.adjoint_of(naming.prev(s)).steps else 0)
        for s in cell.states
    )
    input_grads = tuple(
        (q.name, 0 if q.symbol in deferred_inputs else derivation.adjoint_of(q.name).name)
        for q in cell.inputs
    )
    forward = _forward(cell, groups)
    saved = _saved(cell, groups, backward, vector)
    return Kernel(
        cell=cell,
        groups=groups,
        forward=forward,
        saved=saved,
        backward=backward,
        state_grads=state_grads,
        input_grads=input_grads,
        vector_grads=vector,
        seeds=tuple((s, derivation.seeds[s]) for s in cell.states),
    )



def _share_subexpressions(statements: list, extra: list[sp.Expr]) -> tuple:
    """CSE over the backward assignments (and the vector-gradient expressions, returned last).

    Each shared temporary is placed right before the first statement that reads it.
    """
    assigns = [s for s in statements if isinstance(s, Assign)]
    names = sp.numbered_symbols("_t")
    temps, reduced = sp.cse([a.rhs for a in assigns] + extra, symbols=names, order="none")
    pending = dict(temps)
    out: list = []

    def place(expr):
        for sym in sp.ordered(expr.free_symbols):
            if sym in pending:
                value = pending.pop(sym)
                place(value)
                out.append(Assign(sym, value))

    it = iter(reduced)
    for st in statements:
        if isinstance(st, Assign):
            rhs = next(it)
            place(rhs)
            out.append(Assign(st.lhs, rhs))
        else:
            out.append(st)
    rest = list(it)
    for expr in rest:
        place(expr)
    return tuple(out) + (tuple(rest),)


def _saved(cell: Cell, groups, backward, vector) -> tuple[sp.Symbol, ...]:
    """Forward values (and per-step operands) that the backward pass reads, in declaration order."""
    defined = {st.lhs for st in backward if isinstance(st, (Assign, Reduce))}
    blocks = list(_blocks(groups).values())
    forward_names = {q.symbol for q in cell.quantities if q.kind in ("input", "state", "intermediate")}
    forward_names |= set(blocks)
    read = {s for st in backward for s in reads(st)}
    read |= {s for _, e in vector for s in e.free_symbols}
    read |= {g.operand for g in groups if g.per_step}
    keep = (read - defined) & forward_names
    rank = cell.order()
    rank.update({b: len(rank) + k for k, b in enumerate(blocks)})
    return tuple(sorted(keep, key=lambda s: rank[s]))
