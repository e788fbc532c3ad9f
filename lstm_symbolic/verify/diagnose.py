"""Say what is wrong with a formula that does not hold: part of ``verify``.

Two kinds of finding, both decided by evaluation (``same``), never by appearance alone:

* one edit that makes the whole formula right: a transposed product, ``tanh`` applied to a
  value that is already ``tanh(·)``, σ' and tanh' swapped, a wrong sign;
* term by term: gradients are linear in the seeds (``da_next``, ``dc_next``) and in the
  gradients they use (``dft``), so the part of the formula that goes with each of them is
  compared with the right one: a missing term, an extra term, a term that lacks the local
  derivative (the parenthesis closes too early) or carries a wrong factor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from ..core.functions import BatchSum, ColumnSlice, MatTVec, MatVec, Outer, sigmoid, tanh

_LINEAR = (MatVec, MatTVec, Outer)


@dataclass(frozen=True)
class Problem:
    """What the diagnosis needs about one quantity, all in the user's names."""

    name: str
    kept: sp.Expr  # the right formula, using the notation's other quantities
    full: sp.Expr  # the right formula in seeds and forward values only
    inline: dict  # quantity Symbol → its full formula
    seeds: tuple[sp.Symbol, ...]
    chain: tuple[sp.Expr, ...]  # products of the local derivatives up the chain (ft*(1 - ft), ...)
    activations: dict  # forward value Symbol → the function that made it (cct → tanh)
    preactivations: dict  # pre-activation Symbol → its activation (zo → sigmoid)
    same: Callable[[sp.Expr, sp.Expr], bool]
    show: Callable[[sp.Expr], str]


MAX_TERMS = 20_000  # no expansion or cancellation beyond this many terms (hostile powers)
SYMBOL_TERMS = 4  # a name stands for up to this many terms once the leaves are numbers


def expansion_bound(expr: sp.Expr) -> int:
    """An upper bound of the number of terms ``sympy.expand`` could produce from ``expr`` on
    components (it expands inside function arguments too); above MAX_TERMS means "too many"."""
    if isinstance(expr, sp.Symbol):
        return SYMBOL_TERMS
    if expr.is_Atom or isinstance(expr, ColumnSlice):
        return 1
    bounds = [expansion_bound(a) for a in expr.args]
    if isinstance(expr, (*_LINEAR, BatchSum)):  # a row of W @ v sums up to 5 products at hidden 2, input 3
        return _capped(5 * _product(bounds))
    if isinstance(expr, sp.Function):  # one term, but its argument is expanded as well
        return 1 if max(bounds) <= MAX_TERMS else MAX_TERMS + 1
    if isinstance(expr, sp.Add):
        return _capped(sum(bounds))
    if isinstance(expr, sp.Pow) and expr.exp.is_Integer and expr.exp > 1:
        return _capped(bounds[0] ** min(int(expr.exp), 64))
    return _capped(_product(bounds))


def _product(bounds: list[int]) -> int:
    total = 1
    for b in bounds:
        total = min(total * b, MAX_TERMS + 1)
    return total


def _capped(n: int) -> int:
    return min(n, MAX_TERMS + 1)


def diagnose(p: Problem, user: sp.Expr) -> str:
    """A one-line diagnosis, or "" when none is found."""
    if expansion_bound(user) > MAX_TERMS:
        return ""
    for edited, message in _edits(p, user):
        if p.same(edited, p.kept):
            return message
    if whole := _factor(p, *_forms(p, user)):
        return whole
    smells = [(e, m) for e, m in _edits(p, user) if m.startswith("uses")]
    for edited, _ in smells:
        user = edited
    return "; ".join([m for _, m in smells] + _terms(p, user))


