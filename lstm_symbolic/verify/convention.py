"""Calling conventions as data: how a user's forward and backward functions are called (``verify-code``).

A :class:`Convention` says which functions to call (a forward and a backward, for one step and/or
a whole sequence), what each takes and returns, whether examples are rows or columns, and how the
cell's per-gate parameters (``W_g`` on the input, ``U_g`` on the previous output, ``b_g``) are
laid out in the user's arrays.  The built-ins (:mod:`lstm_symbolic.verify.known_conventions`) and a user's
TOML file (:func:`from_table`) are the same data.

Arguments and results are *structures*: a string names an item, a list is a tuple, a table a dict.
Items: ``x``, ``<s>_prev`` (``h_prev``, ``c_prev``), a parameter's user name, an extra array, the
gradients reaching the new states ``d_<s>`` (``d_h`` the whole gradient on h_t, ``d_c`` the one on
c_t from step t+1), ``cache``; results ``<s>`` and ``d_x``, ``d_<s>_prev``, ``d_<param>``.  A whole
sequence: ``xs``, ``<s>0``, ``d_<out>s`` (``d_hs``, at every step), ``d_<s>_last``; results
``<s>s`` (every step), ``<s>_last``, ``d_xs``, ``d_<s>0``, ``d_<param>``.  ``_`` ignores a result;
``label=item`` reports the item under the user's label.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import UserError
from ..interop import conventions as frameworks

MAX_BYTES = 64 * 1024
FAMILIES = {"W": "input", "U": "hidden", "b": 1, "bh": 1}  # a parameter family → the width of its block


class ConventionError(UserError, ValueError):
    """A convention that cannot be used (unknown name, a bad TOML file, a layout that does not fit)."""


@dataclass(frozen=True)
class Param:
    """One user array: for each gate of ``gates`` (stacked along the output axis), the blocks of
    ``parts`` side by side (``["U", "W"]`` acts on [h_prev; x]; ``bh`` is a second bias, added to
    ``b``, as PyTorch's ``b_hh``); ``transpose`` stores it as
    (inputs, outputs) for ``x @ W``; ``flat`` stores a one-column result as a 1-D array."""

    name: str
    parts: tuple[str, ...]
    gates: str
    transpose: bool = False
    flat: bool = False


@dataclass(frozen=True)
class Call:
    """One function: its name, its arguments (structures) and its result (a structure)."""

    function: str
    args: tuple
    returns: object


@dataclass(frozen=True)
class Convention:
    name: str
    cell: str
    orientation: str  # "columns": a vector is (n, batch); "rows": (batch, n)
    params: tuple[Param, ...]
    extra: tuple[tuple[str, tuple], ...] = ()  # arrays the functions take but the cell does not use
    step_forward: Call | None = None
    step_backward: Call | None = None
    step_cache: object = None  # the cache the tool builds when the file has no step forward
    sequence_layout: str = "tbf"  # axes of a sequence: t time, b batch, f features
    sequence_forward: Call | None = None
    sequence_backward: Call | None = None
    framework: str | None = None  # the weights are this framework's arrays (interop.conventions)

    def functions(self) -> list[str]:
        calls = (self.step_forward, self.step_backward, self.sequence_forward, self.sequence_backward)
        return [c.function for c in calls if c is not None]

    def with_gate_order(self, order: str) -> Convention:
        """Every stacked parameter (more than one gate) in ``order`` instead."""
        if self.framework:
            order = frameworks.GATE_ORDERS.get((self.framework, self.cell), "")
            raise ConventionError(f"convention '{self.name}' has {self.framework}'s own gate order ({order}): "
                                  "--gate-order applies to ng, cs231n and convention files")
        stacked = [p for p in self.params if len(p.gates) > 1]
        if not stacked:
            raise ConventionError(f"convention '{self.name}' stacks no gates: --gate-order does not apply")
        if sorted(order) != sorted(stacked[0].gates):
            raise ConventionError(f"gate order '{order}': use each of the gates {stacked[0].gates} once")
        params = tuple(replace(p, gates=order) if len(p.gates) > 1 else p for p in self.params)
        return replace(self, params=params)


# -- parameters: the cell's per-gate arrays (column orientation) <-> the user's arrays -------------
def to_user(param: Param, blocks: dict[str, np.ndarray]) -> np.ndarray:
    """``blocks`` holds ``W_g``, ``U_g`` (hidden × n) and ``b_g`` (hidden × 1)."""
    rows = [np.hstack([blocks[f"{part}_{g}"] for part in param.parts]) for g in param.gates]
    array = np.vstack(rows)
    array = array.T if param.transpose else array
    return array.ravel() if param.flat else array


def from_user(param: Param, array, sizes: dict[str, int]) -> dict[str, np.ndarray]:
    """The per-gate blocks of a user array laid out as ``param`` (a ``ValueError`` if the shape differs)."""
    array = np.asarray(array, dtype=np.float64)
    widths = [sizes[FAMILIES[p]] if isinstance(FAMILIES[p], str) else 1 for p in param.parts]
    shape = (len(param.gates) * sizes["hidden"], sum(widths))
    if param.flat and array.shape == user_shape(param, sizes):
        array = array.reshape(shape[::-1] if param.transpose else shape)
    array = array.T if param.transpose else array
    if array.shape != shape:
        raise ValueError(f"shape {np.shape(array)}, expected {user_shape(param, sizes)}")
    blocks, h = {}, sizes["hidden"]
    for k, g in enumerate(param.gates):
        start = 0
        for part, width in zip(param.parts, widths, strict=True):
            blocks[f"{part}_{g}"] = array[k * h:(k + 1) * h, start:start + width]
            start += width
    return blocks


def user_shape(param: Param, sizes: dict[str, int]) -> tuple[int, ...]:
    widths = sum(sizes[FAMILIES[p]] if isinstance(FAMILIES[p], str) else 1 for p in param.parts)
    shape = (len(param.gates) * sizes["hidden"], widths)
    shape = shape[::-1] if param.transpose else shape
    return (shape[0] * shape[1],) if param.flat else shape


# -- a user's convention: a TOML table (read by known_conventions.load) --------------------------
KEYS = ("name", "cell", "orientation", "sequence_layout", "params", "extra", "step", "sequence")


def from_table(data: dict, where: str = "convention") -> Convention:
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise ConventionError(f"{where}: unknown key '{unknown[0]}'; a convention has {', '.join(KEYS)}")
    name = _string(data, "name", where, where)
    orientation = _string(data, "orientation", where, "columns")
    if orientation not in ("columns", "rows"):
        raise ConventionError(f"{where}: orientation is \"columns\" or \"rows\", not \"{orientation}\"")
    layout = _string(data, "sequence_layout", where, "tbf")
    if sorted(layout) != sorted("tbf"):
        raise ConventionError(f"{where}: sequence_layout orders the letters t, b, f (e.g. \"tbf\"), not \"{layout}\"")
    params = tuple(_param(name, spec, where) for name, spec in _table(data, "params", where).items())
    if not params:
        raise ConventionError(f"{where}: add a [params] table: one entry per array of weights")
    extra = tuple((key, _shape(key, shape, where)) for key, shape in _table(data, "extra", where).items())
    step, sequence = _table(data, "step", where), _table(data, "sequence", where)
    if not step and not sequence:
        raise ConventionError(f"{where}: add a [step] or a [sequence] table (forward, backward)")
    return Convention(
        name, _string(data, "cell", where, "lstm"), orientation, params, extra,
        _call(step, "forward", where), _call(step, "backward", where), step.get("cache"), layout,
        _call(sequence, "forward", where), _call(sequence, "backward", where))


def _string(data: dict, key: str, where: str, default: str) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise ConventionError(f"{where}: '{key}' must be a string")
    return value


def _table(data: dict, key: str, where: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConventionError(f"{where}: '{key}' must be a table ([{key}])")
    return value


def _shape(name: str, shape, where: str) -> tuple:
    sizes = ("hidden", "input", "batch", "out")
    if not isinstance(shape, list) or not all(s in sizes or (isinstance(s, int) and 0 < s <= 64) for s in shape):
        raise ConventionError(f"{where}: extra.{name} is a shape: a list of {', '.join(sizes)} or numbers 1 to 64")
    return tuple(shape)


def _param(name: str, spec, where: str) -> Param:
    if not isinstance(spec, dict) or not isinstance(spec.get("parts"), list) or not isinstance(spec.get("gates"), str):
        raise ConventionError(f"{where}: params.{name} needs parts (e.g. [\"W\"]) and gates (e.g. \"ifco\")")
    bad = [p for p in spec["parts"] if p not in FAMILIES]
    if bad or not spec["parts"]:
        raise ConventionError(f"{where}: params.{name}: parts are among W (input), U (recurrent), b (bias), "
                              "bh (a second bias)")
    extra = sorted(set(spec) - {"parts", "gates", "transpose", "flat"})
    if extra:
        raise ConventionError(f"{where}: params.{name}: unknown key '{extra[0]}'")
    return Param(name, tuple(spec["parts"]), spec["gates"], bool(spec.get("transpose", False)),
                 bool(spec.get("flat", False)))


def _call(table: dict, key: str, where: str) -> Call | None:
    spec = table.get(key)
    if spec is None:
        return None
    if not isinstance(spec, dict) or not isinstance(spec.get("function"), str) or "returns" not in spec:
        raise ConventionError(f"{where}: {key} needs function = \"name\", args = [...] and returns")
    if not isinstance(spec.get("args", []), list) or not spec["function"].isidentifier():
        raise ConventionError(f"{where}: {key}: function is a Python name and args a list")
    for part in ("args", "returns"):
        if not _structure(spec.get(part, [])):
            raise ConventionError(f"{where}: {key}.{part}: a structure is item names (strings), lists and "
                                  "tables, at most 8 deep")
    return Call(spec["function"], tuple(spec.get("args", [])), spec["returns"])


def _structure(value, depth: int = 0) -> bool:
    if depth > 8:
        return False
    if isinstance(value, str):
        return True
    if isinstance(value, list):
        return all(_structure(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(_structure(v, depth + 1) for v in value.values())
    return False
