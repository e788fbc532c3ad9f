"""Every naming rule of the project, in one place.

Three kinds of names meet in the generated code, and this module keeps them apart:

* the names a spec gives (a cell ``lstm-peephole``; quantities ``x``, ``h``, ``W_f``, ``z_f``);
* the names the derivation and the emitters derive from them: ``d_z_f``, ``h_prev``, the
  product ``W_f_x`` of ``W_f @ x``, NumPy's ``h_seq`` and ``proj_x``, C's ``P_W_f``, ``S_ft``...
  (:data:`CODE_FORMS`);
* the identifiers the generated code uses for itself: ``t``, ``T``, ``np``, ``xs``, ``sigmoid``,
  ``range``, C's keywords, ``NULL``, ``tanhf``, ``row_``... (:data:`RESERVED`, :data:`RESERVED_PATTERNS`).

A spec is refused at load when one of its names is reserved, or when two of its names would
give the generated code the same identifier (:func:`clashes`); the emitters check again.
"""

from __future__ import annotations

import keyword
import re
import sys
from dataclasses import dataclass

import sympy as sp

from ..errors import UserError
from .reserved import DERIVED_PATTERNS, RESERVED, RESERVED_PATTERNS, reserved  # noqa: F401 - naming.RESERVED, ...

MAX_CELL_NAME = 64
MAX_NAME = 32  # the identifiers derived from a name (S_<W>_<v>t_r_, d_lin_<v>_sum) run longer
CELL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# A cell's module of one of these names, next to the code that imports it, would be imported instead:
# the modules the generated Python imports (and those import), and the rest of the standard library.
IMPORTED_MODULES = frozenset({"numpy", *sys.stdlib_module_names})
# The files of the C runtime written beside every C kernel (lstm_symbolic/codegen/c/runtime/) start with this.
RUNTIME_PREFIX = "lsym_"


class NamingError(UserError, ValueError):
    """A name cannot be used in generated code (a bad cell name, a reserved or clashing name)."""


ADJOINT = "d_"  # d_<name>: the adjoint of <name>
# A name the formula language reads (formula/grammar.py's NAME; tests/test_registry.py holds them equal).
FORMULA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def adjoint(name: str) -> str:
    """The adjoint (gradient of the loss) of quantity ``name``: ``d_<name>``."""
    return f"{ADJOINT}{name}"


def is_adjoint(name: str) -> bool:
    """``name`` is an adjoint ``d_<something>``."""
    return name.startswith(ADJOINT) and len(name) > len(ADJOINT)


def primal(name: str) -> str:
    """The quantity whose adjoint is ``name`` (``d_z_f`` → ``z_f``); ``name`` itself if it is none."""
    return name[len(ADJOINT):] if is_adjoint(name) else name


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


def product(weight: str, operand: str) -> str:
    """The name of the value ``weight @ operand`` in the generated code: ``W_f_x``."""
    return f"{weight}_{operand}"


def shift_back(expr: sp.Expr, names: list[str]) -> sp.Expr:
    """``expr`` one step earlier: each of ``names`` becomes ``<name>_prev``."""
    return expr.xreplace({sp.Symbol(n): sp.Symbol(prev(n)) for n in names})


# -- cell names ----------------------------------------------------------------------------

