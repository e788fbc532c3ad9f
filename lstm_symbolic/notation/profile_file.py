"""Notation profiles as TOML files (naming layer): read, written, checked against a cell.

A profile file gives, for every quantity, its LaTeX (``@`` is the time index) and its code
name, and the profile's habits: how an adjoint is written (δx, dx or ∂E/∂x), where the time
index goes for names it does not list (x_t, x^{⟨t⟩}, x^t), the element-wise and matrix product
symbols.  The built-in profiles are such files (``lstm_symbolic/notation/builtin/``); a user's is
checked against the cell it is used with, and every unknown or missing name is reported with
its line.

    name = "d2l"
    description = "the notation of ..."      # completes "The notation is ..."
    time = "sub"                             # sub | angle | sup
    adjoint = "delta"                        # delta | d | partial
    hadamard = '\\odot'                      # the element-wise product ('' = the default)
    matmul = ''                              # between a matrix and a vector ('' = a space)
    order = "declaration"                    # or "gates-first": Γ_f ⊙ c^{⟨t−1⟩}, not c^{⟨t−1⟩} ⊙ Γ_f
    vector = "plain"                         # or "bold": \boldsymbol{h}_t for what time indexes
    notes = [{text = "...", needs = ["f"]}]  # said only of a cell with every name in needs
    stacks = [{latex = "W_{ih}", code = "weight_ih", parts = ["W_i", "W_f"], axis = "rows"}]

    [names]
    x = ["X_{@}", "X"]                       # internal name = [LaTeX, code name]
"""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

from .. import naming
from ..core.cells import Cell
from ..errors import LocatedError
from ..files import ReadError, read_text
from ..files.toml import TomlText
from .model import ADJOINT_STYLES, ORDERS, TIME_STYLES, VECTOR_STYLES, Name, Notation, Note, Stack

MAX_PROFILE_BYTES = 256 * 1024
KEYS = ("name", "description", "time", "adjoint", "adjoint_code", "scalar", "hadamard", "matmul",
        "order", "vector", "notes", "stacks", "names")
STACK_KEYS = ("latex", "code", "parts", "axis", "operands", "operand_latex", "operand_code")


class ProfileError(LocatedError):
    """A notation file cannot be used: ``"<file>:<line>:<column>: <reason>"``."""

    WHERE = "notation"


def load_profile(path: str | Path) -> Notation:
    """The profile in the TOML file at ``path`` (its names not yet checked against a cell)."""
    try:
        text = read_text(path, MAX_PROFILE_BYTES, "notation file")
    except ReadError as exc:
        raise ProfileError(exc.reason, where=exc.path) from None
    return parse_profile(text, str(path))


def parse_profile(text: str, where: str = "notation") -> Notation:
    """The profile described by the TOML ``text``; ``where`` names it in errors."""
    reader = TomlText(text, where, ProfileError)
    data = reader.data

    def fail(reason: str, table: str = "", key: str = "") -> ProfileError:
        return ProfileError(reason, *reader.at(table, key), where)

    for key in data:
        if key not in KEYS:
            raise fail(f"unknown key '{key}'; a notation file has {', '.join(KEYS)}", "", key)

    def string(key: str, default: str, choices: tuple[str, ...] = ()) -> str:
        value = data.get(key, default)
        if not isinstance(value, str) or (choices and value not in choices):
            wanted = f"one of {', '.join(choices)}" if choices else "a string"
            raise fail(f"'{key}' must be {wanted}", "", key)
        return value

    names = data.get("names")
    if not isinstance(names, dict) or not names:
        raise fail("a notation file needs a [names] table: name = [LaTeX, code name]", "names")
    table, positions = {}, {}
    for name, value in names.items():
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
            raise fail(f"'{name}' must be [LaTeX, code name], two strings", "names", name)
        table[name] = Name(*value)
        positions[name] = reader.at("names", name)
    scalar = data.get("scalar", False)
    if not isinstance(scalar, bool):
        raise fail("'scalar' must be true or false", "", "scalar")
    return Notation(
        string("name", Path(where).stem), string("description", "a notation of its own"),
        MappingProxyType(table), time_style=string("time", "sub", TIME_STYLES),
        adjoint_code=string("adjoint_code", "d_"), scalar=scalar,
        stacks=tuple(_stack(s, fail) for s in _list(data, "stacks", fail)),
        notes=tuple(_note(n, fail) for n in _list(data, "notes", fail)),
        adjoint=string("adjoint", "delta", ADJOINT_STYLES), hadamard=string("hadamard", ""),
        matmul=string("matmul", ""), order=string("order", "declaration", ORDERS),
        vector=string("vector", "plain", VECTOR_STYLES), where=where,
        positions=MappingProxyType(positions))