def _edits(p: Problem, user: sp.Expr) -> list[tuple[sp.Expr, str]]:
    """Single edits of ``user``, each with the message that names the mistake it repairs."""
    edits = transposed(user, p.show)
    for value, fn in p.activations.items():
        for app in sp.ordered(user.atoms(sp.Function)):
            if app.args == (value,) and type(app) in (tanh, sp.tanh, sigmoid):
                edits.append((user.xreplace({app: value}),
                              f"uses {p.show(app)} where {p.show(value)} is already {_fname(fn)}(·)"))
        if fn is sigmoid and user.has(1 - value**2):
            edits.append((user.xreplace({1 - value**2: value * (1 - value)}),
                          f"uses {p.show(1 - value**2)} (the derivative of tanh) where "
                          f"{p.show(value)} = sigmoid(·) needs {p.show(value * (1 - value))}"))
        if fn in (tanh, sp.tanh) and _has_factor(user, value):
            fixed = user.xreplace({1 - value: (1 - value**2) / value})
            edits.append((fixed, f"uses {p.show(value * (1 - value))} (the derivative of sigmoid) "
                                     f"where {p.show(value)} = tanh(·) needs {p.show(1 - value**2)}"))
    for app in sp.ordered(user.atoms(sigmoid, tanh, sp.tanh)):
        fn = p.preactivations.get(app.args[0])
        if fn is not None and type(app) is not fn:
            edits.append((user.xreplace({app: fn(app.args[0])}),
                          f"uses {p.show(app)} where the activation is {_fname(fn)}({p.show(app.args[0])})"))
    edits.append((-user, "has the wrong sign"))
    return edits


def transposed(user: sp.Expr, show: Callable) -> list[tuple[sp.Expr, str]]:
    """``user`` with one product transposed, for each product in it."""
    edits = []
    for atom in sp.ordered(user.atoms(*_LINEAR)):
        flipped = _flip(atom)
        edits.append((user.xreplace({atom: flipped}),
                      f"the product {show(atom)} is transposed: write {show(flipped)}"))
    return edits


def _has_factor(expr: sp.Expr, value: sp.Symbol) -> bool:
    return any(isinstance(m, sp.Mul) and value in m.args and (1 - value) in m.args
               for m in sp.preorder_traversal(expr))


def _fname(fn) -> str:
    return "sigmoid" if fn is sigmoid else fn.__name__


def _flip(atom: sp.Expr) -> sp.Expr:
    a, b = atom.args
    if isinstance(atom, MatVec):
        return MatTVec(a, b)
    if isinstance(atom, MatTVec):
        return MatVec(a, b)
    return Outer(b, a)


def _terms(p: Problem, user: sp.Expr) -> list[str]:
    """Compare the part of ``user`` that goes with each seed/gradient with the right one."""
    mine, right = _forms(p, user)
    if not _linear_in(mine, (*p.seeds, *p.inline)):
        seeds = ", ".join(p.show(s) for s in p.seeds)
        return [f"is not linear in the gradients {seeds}: each term of a gradient is one of them "
                "times forward values"]
    basis = [s for s in sp.ordered(set(p.seeds) | _quantities(p, mine) | _quantities(p, right))]
    findings = []
    rest, right_rest = _part(mine, None, basis), _part(right, None, basis)
    for b in basis:
        u, e = _part(mine, b, basis) - rest, _part(right, b, basis) - right_rest
        if p.same(u, e):
            continue
        if u == 0:
            findings.append(f"misses the term {_brief(p.show(e))}")
        elif e == 0:
            findings.append(f"has the extra term {_brief(p.show(u))}")
        else:
            findings.append(_describe(p, u, e))
    if rest != 0:
        findings.append(f"has the extra term {_brief(p.show(rest))}, which no gradient multiplies")
    return findings


def _linear_in(expr: sp.Expr, basis) -> bool:
    """``expr`` is linear in the ``basis`` symbols (a sum of terms, each with at most one)."""
    for node in sp.preorder_traversal(expr):
        if not node.has(*basis):
            continue
        if isinstance(node, sp.Function) and not isinstance(node, (*_LINEAR, BatchSum)):
            return False
        if isinstance(node, sp.Pow) and node.exp != 1:
            return False
        if isinstance(node, sp.Mul) and sum(a.has(*basis) for a in node.args) > 1:
            return False
    return True


