"""What the generated code needs of a whole cell spec, checked once its equations are read: every value
reaches a state, every input and parameter is read (each weight by one vector), every declared size is some
parameter's, and no two names give the generated code the same identifier.  Each refusal is the spec's
one-line error at the key to fix."""

from __future__ import annotations

import re

from .. import naming
from ..core.functions import MatVec


def check_whole_cell(spec, name, equations, states, inputs, params) -> None:
    """``spec``: the spec's reader (its ``data``, ``keys``, ``sizes`` and ``error``)."""
    _check_dead(spec, equations, states)
    _check_params(spec, equations, params, inputs)
    _check_clashes(spec, name, equations, states, inputs, params)


def _mentioned_in(spec, name: str) -> str | None:
    """The first equation whose formula text names ``name`` (although its value may not read it)."""
    for key, formula in spec.data["equations"].items():
        if re.search(rf"\b{re.escape(name)}\b", str(formula)) and key != name:
            return key
    return None


def _cancelled(spec, name: str) -> str:
    where = _mentioned_in(spec, name)
    return f" ('{where}' names it, but in terms that cancel, like z - z or 0*z)" if where else ""


def _check_dead(spec, equations, states) -> None:
    """Every equation's value reaches a state: one that nothing reads is a mistake, and its
    products would have no gradient in the generated code."""
    read = {sym.name for _, rhs in equations for sym in rhs.free_symbols}
    for key, _ in equations:
        if key not in read and key not in states:
            raise spec.error(f"equation '{key}' is not a state and nothing reads it{_cancelled(spec, key)}: "
                             "remove it, or use it", "equations", key)


def _check_params(spec, equations, params, inputs) -> None:
    """Every input and parameter is read, each weight by one vector (the generated code takes
    a weight's gradient from the one product it is in)."""
    read = {sym.name for _, rhs in equations for sym in rhs.free_symbols}
    for table, names in (("inputs", inputs), ("params", params)):
        for key in (k for k in names if k not in read):
            fix = "remove it or use it" if table == "params" else "use it (the generated code reads xs)"
            raise spec.error(f"{table[:-1].replace('param', 'parameter')} '{key}' is declared but no equation "
                             f"uses it{_cancelled(spec, key)}: {fix}", table, key)
    operands: dict[str, set[str]] = {}
    for _, rhs in equations:
        for w, v in (a.args for a in rhs.atoms(MatVec)):
            operands.setdefault(w.name, set()).add(v.name)
    for key, vs in operands.items():
        if len(vs) > 1:
            raise spec.error(f"parameter '{key}' multiplies {' and '.join(sorted(vs))}; the generated code "
                             "gives each vector its own weights: use one parameter for each", "params", key)
    for size in (s for s in spec.sizes[2:] if not any(s in shape for shape in params.values())):
        raise spec.error(f"size '{size}' is declared but no parameter has it: the generated code reads "
                         "each size from a parameter", "", "sizes")
    if not any(shape[0] == "hidden" for shape in params.values()):
        raise spec.error("the generated code reads the hidden size from a parameter: declare one of shape "
                         '"hidden" or ["hidden", ...]', "params")


def _check_clashes(spec, name, equations, states, inputs, params) -> None:
    """No two names give the generated code the same identifier (W_f @ x is W_f_x, h is h_seq ...)."""
    kinds = {**dict.fromkeys(inputs, "input"), **dict.fromkeys(params, "param")}
    kinds.update({key: "state" if key in states else "value" for key, _ in equations})
    products = sorted({(a.args[0].name, a.args[1].name) for _, rhs in equations for a in rhs.atoms(MatVec)})
    for culprit, why in naming.clashes(naming.module_name(name), kinds, products):
        raise spec.error(why, *_declared(spec, culprit, inputs, params, states))


def _declared(spec, name, inputs, params, states) -> tuple[str, str]:
    """(table, key) where the spec declares ``name``."""
    if name in inputs or name in params:
        return ("inputs" if name in inputs else "params"), name
    if ("equations", name) in spec.keys:
        return "equations", name
    return ("", "states") if name in states else ("", "name")
