"""Check hand-derived formulas against the derivation (formula file → verdicts → report).

The last stage of the pipeline: a formula file (TOML: ``cell``, ``notation``, ``shape``,
``[formulas]``) is read without executing anything, each formula is parsed by
:mod:`lstm_symbolic.formula.parse` in the notation's names, and compared with the derived quantity
on the component level at small sizes:

* exactly - random rational leaves (inputs, previous states, weights, seeds), forward and
  backward values computed component by component (:mod:`.eval`, by the one evaluator of
  :mod:`~lstm_symbolic.core.components`, with slices, batch sums and nested products); the difference must
  expand to zero, or vanish at 60 digits where expanding could blow up; several draws;
* in floats - NumPy at other sizes (so that a size written as a number is caught).

A name of another quantity inside a formula (``dWf = dft @ concat.T``) stands for its right
value, so every formula is judged on its own.  Verdicts: ``holds``, ``wrong``,
``holds-at-last-step`` (right only when nothing comes back from step t+1: ``dc_next = 0``) and
``error`` (cannot be read).  Hand-written backward code: :func:`check_backward`.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sympy as sp

from ..core.cells import Cell
from ..errors import UserError
from ..files import ReadError, read_text, size_text
from ..formula.parse import FormulaError, parse_formula
from ..spec.builtins import load_cell as load_builtin
from .check import Checker
from .code import (
    BackwardReport,
    QuantityCheck,
    VerifyCodeError,
    check_backward,
    load_function,
    open_child,
    split_target,
)
from .names import scalar_by_default
from .run import DEFAULT_TIMEOUT

__all__ = [
    "DEFAULT_TIMEOUT", "VerifyCodeError", "open_child", "split_target",
    "BackwardReport", "Checker", "FormulaFile", "QuantityCheck", "Verdict", "VerifyFileError",
    "check_backward", "check_file", "check_formula", "check_text", "exit_code", "load_function",
    "report_json", "report_text",
]

MAX_FILE_BYTES = 256 * 1024
MAX_FORMULAS = 200
MAX_NAME = 100
SHAPES = ("vector", "scalar")
KEYS = ("cell", "notation", "shape", "formulas")
VERDICTS = ("holds", "wrong", "holds-at-last-step", "error")
NUMPY_CALL = re.compile(r"\bnp\s*\.\s*(?!(sum|tanh|exp|log|dot|matmul|multiply|square)\b)[A-Za-z_]+")
JSON_KEYS = ("name", "verdict", "max_rel_error", "expected", "expected_latex", "diagnosis")


class VerifyFileError(UserError, ValueError):
    """The formula file cannot be used at all (exit 2)."""


@dataclass(frozen=True)
class FormulaFile:
    cell: str
    notation: str
    shape: str
    formulas: tuple[tuple[str, str], ...]
    where: str


@dataclass(frozen=True)
class Verdict:
    """The outcome for one formula; :meth:`as_json` has exactly :data:`JSON_KEYS`."""

    name: str
    verdict: str
    max_rel_error: float | None
    expected: str
    expected_latex: str
    diagnosis: str

    def as_json(self) -> dict:
        return {key: getattr(self, key) for key in JSON_KEYS}


def read_file(text: str, where: str = "formulas") -> FormulaFile:
    """Validate a formula file's TOML (sizes capped before parsing)."""
    if len(text.encode("utf-8", "replace")) > MAX_FILE_BYTES:
        raise VerifyFileError(f"{where}: the file is larger than {size_text(MAX_FILE_BYTES)}")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise VerifyFileError(f"{where}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise VerifyFileError(f"{where}: unknown key '{unknown[0]}'; a formula file has {', '.join(KEYS)}")
    notation = data.get("notation", "default")
    shape = "scalar" if scalar_by_default(notation) else "vector"
    fields = {k: data.get(k, d) for k, d in (("cell", None), ("notation", "default"), ("shape", shape))}
    if isinstance(notation, str) and notation.endswith(".toml") and not Path(notation).is_absolute():
        fields["notation"] = str(Path(where).parent / notation)  # next to the formula file
    for key, value in fields.items():
        if not isinstance(value, str):
            raise VerifyFileError(f"{where}: '{key}' must be a string, e.g. cell = \"lstm\"")
    if fields["shape"] not in SHAPES:
        raise VerifyFileError(f"{where}: shape is \"vector\" or \"scalar\", not \"{fields['shape']}\"")
    return FormulaFile(fields["cell"], fields["notation"], fields["shape"], _formulas(data, where), where)


def _formulas(data: dict, where: str) -> tuple[tuple[str, str], ...]:
    table = data.get("formulas")
    if not isinstance(table, dict) or not table:
        raise VerifyFileError(f"{where}: add a [formulas] table: quantity = \"formula\"")
    if len(table) > MAX_FORMULAS:
        raise VerifyFileError(f"{where}: {len(table)} formulas; the limit is {MAX_FORMULAS}")
    for name, text in table.items():
        if len(name) > MAX_NAME or not isinstance(text, str):
            raise VerifyFileError(f"{where}: formula '{name[:MAX_NAME]}' must be a string: {name} = \"...\"")
    return tuple(table.items())


def _builtin_cell(name: str) -> Cell:
    return load_builtin(name, specs=False)


def check_text(text: str, where: str = "formulas", load_cell: Callable[[str], Cell] | None = None
               ) -> list[Verdict]:
    """The verdict of every formula of a formula file's text, in file order."""
    spec = read_file(text, where)
    cell = (load_cell or _builtin_cell)(spec.cell)
    checker = Checker(cell, spec.notation, spec.shape == "scalar")
    return [check_formula(checker, name, formula, where) if name in checker.quantities
            else _unknown(checker, name, spec) for name, formula in spec.formulas]


def _unknown(checker: Checker, name: str, spec: FormulaFile) -> Verdict:
    known = ", ".join(checker.quantities)
    return Verdict(name, "error", None, "", "",
                   f"'{name}' is not a quantity of notation '{spec.notation}' ({spec.shape}); known: {known}")


def check_file(path: str | Path, load_cell: Callable[[str], Cell] | None = None) -> list[Verdict]:
    """:func:`check_text` of a file; a cell spec path in it is relative to the file."""
    path = Path(path)
    try:
        text = read_text(path, MAX_FILE_BYTES, "formula file")
    except ReadError as exc:
        raise VerifyFileError(str(exc)) from None

    def load(name: str) -> Cell:
        if name.endswith(".toml") and not Path(name).is_absolute():
            name = str(path.parent / name)
        return (load_cell or _builtin_cell)(name)

    return check_text(text, str(path), load)


def check_formula(checker: Checker, name: str, text: str, where: str = "formulas") -> Verdict:
    """The verdict of one formula ``name = text`` (``checker``: one per file)."""
    expected, latex = checker.expected(name, set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)))
    try:
        expr = parse_formula(text, checker.shapes, where=f"{where}: {name}")
        if sp.Symbol(name) in expr.free_symbols:
            raise FormulaError(f"the formula for {name} uses {name} itself", where=name)
    except FormulaError as exc:
        reason = f"line {exc.line}, column {exc.column}: {exc.reason}"
        if NUMPY_CALL.search(text):
            reason += ("; of NumPy, formulas know np.sum, np.tanh, np.exp, np.log, np.dot, np.matmul, "
                       "np.multiply and np.square")
        return Verdict(name, "error", None, expected, latex, reason)
    try:
        outcome = checker.judge(name, expr)
    except (TypeError, ValueError, ArithmeticError, RecursionError) as exc:  # a value SymPy cannot take
        return Verdict(name, "error", None, expected, latex, f"cannot be evaluated: {exc}")
    return Verdict(name, outcome.verdict, outcome.max_rel_error, expected, latex, outcome.diagnosis)