def cell_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a cell (it names files and identifiers), or None."""
    if not isinstance(name, str) or not CELL_NAME.fullmatch(name):
        return "a cell name is letters, digits, '-' and '_', starting with a letter"
    if len(name) > MAX_CELL_NAME:
        return f"a cell name has at most {MAX_CELL_NAME} characters, this one {len(name)}"
    module = name.replace("-", "_")
    if keyword.iskeyword(module):
        return f"its module name '{module}' is a Python keyword, which cannot be imported"
    if module in IMPORTED_MODULES:
        return f"its module '{module}.py' would hide the module {module} (NumPy or Python's standard library)"
    if module.lower().startswith(RUNTIME_PREFIX):  # lower: a file system that ignores case
        return (f"its files would be named like the C runtime's ({RUNTIME_PREFIX}*), which are written beside "
                "them: choose a name that does not start with 'lsym_' (or 'lsym-')")
    return None


def module_name(cell_name: str) -> str:
    """File and module name of a cell's generated code (``lstm-peephole`` → ``lstm_peephole``);
    a name that could not be a file name inside the output folder is refused."""
    problem = cell_name_problem(cell_name)
    if problem:
        raise NamingError(f"cell name {cell_name!r}: {problem}")
    return cell_name.replace("-", "_")


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a quantity (input, state, parameter, equation), or None."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        return f"'{name}' is not a name (letters, digits and _, starting with a letter)"
    if len(name) > MAX_NAME:
        return f"'{name}' is longer than {MAX_NAME} characters"
    why = reserved(name)
    return f"'{name}' is {why}; rename it" if why else None


# -- identifiers derived from a cell's names ------------------------------------------------

@dataclass(frozen=True)
class Form:
    """An identifier the emitters derive from one name: ``pattern`` with ``{}`` for the name, for the
    names of one ``kind``: ``param``, ``state``, ``input``, ``value`` (anything but a parameter) or
    ``operand`` (the ``v`` of a ``W @ v``)."""

    pattern: str
    kind: str
    what: str


CODE_FORMS: tuple[Form, ...] = (
    Form("{}_seq", "value", "the NumPy array of {} over the sequence"),
    Form("proj_{}", "operand", "the projection of {}"),
    Form("d_lin_{}", "operand", "the NumPy array of the adjoints of {}'s products"),
    Form("d_lin_{}_sum", "operand", "the NumPy sum of the adjoints of {}'s products"),
    Form("d_state_{}", "state", "the NumPy gradient carried to state {}"),
    Form("P_{}", "param", "the C pointer to parameter {}"),
    Form("G_{}", "param", "the C pointer to the gradient of {}"),
    Form("GP_{}", "param", "the C partial sums of the gradient of {}"),
    Form("C_{}", "value", "the C cache array of {}"),
    Form("S_{}t", "value", "the C cache row of {} at step t"),
    Form("tmp_{}", "value", "the C scratch array of {}"),
    Form("red_{}", "value", "the C array of the reduction {}, one value per example"),
    Form("prev_{}", "state", "the C pointer to the previous {}"),
    Form("next_{}", "state", "the C pointer to the next {}"),
    Form("st_{}", "state", "the C state buffer of {}"),
    Form("dst_{}", "state", "the C gradient buffer of {}"),
    Form("dcur_{}", "state", "the C gradient of {} at step t"),
    Form("dnext_{}", "state", "the C gradient of {} passed to step t-1"),
    Form("xt_{}", "input", "the C pointer to {} at step t"),
    Form("dxt_{}", "input", "the C pointer to the gradient of {} at step t"),
    Form("pj_{}", "operand", "the C projection of {} at step t"),
    Form("stk_{}", "operand", "the C copy of the weights stacked on {}"),
    Form("stkw_{}", "operand", "the C stacked weights on {}"),
    Form("pkf_{}", "operand", "the C packed forward weights on {}"),
    Form("pkb_{}", "operand", "the C packed backward weights on {}"),
    Form("dl_{}", "operand", "the C adjoints of {}'s products"),
    Form("dl_{}t", "operand", "the C adjoints of {}'s products at step t"),
    Form("bk_{}", "operand", "the C back-projection of {}"),
)
MODULE_FORMS = ("{}_workspace_size", "{}_cache_size", "{}_uses_cblas", "{}_threads", "{}_forward", "{}_backward",
                "{}_step_forward", "{}_step_backward")  # (the last four: LSYM_K(<module>_forward) in the kernel)


def row(array: str) -> str:
    """The generated C's pointer to the current batch row of ``array``: ``S_ft_r_``.  It ends in
    '_', as no name of a spec or derived from one does, so it can only meet its own array's."""
    return f"{array}_r_"


def _own(name: str, kind: str) -> str:
    return f"the {kind if kind != 'value' else 'equation'} {name}"