def _forms(p: Problem, user: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """The user's formula and the right one, both in the same terms."""
    used, named = _quantities(p, user), _quantities(p, p.kept)
    if used and named:  # compare in the right formula's terms: dft, dit, ... stay names
        return user.xreplace({q: f for q, f in p.inline.items() if q not in named}), p.kept
    return user.xreplace(p.inline), p.full  # written out: so is the right formula


def _quantities(p: Problem, expr: sp.Expr) -> set:
    return {s for s in expr.free_symbols if s in p.inline}


def _part(expr: sp.Expr, keep, basis) -> sp.Expr:
    """The part of ``expr`` linear in ``keep`` (every other basis symbol set to zero)."""
    zeroed = expr.xreplace({b: sp.S.Zero for b in basis if b != keep})
    return zeroed.replace(
        lambda e: isinstance(e, (*_LINEAR, BatchSum)) and any(a == 0 for a in e.args),
        lambda e: sp.S.Zero,
    )


def _describe(p: Problem, u: sp.Expr, e: sp.Expr) -> str:
    """How one term differs from the right one."""
    mine, right = set(sp.Add.make_args(u)), set(sp.Add.make_args(e))
    if mine < right:
        return f"misses the term {_brief(p.show(sp.Add(*(right - mine))))}"
    if right < mine:
        return f"has the extra term {_brief(p.show(sp.Add(*(mine - right))))}"
    if _rational(u) and _rational(e):
        ratio = sp.cancel(sp.together(e / u))
        for local in p.chain:
            if sp.cancel(ratio - local) == 0:
                return (f"the parenthesis closes too early: {p.show(local)} must multiply the whole "
                        f"sum, but the term {p.show(u)} lacks it")
            if sp.cancel(ratio * local - 1) == 0:
                return f"the term {p.show(u)} has the factor {p.show(local)} once too often"
        if ratio == -1:
            return f"the term {p.show(u)} has the wrong sign"
        if ratio.is_Number:
            return f"the term {p.show(u)} is off by the factor {p.show(1 / ratio)}"
        if _is_factor(ratio):
            return f"the term {_brief(p.show(u))} lacks the factor {p.show(ratio)}"
        if _is_factor(1 / ratio):
            return f"the term {_brief(p.show(u))} has the extra factor {p.show(1 / ratio)}"
    for edited, message in _edits(p, u):
        if p.same(edited, e):
            return message
    return f"has {_brief(p.show(u))} where the right term is {_brief(p.show(e))}"


def _factor(p: Problem, user: sp.Expr, right: sp.Expr) -> str:
    """"lacks the factor f" when the whole formula is right up to a product of names."""
    if user == 0 or not (_rational(user) and _rational(right)):
        return ""
    ratio = sp.cancel(sp.together(right / user))
    if ratio.is_Number:
        return ""
    if _is_factor(ratio) and p.same(user * ratio, right):
        return f"lacks the factor {p.show(ratio)}"
    if _is_factor(1 / ratio) and p.same(user * ratio, right):
        return f"has the extra factor {p.show(1 / ratio)}"
    return ""


def _rational(expr: sp.Expr) -> bool:
    """A rational function of names and of functions of names (``tanh(c_next)``), no products:
    what ``cancel`` handles quickly (a function of an expression sends SymPy into assumptions)."""
    return not expr.has(*_LINEAR, BatchSum) and all(
        a.is_Symbol for f in expr.atoms(sp.Function) for a in f.args)


def _is_factor(expr: sp.Expr) -> bool:
    """A product of powers of names and sums of them, with no denominator: ``c_prev*(1 - ft)``."""
    factors = sp.Mul.make_args(expr)
    return all(not f.is_Number and not (f.is_Pow and f.exp.is_negative) for f in factors)


def _brief(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
