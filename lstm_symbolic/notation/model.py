"""Notation profiles: how each internal name is written in LaTeX and in code (naming layer).

A profile changes names and layout conventions, never the mathematics.  Each entry maps an
internal name (``z_f``, ``c_tilde``, ``W_f``; see HELPERS.md) to its LaTeX, where ``@``
stands for the time index (``t`` or ``t-1``), and to its code name.  Adjoints are written in
one house style, ``\\delta`` before the quantity (δz_{f,t} ≡ ∂E/∂z_{f,t}); the seed reaching a
state from step t+1 carries a "next" mark.  Names a profile does not list (user cells, other
variants) fall back to a readable generic rendering in the profile's time style.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import MappingProxyType

from .. import naming
from ..errors import UserError

TIME_STYLES = ("sub", "angle", "sup")  # h_t, a^{⟨t⟩}, y^t
ADJOINT_STYLES = ("delta", "d", "partial")  # δx, dx, ∂E/∂x
ORDERS = ("declaration", "gates-first")  # how the factors of a product are ordered
VECTOR_STYLES = ("plain", "bold")  # h_t or \boldsymbol{h}_t for the quantities indexed by time

GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "kappa", "lambda",
    "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "phi", "chi", "psi", "omega", "Gamma",
    "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Phi", "Psi", "Omega",
}  # fmt: skip


class NotationError(UserError, ValueError):
    """An unknown notation profile was requested."""


@dataclass(frozen=True)
class Name:
    """One quantity in a profile: LaTeX (``@`` = time index, absent for parameters) and code."""

    latex: str
    code: str


@dataclass(frozen=True)
class Stack:
    """Weights a profile stores as one matrix: ``latex = [parts]`` along ``axis``.

    ``axis`` is ``"columns"`` (ng: W_f = [W_{fa} W_{fx}] acting on the stacked
    ``operands``) or ``"rows"`` (pytorch: W_{ih} = [W_{ii}; W_{if}; W_{ig}; W_{io}]).
    """

    latex: str
    code: str
    parts: tuple[str, ...]
    axis: str
    operands: tuple[str, ...] = ()
    operand_latex: str = ""
    operand_code: str = ""


@dataclass(frozen=True)
class Note:
    """One sentence of a profile's conventions (our prose, inline ``$math$``), said only of a cell
    that has every internal name in ``needs`` and none in ``unless``."""

    text: str
    needs: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()

    def holds_for(self, names: Iterable[str]) -> bool:
        have = set(names)
        return set(self.needs) <= have and not set(self.unless) & have


@dataclass(frozen=True)
class Notation:
    """A named profile: names, time style (``sub`` h_t, ``angle`` a^{⟨t⟩}, ``sup`` y^t).

    ``description`` cites the source as an author would and names no gate; what depends on
    the cell (gate names, weight layouts, biases) is in ``notes``, each said only where it holds.
    """

    name: str
    description: str
    names: MappingProxyType
    time_style: str = "sub"
    adjoint_code: str = "d_"
    scalar: bool = False
    stacks: tuple[Stack, ...] = ()
    notes: tuple[Note, ...] = field(default=())
    adjoint: str = "delta"  # how ∂E/∂x is written: delta δx, d dx, partial ∂E/∂x
    hadamard: str = ""  # the element-wise product ('' = \odot, or \cdot for one unit)
    matmul: str = ""  # between a matrix and what it multiplies ('' = juxtaposition)
    vector: str = "plain"  # plain h_t, or bold \boldsymbol{h}_t (time-indexed quantities)
    order: str = "declaration"  # factors: declaration order, or gates-first (Γ_f ⊙ c^{⟨t−1⟩})
    where: str = ""  # the file of a user's profile (checked against each cell it is used with)
    positions: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    @property
    def times(self) -> str:
        """The element-wise product symbol."""
        return self.hadamard or (r"\cdot" if self.scalar else r"\odot")

    def adjoint_of(self, latex: str) -> str:
        """∂E/∂(the quantity written ``latex``) in this profile's style."""
        if self.adjoint == "partial":
            return rf"\frac{{\partial E}}{{\partial {latex}}}"
        if self.adjoint == "d":
            return f"d{latex}"
        return rf"\delta {latex}"

    def notes_for(self, names: Iterable[str]) -> tuple[str, ...]:
        """The notes that hold for a cell with these internal names."""
        have = set(names)
        return tuple(n.text for n in self.notes if n.holds_for(have))

    def latex(self, name: str, time: str | None = "t") -> str:
        """LaTeX of internal ``name`` at ``time`` ("t", "t-1" or None for parameters)."""
        entry = self.names.get(name)
        if entry is not None:
            text = entry.latex.replace("@", time or "t")
            return bold(text) if self.vector == "bold" and time and not self.scalar else text
        if name.endswith("_prev_prev"):
            return self.latex(name[: -len("_prev_prev")], "t-2")
        if name.endswith("_prev"):
            return self.latex(name[: -len("_prev")], "t-1")
        if naming.is_adjoint(name):
            return self.adjoint_of(self.latex(naming.primal(name), time))
        text = generic_latex(name, time, self.time_style)
        return bold(text) if self.vector == "bold" and time and not self.scalar else text

    def adjoint_latex(self, name: str, time: str | None = "t") -> str:
        """``\\delta`` before the quantity: the house style for ∂E/∂(name)."""
        explicit = self.names.get(naming.adjoint(name))  # a source's own name (ng: da_{next})
        if explicit is not None:
            return explicit.latex.replace("@", time or "t")
        return self.adjoint_of(self.latex(name, time))

    def seed_latex(self, state: str, time: str = "t") -> str:
        """The gradient reaching ``state`` from step t+1 (``d_c_next``)."""
        explicit = self.names.get(naming.adjoint(f"{state}_next"))
        if explicit is not None:
            return explicit.latex.replace("@", time)
        mark = r"\mathrm{next}"
        base = self.latex(state, time)
        attached = attach(base, sub=mark) if self.time_style != "sub" else attach(base, sup=mark)
        return self.adjoint_of(attached)

    def code(self, name: str) -> str:
        """Code name of internal ``name`` (adjoints ``d_<name>`` included)."""
        if name in self.names:
            return self.names[name].code
        if naming.is_adjoint(name):
            return self.adjoint_code + self.code(naming.primal(name))
        for mark in ("_prev", "_next"):
            if name.endswith(mark) and name[: -len(mark)] in self.names:
                base = self.names[name[: -len(mark)]].code  # ng's c is c_next already
                return base if base.endswith(mark) else base + mark
        return name

    def internal(self, code: str, candidates: Iterable[str] | None = None) -> str:
        """The internal name whose code name is ``code`` (inverse of :meth:`code`).

        Code names are unique within one cell, not across cells (PyTorch's slice 0 is W_i in
        an LSTM, W_r in a GRU): pass the cell's names as ``candidates`` to decide.
        """
        pool = list(candidates) if candidates is not None else [
            variant
            for name in self.names
            for candidate in (name, naming.prev(name), naming.seed(name, True))
            for variant in (candidate, naming.adjoint(candidate))
        ]
        return next((name for name in pool if self.code(name) == code), code)


