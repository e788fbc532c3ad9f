"""The derivation seen through a notation (part of ``verify``): shapes of the user's names and
the right formulas written in them, as text and LaTeX.

``RightFormulas.right("dWf", kept=True)`` is ``dft @ concat.T``: the derived gradient with the
notation's other quantities kept as names; ``kept=False`` writes everything in seeds and
forward values.  Weights stacked by the notation appear as column slices (``U_f`` is
``Wf[:, :n_a]``).
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property

import sympy as sp

from .. import naming
from .. import notation as notation_profiles
from ..core.derive import Derivation, stored_values
from ..core.functions import LINEAR_ATOMS, ColumnSlice, MatTVec, MatVec, Outer
from ..printing.latex import latex_of, symbol_table
from ..printing.text import text
from .names import Names, is_next_seed, names_for


class RightFormulas:
    """A derivation in the names of one notation (``scalar``: one unit, no stacked names)."""

    def __init__(self, derivation: Derivation, notation: str, scalar: bool):
        self.derivation, self.cell, self.scalar = derivation, derivation.cell, scalar
        seeds = {s: str(v) for s, v in derivation.seeds.items()}
        grads = tuple(str(a.name) for a in derivation.adjoints) + tuple(
            str(g.name) for g in derivation.param_grads)
        names = names_for(notation, self.cell, seeds, grads)
        self.names: Names = replace(names, stacked={}) if scalar else names
        self.quantities = tuple(q for q in self.names.quantities if self.names.internal(q))

    def canonical(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with every alias replaced by the notation's first name for it (ct → c)."""
        back = self.names.user()
        aliases = {sp.Symbol(u): sp.Symbol(back[i]) for u, i in self.names.renames.items() if back[i] != u}
        return expr.xreplace(aliases)

    # -- shapes of the user's names, for the parser ------------------------------------------
    def internal_shape(self, name: str) -> tuple[str, ...]:
        known = {q.name: q.shape for q in self.cell.quantities}
        while name not in known and naming.is_adjoint(name):
            name = naming.primal(name)
        return known.get(name, ("hidden",))

    @cached_property
    def shapes(self) -> dict[str, tuple]:
        n = self.names
        if self.scalar:
            return {name: () for name in [*n.renames, *n.sizes]}
        shapes = {user: self.internal_shape(name) for user, name in n.renames.items()}
        for user, (how, parts) in n.stacked.items():
            dims = [self.internal_shape(p) for p in parts]
            shapes[user] = (("+".join(d[0] for d in dims),) if how == "rows"
                            else (dims[0][0], "+".join(d[1] for d in dims)))
        shapes.update({user: () for user in n.sizes})
        return shapes

    @cached_property
    def seeds(self) -> tuple[sp.Symbol, ...]:
        back = self.names.user()
        return tuple(sp.Symbol(back[str(s)]) for s in self.derivation.seeds.values() if str(s) in back)

    @cached_property
    def next_seeds(self) -> tuple[sp.Symbol, ...]:
        """The seeds that come from step t+1 only (``dc_next``)."""
        return tuple(s for s in self.seeds if is_next_seed(self.names.renames[s.name]))

    @cached_property
    def activations(self) -> dict:
        """Forward value → the function that made it, in user names (``cct`` → tanh)."""
        back = self.names.user()
        return {sp.Symbol(back[v.name]): type(f) for f, v in stored_values(self.cell).items() if v.name in back}

    @cached_property
    def preactivations(self) -> dict:
        """Pre-activation → its activation, in user names (``zo`` → sigmoid)."""
        back = self.names.user()
        return {sp.Symbol(back[f.args[0].name]): type(f) for f in stored_values(self.cell)
                if isinstance(f.args[0], sp.Symbol) and f.args[0].name in back}

    # -- the right formulas -----------------------------------------------------------------
    @cached_property
    def _table(self) -> dict:
        d = self.derivation
        table = {a.name: a.rhs for a in d.adjoints if a.name != a.seed}
        table.update({g.name: g.rhs for g in d.param_grads})
        return table

    def _inline(self, expr: sp.Expr, keep: set) -> sp.Expr:
        table = {k: v for k, v in self._table.items() if k not in keep}
        for _ in range(len(table) + 1):
            new = expr.xreplace(table)
            if new == expr:
                break
            expr = new
        return expr

    def _parts(self, name: str, kept: bool) -> list[sp.Expr]:
        """The right formula of each internal quantity behind ``name`` (internal names)."""
        own = {sp.Symbol(p) for p in self.names.internal(name)}
        keep = {sp.Symbol(p) for q in self.quantities for p in self.names.internal(q)} - own if kept else set()
        return [self._inline(self._table[sp.Symbol(p)], keep) for p in self.names.internal(name)]

    def right(self, name: str, kept: bool) -> sp.Expr | None:
        """The right formula of a quantity in the user's names (None: cannot be written)."""
        parts = self._parts(name, kept)
        if len(parts) == 1:
            return self.to_user(parts[0])
        return self._stacked(parts)

    def _stacked(self, parts: list[sp.Expr]) -> sp.Expr | None:
        """``d @ concat.T`` for the stacked gradient [d @ a_prev.T, d @ xt.T]."""
        if not all(isinstance(p, Outer) and p.args[0] == parts[0].args[0] for p in parts):
            return None
        operands = tuple(str(p.args[1]) for p in parts)
        for user, (how, stack) in self.names.stacked.items():
            if how == "rows" and stack == operands:
                return Outer(self.to_user(parts[0].args[0]), sp.Symbol(user))
        return None

    @cached_property
    def _slices(self) -> dict:
        """internal weight → its column slice of a stacked user weight (U_f → Wf[:, :n_a])."""
        slices = {}
        for user, (how, parts) in self.names.stacked.items():
            if how != "cols" or len(parts) != 2:
                continue
            size = self.internal_shape(parts[0])[1]
            n = next((u for u, s in self.names.sizes.items() if s == size), None)
            if n is not None:
                w = sp.Symbol(user)
                slices[sp.Symbol(parts[0])] = ColumnSlice.of(w, None, sp.Symbol(n))
                slices[sp.Symbol(parts[1])] = ColumnSlice.of(w, sp.Symbol(n), None)
        return slices

    def to_user(self, expr: sp.Expr) -> sp.Expr:
        """An internal expression in the user's names."""
        slices = self._slices
        expr = expr.replace(lambda e: isinstance(e, (MatVec, MatTVec)) and e.args[0] in slices,
                            lambda e: type(e)(slices[e.args[0]], e.args[1]))
        back = {sp.Symbol(i): sp.Symbol(u) for i, u in self.names.user().items()}
        expr = expr.xreplace(back)
        if self.scalar:
            expr = expr.replace(lambda e: isinstance(e, LINEAR_ATOMS), lambda e: e.args[0] * e.args[1])
        return expr

    def chain(self, name: str) -> tuple[sp.Expr, ...]:
        """Products of local derivatives from the quantity up to the first adjoint with a seed or
        several contributions: ``ft*(1 - ft)``, then ``c_prev*ft*(1 - ft)`` for ``dft``."""
        parts = self.names.internal(name)
        if len(parts) != 1:
            return ()
        by_name = {a.name: a for a in self.derivation.adjoints}
        by_of = {a.of: a for a in self.derivation.adjoints}
        adj, product, chain = by_name.get(sp.Symbol(parts[0])), sp.S.One, []
        while adj is not None and adj.seed is None and len(adj.steps) == 1 and adj.steps[0].kind == "elementwise":
            product *= adj.steps[0].local
            chain.append(self.to_user(product))
            adj = by_of.get(adj.steps[0].via)
        return tuple(chain)

    # -- printing ---------------------------------------------------------------------------
    @cached_property
    def _rank(self) -> dict:
        back = self.names.user()
        return {sp.Symbol(back[s.name]): r for s, r in self.cell.order().items() if s.name in back}

    def show(self, expr: sp.Expr) -> str:
        """``expr`` in the formula language (what a formula file accepts back)."""
        return text(expr, self._rank)

    def latex(self, name: str, kept: bool) -> str:
        r"""The right formula in the notation profile's LaTeX (article names: ``\Gamma_f^{⟨t⟩}``,
        ``W_{fa}``)."""
        parts = self._parts(name, kept)
        profile = notation_profiles.get(self.names.notation)
        table = symbol_table(self.cell, profile, self.derivation)
        if len(parts) == 1:
            return latex_of(parts[0], table, scalar=self.scalar)
        operands = tuple(str(p.args[1]) for p in parts if isinstance(p, Outer))
        left = {p.args[0] for p in parts if isinstance(p, Outer)}
        stack = next((st for st in profile.stacks if st.operands == operands), None)
        if stack is not None and len(left) == 1 and len(operands) == len(parts):
            return rf"{latex_of(left.pop(), table, scalar=self.scalar)}\, {stack.operand_latex}^{{\top}}"
        cells = " & ".join(latex_of(p, table, scalar=self.scalar) for p in parts)
        return rf"\begin{{bmatrix}} {cells} \end{{bmatrix}}"