def _math_names(kinds: dict[str, str], products) -> list[tuple[str, set[str], str, str]]:
    """[(name, its kinds, the spec's name it comes from, what)]: the cell's names, the previous
    states, the products W_v of ``W @ v``, and the adjoint of each (a name twice: a clash)."""
    out = [(n, {k} | ({"value"} if k != "param" else set()), n, _own(n, k)) for n, k in kinds.items()]
    for s in [n for n, k in kinds.items() if k == "state"]:
        out += [(prev(s), {"value"}, s, f"the previous value of {s}"),
                (f"d_{s}_next", {"value"}, s, f"the gradient reaching {s} from step t+1")]
    for w, v in products:
        out.append((product(w, v), {"value"}, w, f"the product {w} @ {v}"))
    for v in dict.fromkeys(v for _, v in products):
        out.append((f"back_{v}", {"value"}, v, f"the back-projection of {v}"))
    out += [(adjoint(n), {"value"}, source, f"the gradient of {n}") for n, _, source, _ in list(out)
            if not n.startswith(("back_", "d_"))]
    operands = {v for _, v in products}
    return [(n, kinds | ({"operand"} if n in operands else set()), source, what) for n, kinds, source, what in out]


def identifiers(module: str, kinds: dict[str, str], products) -> dict[str, list[tuple[str, str]]]:
    """Every identifier the generated code derives from a cell's names: {identifier: [(the spec's
    name it comes from, what it stands for), ...]} (two entries: a clash).  ``kinds``: {name:
    input | state | param | value}; ``products``: (weight, operand) of every ``W @ v``."""
    found: dict[str, list[tuple[str, str]]] = {}
    for name, categories, source, what in _math_names(kinds, products):
        found.setdefault(name, []).append((source, what))
        for form in (f for f in CODE_FORMS if f.kind in categories):
            found.setdefault(form.pattern.format(name), []).append((source, form.what.format(name)))
    for pattern in MODULE_FORMS:
        ident = pattern.format(module)
        found.setdefault(ident, []).append((module, f"the C function {ident}"))
    return found


def clashes(module: str, kinds: dict[str, str], products) -> list[tuple[str, str]]:
    """(the spec's name to change, why) for each identifier of the generated code that two of the
    cell's names would both give, or that the generated code or its languages already use."""
    out = []
    for ident, meanings in identifiers(module, kinds, products).items():
        if ident in kinds and len(meanings) > 1:
            other = next(what for _, what in meanings if what != _own(ident, kinds[ident]))
            out.append((ident, f"'{ident}' is also {other} in the generated code; rename '{ident}'"))
        elif len(meanings) > 1:
            (_, first), (source, second) = meanings[:2]
            out.append((source, f"'{ident}' would be both {first} and {second} in the generated code; "
                                f"rename '{source}'"))
        elif ident not in kinds and reserved(ident, given=False):
            source, what = meanings[0]
            out.append((source, f"'{source}' gives the generated code '{ident}' ({what}), which is "
                                f"{reserved(ident, given=False)}; rename '{source}'"))
    return out


def kinds_of(cell) -> dict[str, str]:
    """{name: input | state | param | value} of a :class:`~lstm_symbolic.core.cells.Cell`'s names."""
    kinds = {q.name: "input" for q in cell.inputs}
    kinds.update({q.name: "param" for q in cell.params})
    kinds.update({eq.lhs.name: "state" if eq.lhs.name in cell.states else "value" for eq in cell.equations})
    return kinds


def check_cell(cell, products) -> str:
    """The module name of ``cell``'s generated code; raises :class:`NamingError` on its first bad,
    reserved or clashing name (the emitters' guard behind the spec's)."""
    module = module_name(cell.name)
    kinds = kinds_of(cell)
    problems = [p for p in map(name_problem, kinds) if p] + [why for _, why in clashes(module, kinds, products)]
    if problems:
        raise NamingError(f"cell '{cell.name}': {problems[0]}")
    return module
