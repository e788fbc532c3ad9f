"""Printers: SymPy printer subclasses that turn derivation expressions into text.

Each output language is one printer; a printer never derives.  Every primitive of
``functions.PRIMITIVES`` and every linear atom needs a ``_print_<name>`` rule in each printer
(a test holds this).
"""

from __future__ import annotations

import sympy as sp

from .. import naming
from ..core.functions import LINEAR_ATOMS


def _is_adjoint(expr: sp.Expr) -> bool:
    return isinstance(expr, sp.Symbol) and naming.is_adjoint(expr.name)


def presentation_order(expr: sp.Expr, rank: dict[sp.Symbol, int] | None = None) -> sp.Expr:
    """``expr`` rebuilt unevaluated in the order articles write it.

    Sums: matrix products first (in declaration order of their weight), then the rest;
    products: numbers, then adjoints (δc ⊙ c_{t-1}), then the rest.  Print the result with
    ``order="none"``.
    """
    rank = rank or {}
    if expr.is_Atom:
        return expr
    args = [presentation_order(a, rank) for a in expr.args]
    if isinstance(expr, sp.Add):
        def key(term):
            lin = term.atoms(*LINEAR_ATOMS)
            if isinstance(term, LINEAR_ATOMS) and lin:
                return (0, rank.get(term.args[0], 0), str(term))
            return (1, 0, "")
        return sp.Add(*sorted(args, key=key), evaluate=False)
    if isinstance(expr, sp.Mul):
        def mkey(factor):
            return (0 if factor.is_Number else 1 if _is_adjoint(factor) else 2)
        return sp.Mul(*sorted(args, key=mkey), evaluate=False)
    return expr.func(*args, evaluate=False) if isinstance(expr, sp.Pow) else expr.func(*args)