def attach(base: str, sup: str | None = None, sub: str | None = None) -> str:
    """``base`` with a superscript/subscript added, grouping it when it already has one."""
    top = top_level(base)
    if (sup is not None and "^" in top) or (sub is not None and "_" in top):
        base = "{" + base + "}"
    if sup is not None:
        base += f"^{{{sup}}}"
    return base + (f"_{{{sub}}}" if sub is not None else "")


def bold(latex: str) -> str:
    """``latex`` with its head (what the scripts attach to) in bold: ``\\boldsymbol{h}_{t}``."""
    depth = 0
    for k, ch in enumerate(latex):
        depth += ch == "{"
        depth -= ch == "}"
        if depth == 0 and ch in "_^" and k:
            return rf"\boldsymbol{{{latex[:k]}}}{latex[k:]}"
    return rf"\boldsymbol{{{latex}}}"


def top_level(latex: str) -> str:
    """``latex`` with every braced group removed: what a script would attach to."""
    depth, out = 0, []
    for ch in latex:
        depth += ch == "{"
        if depth == 0:
            out.append(ch)
        depth -= ch == "}"
    return "".join(out)


def _head(word: str) -> str:
    if word in GREEK:
        return "\\" + word
    return word if len(word) == 1 else rf"\mathrm{{{word}}}"


def generic_latex(name: str, time: str | None = "t", style: str = "sub") -> str:
    """A readable rendering of a name no profile lists: ``foo_bar`` → ``\\mathrm{foo}_{bar,t}``."""
    if name.endswith("_prev_prev"):
        return generic_latex(name[: -len("_prev_prev")], "t-2", style)
    if name.endswith("_prev"):
        return generic_latex(name[: -len("_prev")], "t-1", style)
    if naming.is_adjoint(name):
        return rf"\delta {generic_latex(naming.primal(name), time, style)}"
    head, *rest = [p for p in name.split("_") if p] or [name]
    sub = ",".join(re.sub(r"([A-Za-z]+)", lambda m: _sub_word(m.group(1)), r) for r in rest)
    if time is None:
        return _head(head) + (f"_{{{sub}}}" if sub else "")
    if style == "sub":
        return _head(head) + "_{" + ",".join(filter(None, [sub, time])) + "}"
    mark = rf"\langle {time} \rangle" if style == "angle" else time
    return _head(head) + (f"_{{{sub}}}" if sub else "") + f"^{{{mark}}}"


def _sub_word(word: str) -> str:
    if word in GREEK:
        return "\\" + word
    return word if len(word) <= 2 else rf"\mathrm{{{word}}}"
