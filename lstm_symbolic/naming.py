"""Every naming rule of the project, in one place."""

from __future__ import annotations

import sympy as sp


def adjoint(name: str) -> str:
    """The adjoint (gradient of the loss) of quantity ``name``: ``d_<name>``."""
    return f"d_{name}"


def prev(name: str) -> str:
    """The value of ``name`` one step earlier: ``<name>_prev``."""
    return f"{name}_prev"


def seed(state: str, used_inside: bool) -> str:
    """The gradient reaching state ``state`` from outside the step.

    An output used nowhere inside the step (h) receives only this, so its seed is its
    adjoint; a state used inside the step (c, read by h) has the seed ``d_<s>_next`` -
    the gradient from step t+1 - and a total adjoint ``d_<s>``.
    """
    return f"d_{state}_next" if used_inside else adjoint(state)


def shift_back(expr: sp.Expr, names: list[str]) -> sp.Expr:
    """``expr`` one step earlier: each of ``names`` becomes ``<name>_prev``."""
    return expr.xreplace({sp.Symbol(n): sp.Symbol(prev(n)) for n in names})


def module_name(cell_name: str) -> str:
    """File and module name of a cell's generated code (``lstm-peephole`` → ``lstm_peephole``)."""
    return cell_name.replace("-", "_")