EXAMPLE = """\
# An example formula file (notation ng, Andrew Ng's assignment names) and, next to it, its report
# (verify-example.txt, made by `lstm-symbolic verify`).  Three formulas hold; the others carry
# the slips the verifier names.
cell = "lstm"
notation = "ng"
shape = "vector"

[formulas]
dot = "da_next * tanh(c_next) * ot * (1 - ot)"
dft = "(dc_next * c_prev + ot * (1 - tanh(c_next)**2) * c_prev * da_next) * ft * (1 - ft)"
dWf = "dft @ concat.T"
dcct = "(dc_next * it + ot * (1 - tanh(c_next)**2) * it * da_next) * (1 - tanh(cct)**2)"
dit = "dc_next * cct + ot * (1 - tanh(c_next)**2) * cct * da_next * it * (1 - it)"
dc_prev = "ot * (1 - tanh(c_next)**2) * ft * da_next"
da_prev = "Wf[:, :n_a] @ dft + Wi[:, :n_a].T @ dit + Wc[:, :n_a].T @ dcct + Wo[:, :n_a].T @ dot"
dxt = "Wf[:, n_a:].T @ dft + Wi[:, n_a:].T @ dit + Wc[:, n_a:].T @ dcct"
"""


def example_files() -> dict[str, str]:
    """``verify-example.toml`` and its report, for ``generated/``."""
    verdicts = check_text(EXAMPLE, "verify-example.toml")
    return {"verify-example.toml": EXAMPLE,
            "verify-example.txt": report_text(verdicts, "verify verify-example.toml")}


def exit_code(verdicts: list[Verdict]) -> int:
    """0 every formula holds; 1 otherwise (a formula that cannot be read is an ``error`` verdict).
    A file that cannot be used at all never gets here: it is a :class:`VerifyFileError` (exit 2)."""
    return 0 if all(v.verdict == "holds" for v in verdicts) else 1


def report_json(verdicts: list[Verdict]) -> str:
    return json.dumps([v.as_json() for v in verdicts], indent=2, ensure_ascii=False) + "\n"


def report_text(verdicts: list[Verdict], title: str = "") -> str:
    """A short table: name, verdict, relative error, and what is wrong with the right formula."""
    width = max([len(v.name) for v in verdicts] + [8])
    lines = [title] if title else []
    lines.append(f"{'quantity':{width}}  {'verdict':18}  {'rel. error':10}  diagnosis")
    for v in verdicts:
        err = "-" if v.max_rel_error is None else f"{v.max_rel_error:.1e}"
        lines.append(f"{v.name:{width}}  {v.verdict:18}  {err:10}  {v.diagnosis}".rstrip())
        if v.verdict != "holds" and v.expected:
            lines.append(f"{'':{width}}  right formula: {v.name} = {v.expected}")
    counts = {k: sum(v.verdict == k for v in verdicts) for k in VERDICTS}
    lines.append(", ".join(f"{n} {k}" for k, n in counts.items() if n) + f" (of {len(verdicts)})")
    return "\n".join(lines) + "\n"
