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
from pathlib import Path

import sympy as sp

from .. import naming
from ..core.cells import SIZES, Cell, CellError, make_cell
from ..core.functions import LINEAR_ATOMS, MatVec, MissingRuleError, Reduction, check_primitives
from ..errors import LocatedError
from ..files import ReadError, read_text
from ..files.toml import TomlText
from ..formula.parse import BatchSum, ColumnSlice, FormulaError, parse_shaped
from ..formula.values import show
from .whole import check_whole_cell

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


class _Reader(TomlText):
    """One spec's text and table, with the source position of every key."""

    def __init__(self, text: str, where: str):
        super().__init__(text, where, SpecError)

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
        check_whole_cell(self, name, equations, states, inputs, params)
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