def _list(data: dict, key: str, fail) -> list[dict]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise fail(f"'{key}' must be a list of inline tables", "", key)
    return value


def _strings(value, what: str, fail, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(f"{what} must be a list of strings", "", key)
    return tuple(value)


def _note(item: dict, fail) -> Note:
    if not isinstance(item.get("text"), str) or set(item) - {"text", "needs", "unless"}:
        raise fail("a note is {text = \"...\", needs = [...], unless = [...]}", "", "notes")
    return Note(item["text"], _strings(item.get("needs", []), "a note's needs", fail, "notes"),
                _strings(item.get("unless", []), "a note's unless", fail, "notes"))


def _stack(item: dict, fail) -> Stack:
    if set(item) - set(STACK_KEYS) or not {"latex", "code", "parts", "axis"} <= set(item) \
            or item["axis"] not in ("rows", "columns"):
        raise fail("a stack is {latex, code, parts, axis = \"rows\" | \"columns\"} (with "
                   "operands, operand_latex, operand_code for columns)", "", "stacks")
    return Stack(item["latex"], item["code"], _strings(item["parts"], "parts", fail, "stacks"),
                 item["axis"], _strings(item.get("operands", []), "operands", fail, "stacks"),
                 item.get("operand_latex", ""), item.get("operand_code", ""))


def check_profile(profile: Notation, cell: Cell) -> None:
    """A user's profile must name every quantity of ``cell`` and nothing else: the first
    unknown name, or the missing ones, as one located error."""
    if not profile.where:
        return
    have = [q.name for q in cell.quantities if q.kind != "state"]
    known = set(have) | {f"{n}_prev" for n in have} | set(cell.states) | {f"{s}_prev" for s in cell.states}
    known |= {naming.adjoint(n) for n in known} | {naming.seed(s, True) for s in cell.states}
    for name, (line, column) in profile.positions.items():
        if name not in known:
            raise ProfileError(f"'{name}' is not a quantity of the cell '{cell.name}' (it has "
                               f"{', '.join(have)})", line, column, profile.where)
    missing = [n for n in have if n not in profile.names]
    if missing:
        line = min((p[0] for p in profile.positions.values()), default=2) - 1
        raise ProfileError(f"[names] gives no LaTeX for {', '.join(missing)} of the cell "
                           f"'{cell.name}'", max(line, 1), 1, profile.where)


def dump_profile(profile: Notation) -> str:
    """``profile`` as a notation file (``parse_profile`` reads it back equal)."""
    def q(text: str) -> str:  # a literal string where it can be: LaTeX reads as written
        return f"'{text}'" if text.isprintable() and "'" not in text else json.dumps(text, ensure_ascii=False)

    lines = [f"name = {q(profile.name)}", f"description = {q(profile.description)}",
             f"time = {q(profile.time_style)}", f"adjoint = {q(profile.adjoint)}",
             f"adjoint_code = {q(profile.adjoint_code)}", f"scalar = {str(profile.scalar).lower()}",
             f"hadamard = {q(profile.hadamard)}", f"matmul = {q(profile.matmul)}",
             f"order = {q(profile.order)}", f"vector = {q(profile.vector)}", "notes = ["]
    for note in profile.notes:
        lines.append(f"    {{text = {q(note.text)}, needs = {json.dumps(list(note.needs))}, "
                     f"unless = {json.dumps(list(note.unless))}}},")
    lines.append("]")
    lines.append("stacks = [")
    for s in profile.stacks:
        lines.append(f"    {{latex = {q(s.latex)}, code = {q(s.code)}, parts = {json.dumps(list(s.parts))}, "
                     f"axis = {q(s.axis)}, operands = {json.dumps(list(s.operands))}, "
                     f"operand_latex = {q(s.operand_latex)}, operand_code = {q(s.operand_code)}}},")
    lines += ["]", "", "[names]"]
    lines += [f"{name} = [{q(n.latex)}, {q(n.code)}]" for name, n in profile.names.items()]
    return "\n".join(lines) + "\n"
