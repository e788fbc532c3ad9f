"""Cell spec files (``.toml``) → :class:`~lstm_symbolic.core.cells.Cell`: the user-defined front end.

A spec names the inputs, the states (the first is the output, the last the memory), the
parameters with shapes in ``hidden``, ``input`` and the sizes it declares (``sizes = ["proj"]``,
with ``[state_sizes]`` giving a state another size than hidden), and the equations in order, each in the
formula language of :mod:`lstm_symbolic.formula.parse`.  Everything is checked before a cell is
made, and each refusal is one :class:`SpecError` line ``<file>:<line>:<column>: <what to fix>``:
the names (:mod:`lstm_symbolic.naming`), and what the generated code needs of the whole cell
(every value reaches a state, no division by zero, every input and parameter read).  See the
reference page on the spec (docs/spec.md).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import sympy as sp

from .. import naming
from ..core.cells import SIZES, Cell, CellError, make_cell
from ..core.functions import LINEAR_ATOMS, MatVec, MissingRuleError, Reduction, check_primitives
from ..errors import LocatedError
from ..files import ReadError, read_text
from ..formula.parse import BatchSum, ColumnSlice, FormulaError, parse_shaped
from ..formula.values import show

MAX_SPEC_BYTES = 256 * 1024
MAX_DESCRIPTION = 200
KEYS = ("name", "description", "sizes", "states", "state_sizes", "inputs", "params", "equations")
# Values no generated code can compute: z/0 is zoo, log(0) is -oo, 0/0 is nan.
NOT_FINITE = (sp.zoo, sp.oo, -sp.oo, sp.nan)


def _complex_term(expr: sp.Expr) -> sp.Expr:
    """The largest constant term of ``expr`` that holds the imaginary unit (for the error message)."""
    return max((a for a in sp.preorder_traversal(expr) if a.has(sp.I) and not a.free_symbols), key=sp.count_ops)


class SpecError(LocatedError):
    """A cell spec cannot be used: ``str()`` is ``"<where>:<line>:<column>: <reason>"``."""

    WHERE = "spec"


def load_spec(path: str | Path) -> Cell:
    """The cell of the spec file at ``path``."""
    try:
        text = read_text(path, MAX_SPEC_BYTES, "spec")
    except ReadError as exc:
        raise SpecError(exc.reason, where=exc.path) from None
    return parse_spec(text, str(path))


def parse_spec(text: str, where: str = "spec") -> Cell:
    """The cell described by the TOML ``text``; ``where`` names it in errors."""
    if len(text.encode("utf-8", "replace")) > MAX_SPEC_BYTES:
        raise SpecError(f"spec is larger than {MAX_SPEC_BYTES // 1024} kB", where=where)
    return _Reader(text, where).cell()


class _Reader:
    """One spec's text and table, with the source position of every key."""

    def __init__(self, text: str, where: str):
        self.text, self.where = text, where
        self.keys = self._key_positions()
        try:
            self.data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise self._toml_error(exc) from None

    # -- positions ----------------------------------------------------------------------
    def _key_positions(self) -> dict[tuple[str, str], tuple[int, int, int]]:
        """``{(table, key): (line, column of the key, column of the value)}``; a key given
        twice in one table is refused here, with both lines."""
        found: dict[tuple[str, str], tuple[int, int, int]] = {}
        table = ""
        for n, line in enumerate(self.text.splitlines(), 1):
            if header := re.match(r"\s*\[\s*([A-Za-z0-9_.\-]+)\s*\]\s*(#.*)?$", line):
                table = header.group(1)
                found.setdefault(("", table), (n, header.start(1), header.start(1)))
            elif key := re.match(r"\s*([\"']?)([A-Za-z0-9_\-]+)\1\s*=\s*", line):
                if (table, key.group(2)) in found:
                    first = found[(table, key.group(2))][0]
                    raise SpecError(f"'{key.group(2)}' is assigned twice (first on line {first}); "
                                    "give each value its own name", n, key.start(2) + 1, self.where)
                found[(table, key.group(2))] = (n, key.start(2) + 1, key.end() + 1)
        return found

    def at(self, table: str, key: str = "") -> tuple[int, int]:
        """(line, column) of a key, or of a table's header."""
        return self.keys.get((table, key) if key else ("", table), (1, 1, 1))[:2]

    def error(self, reason: str, table: str, key: str = "") -> SpecError:
        return SpecError(reason, *self.at(table, key), self.where)

    def _toml_error(self, exc: tomllib.TOMLDecodeError) -> SpecError:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        line, column = (int(m.group(1)), int(m.group(2))) if m else (1, 1)
        reason = re.sub(r"\s*\(at .*\)$", "", msg)
        return SpecError(f"TOML syntax: {reason}", line, column, self.where)

    def _formula_error(self, exc: FormulaError, key: str) -> SpecError:
        line, _, column = self.keys.get(("equations", key), (1, 1, 1))
        source = self.text.splitlines()[line - 1] if line - 1 < len(self.text.splitlines()) else ""
        quote = re.match(r'"""\s*$|\'\'\'\s*$|"""|\'\'\'|"|\'', source[column - 1 :])
        if quote and quote.group().strip() != quote.group():  # '"""' then a line break
            return SpecError(exc.reason, line + exc.line, exc.column, self.where)
        offset = len(quote.group()) if quote else 0
        if exc.line > 1:
            return SpecError(exc.reason, line + exc.line - 1, exc.column, self.where)
        return SpecError(exc.reason, line, column + offset + exc.column - 1, self.where)

    # -- the spec -----------------------------------------------------------------------
    def cell(self) -> Cell:
        for key in self.data:
            if key not in KEYS:
                raise self.error(f"unknown key '{key}'; a spec has {', '.join(KEYS)}", "", key)
        name = self._cell_name()
        description = self._description() or name
        self.sizes = SIZES + self._sizes()
        states = self._states()
        self.state_sizes = {s: shape[0] for s, shape in self._shapes("state_sizes", vector=True).items()}
        inputs = self._shapes("inputs", vector=True)
        params = self._shapes("params", vector=False)
        self._distinct(states, inputs, params)
        equations = self._equations(states, inputs, params)
        self._check_dead(equations, states)
        self._check_params(equations, params, inputs)
        self._check_clashes(name, equations, states, inputs, params)
        try:
            return make_cell(name, description, inputs=inputs, states=tuple(states), params=params,
                             equations=equations, sizes=self.sizes, state_sizes=self.state_sizes)
        except CellError as exc:
            raise self.error(str(exc), "equations") from None

    def _string(self, key: str, required: bool = False) -> str:
        value = self.data.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"'{key}' must be a non-empty string", "", key)
        return value

    def _cell_name(self) -> str:
        name = self._string("name", required=True)
        problem = naming.cell_name_problem(name)
        if problem:
            raise self.error(f"name {name!r}: {problem}; it names the generated files and functions", "", "name")
        return name

    def _description(self) -> str:
        text = self._string("description")
        if len(text) > MAX_DESCRIPTION or not text.isprintable():
            raise self.error(f"'description' must be one line of at most {MAX_DESCRIPTION} printable characters "
                             "(no line breaks, tabs or control characters)", "", "description")
        return text

    def _sizes(self) -> tuple[str, ...]:
        """The sizes the spec declares beyond hidden and input (``sizes = ["proj"]``)."""
        sizes = self.data.get("sizes", [])
        if not isinstance(sizes, list) or not all(isinstance(s, str) for s in sizes):
            raise self.error('\'sizes\' must be a list of names, e.g. sizes = ["proj"]', "", "sizes")
        for size in sizes:
            if problem := naming.name_problem(size):
                raise self.error(f"in 'sizes': {problem}", "", "sizes")
            if size in SIZES or sizes.count(size) > 1 or not size.isidentifier():
                raise self.error(f"in 'sizes': '{size}' is {'built in' if size in SIZES else 'given twice'}; "
                                 "list each size beyond hidden and input once", "", "sizes")
        return tuple(sizes)

    def _states(self) -> list[str]:
        states = self.data.get("states")
        if not isinstance(states, list) or not states or not all(isinstance(s, str) for s in states):
            raise self.error("'states' must be a list of names, the output first, "
                             'e.g. states = ["h", "c"]', "", "states")
        for state in states:
            if problem := naming.name_problem(state):
                raise self.error(f"in 'states': {problem}", "", "states")
        return states

    def _shapes(self, table: str, vector: bool) -> dict[str, tuple[str, ...]]:
        entries = self.data.get(table, {})
        if not isinstance(entries, dict) or (table == "inputs" and not entries):
            raise self.error(f"[{table}] must be a table of name = shape", table)
        shapes = {}
        for key, value in entries.items():
            shape = (value,) if isinstance(value, str) else value
            if not isinstance(shape, list | tuple) or not 1 <= len(shape) <= (1 if vector else 2):
                kind = '"hidden" or "input"' if vector else '"hidden" or ["hidden", "input"]'
                raise self.error(f"shape of '{key}' must be {kind}", table, key)
            for size in shape:
                if size not in self.sizes:
                    raise self.error(f"unknown size '{size}' in the shape of '{key}'; use "
                                     f"{', '.join(self.sizes[:-1])} or {self.sizes[-1]} (declare another "
                                     'in sizes = [...])', table, key)
            if table == "state_sizes" and key not in self.data.get("states", []):
                raise self.error(f"'{key}' in [state_sizes] is not a state", table, key)
            shapes[self._name(key, table)] = tuple(shape)
        return shapes

    def _name(self, key: str, table: str) -> str:
        if problem := naming.name_problem(key):
            raise self.error(problem, table, key)
        return key

    def _distinct(self, states, inputs, params) -> None:
        seen: dict[str, str] = {}
        for table, names in (("states", states), ("inputs", inputs), ("params", params)):
            for name in names:
                if name in seen:
                    raise self.error(f"'{name}' is declared in both {seen[name]} and {table}",
                                     *(("", table) if table == "states" else (table, name)))
                seen[name] = table

    def _equations(self, states, inputs, params) -> list[tuple[str, sp.Expr]]:
        table = self.data.get("equations")
        if not isinstance(table, dict) or not table:
            raise self.error('[equations] must list name = "formula", in order', "equations")
        declared = {**{k: "an input" for k in inputs}, **{k: "a parameter" for k in params}}
        shapes = {**inputs, **{naming.prev(s): (self.state_sizes.get(s, "hidden"),) for s in states}, **params}
        undefined = set(table) | set(states)
        varying = set(inputs) | {naming.prev(s) for s in states}  # values that differ between examples
        constant = {}  # equations of parameters and constants alone: their formulas
        equations = []
        for key, formula in table.items():
            if key in declared or key in shapes:
                raise self.error(f"'{key}' is {declared.get(key, 'a previous state')}; "
                                 "an equation cannot assign it", "equations", key)
            self._name(key, "equations")
            if not isinstance(formula, str):
                raise self.error(f"equation '{key}' must be a formula in quotes", "equations", key)
            undefined.discard(key)
            expr, shape = self._parse(key, formula, shapes, undefined, states)
            if expr.has(*NOT_FINITE):
                value = sorted(map(str, expr.atoms(*[type(v) for v in NOT_FINITE])))[0]
                raise self.error(f"equation '{key}' divides by zero or takes the log of zero (a term is {value}): "
                                 "no code can compute it", "equations", key)
            if expr.has(sp.I):
                raise self.error(f"equation '{key}' takes the log of a negative constant (a term is "
                                 f"{_complex_term(expr)}): no real-valued code can compute it", "equations", key)
            self._check_atoms(key, expr)
            for weight, vector in (a.args for a in expr.atoms(MatVec)):
                if vector.name in constant:
                    raise self.error(f"'{weight} @ {vector}' multiplies a value that reads no input and no state "
                                     f"({vector} = {constant[vector.name]}): the generated code gives a product "
                                     "one vector per example", "equations", key)
            if not {sym.name for sym in expr.free_symbols} & varying:
                constant[key] = formula.strip()
            varying.add(key)
            self._check_shape(key, shape, states, expr, shapes)
            shapes[key] = shape
            equations.append((key, expr))
        for state in states:
            if state not in table:
                raise self.error(f"state '{state}' is never updated: add an equation "
                                 f"'{state} = ...' under [equations]", "", "states")
        return equations

    def _parse(self, key, formula, shapes, undefined, states):
        try:
            return parse_shaped(formula, shapes, where=self.where)
        except FormulaError as exc:
            unknown = re.match(r"unknown name '([^']+)'", exc.reason)
            if unknown and unknown.group(1) in undefined:
                name = unknown.group(1)
                hint = (f"for the previous step's value write {naming.prev(name)}"
                        if name in states else "move its equation up")
                exc = FormulaError(f"'{name}' is used before it is defined; {hint}",
                                   exc.line, exc.column)
            raise self._formula_error(exc, key) from None

    def _check_atoms(self, key: str, expr: sp.Expr) -> None:
        """Only ``W @ v`` of a parameter and a named vector, and functions with a rule."""
        for atom in sp.ordered(expr.atoms(sp.Function)):
            if isinstance(atom, MatVec):
                w, v = atom.args
                if not isinstance(v, sp.Symbol) or not isinstance(w, sp.Symbol):
                    raise self.error(
                        f"in '{key}', the operand of {w} @ ({v}) is not a plain name: name it: "
                        f'add an equation (e.g. {w}_in = "{v}") and write {w} @ {w}_in',
                        "equations", key)
            elif isinstance(atom, Reduction) and (atom != expr or not isinstance(atom.args[0], sp.Symbol)):
                raise self.error(f"in '{key}': a reduction across the units is an equation of its own over a "
                                 f'named vector: {key} = "mean(v)" (name v, and use {key} in the formula)',
                                 "equations", key)
            elif isinstance(atom, LINEAR_ATOMS + (ColumnSlice, BatchSum)):
                raise self.error(f"in '{key}': only W @ v (a parameter times a named vector) "
                                 "is a matrix product in a cell equation", "equations", key)
        try:
            check_primitives(expr)
        except MissingRuleError as exc:
            raise self.error(f"in '{key}': {exc}", "equations", key) from None

    def _check_shape(self, key: str, shape, states, expr=None, shapes=None) -> None:
        scalar = expr is not None and (expr.has(Reduction) or any(shapes.get(s.name) == () for s in expr.free_symbols))
        if isinstance(expr, Reduction) and shapes.get(expr.args[0].name) != ("hidden",):
            raise self.error(f"in '{key}': a reduction runs across the hidden units only", "equations", key)
        if shape == () and scalar and key not in states:
            return
        if shape is None or len(shape) != 1:
            raise self.error(f"equation '{key}' gives a {show(shape)} value; equations give "
                             "vectors (hidden, input or a declared size), or scalars from a reduction (mean(v))",
                             "equations", key)
        want = self.state_sizes.get(key, "hidden")
        if key in states and shape != (want,):
            raise self.error(f"state '{key}' must have the {want} size, not {shape[0]}"
                             + ("" if want != "hidden" else " (or give it that size under [state_sizes])"),
                             "equations", key)

    # -- what the generated code needs of the whole cell ----------------------------------
    def _mentioned_in(self, name: str) -> str | None:
        """The first equation whose formula text names ``name`` (although its value may not read it)."""
        for key, formula in self.data["equations"].items():
            if re.search(rf"\b{re.escape(name)}\b", str(formula)) and key != name:
                return key
        return None

    def _cancelled(self, name: str) -> str:
        where = self._mentioned_in(name)
        return f" ('{where}' names it, but in terms that cancel, like z - z or 0*z)" if where else ""

    def _check_dead(self, equations, states) -> None:
        """Every equation's value reaches a state: one that nothing reads is a mistake, and its
        products would have no gradient in the generated code."""
        read = {sym.name for _, rhs in equations for sym in rhs.free_symbols}
        for key, _ in equations:
            if key not in read and key not in states:
                raise self.error(f"equation '{key}' is not a state and nothing reads it{self._cancelled(key)}: "
                                 "remove it, or use it", "equations", key)

    def _check_params(self, equations, params, inputs) -> None:
        """Every input and parameter is read, each weight by one vector (the generated code takes
        a weight's gradient from the one product it is in)."""
        read = {sym.name for _, rhs in equations for sym in rhs.free_symbols}
        for table, names in (("inputs", inputs), ("params", params)):
            for key in (k for k in names if k not in read):
                fix = "remove it or use it" if table == "params" else "use it (the generated code reads xs)"
                raise self.error(f"{table[:-1].replace('param', 'parameter')} '{key}' is declared but no equation "
                                 f"uses it{self._cancelled(key)}: {fix}", table, key)
        operands: dict[str, set[str]] = {}
        for _, rhs in equations:
            for w, v in (a.args for a in rhs.atoms(MatVec)):
                operands.setdefault(w.name, set()).add(v.name)
        for key, vs in operands.items():
            if len(vs) > 1:
                raise self.error(f"parameter '{key}' multiplies {' and '.join(sorted(vs))}; the generated code "
                                 "gives each vector its own weights: use one parameter for each", "params", key)
        for size in (s for s in self.sizes[2:] if not any(s in shape for shape in params.values())):
            raise self.error(f"size '{size}' is declared but no parameter has it: the generated code reads "
                             "each size from a parameter", "", "sizes")
        if not any(shape[0] == "hidden" for shape in params.values()):
            raise self.error("the generated code reads the hidden size from a parameter: declare one of shape "
                             '"hidden" or ["hidden", ...]', "params")

    def _check_clashes(self, name, equations, states, inputs, params) -> None:
        """No two names give the generated code the same identifier (W_f @ x is W_f_x, h is h_seq ...)."""
        kinds = {**dict.fromkeys(inputs, "input"), **dict.fromkeys(params, "param")}
        kinds.update({key: "state" if key in states else "value" for key, _ in equations})
        products = sorted({(a.args[0].name, a.args[1].name) for _, rhs in equations for a in rhs.atoms(MatVec)})
        for culprit, why in naming.clashes(naming.module_name(name), kinds, products):
            raise self.error(why, *self._declared(culprit, inputs, params, states))

    def _declared(self, name, inputs, params, states) -> tuple[str, str]:
        """(table, key) where the spec declares ``name``."""
        if name in inputs or name in params:
            return ("inputs" if name in inputs else "params"), name
        if ("equations", name) in self.keys:
            return "equations", name
        return ("", "states") if name in states else ("", "name")
