"""Calling conventions as data: how a user's forward and backward functions are called (``verify-code``).

A :class:`Convention` says which functions to call (a forward and a backward, for one step and/or
a whole sequence), what each takes and returns, whether examples are rows or columns, and how the
cell's per-gate parameters (``W_g`` on the input, ``U_g`` on the previous output, ``b_g``) are
laid out in the user's arrays.  The built-ins (:data:`BUILTIN`) and a user's TOML file
(:func:`load`) are the same data.

Arguments and results are *structures*: a string names an item, a list is a tuple, a table a dict.
Items: ``x``, ``<s>_prev`` (``h_prev``, ``c_prev``), a parameter's user name, an extra array, the
gradients reaching the new states ``d_<s>`` (``d_h`` the whole gradient on h_t, ``d_c`` the one on
c_t from step t+1), ``cache``; results ``<s>`` and ``d_x``, ``d_<s>_prev``, ``d_<param>``.  A whole
sequence: ``xs``, ``<s>0``, ``d_<out>s`` (``d_hs``, at every step), ``d_<s>_last``; results
``<s>s`` (every step), ``<s>_last``, ``d_xs``, ``d_<s>0``, ``d_<param>``.  ``_`` ignores a result;
``label=item`` reports the item under the user's label.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..files import ReadError, read_text
from ..interop import conventions as frameworks
from ..spec.builtins import BUILTIN_CELLS, SPECS

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


# -- the built-in conventions --------------------------------------------------------------------
def _ng() -> Convention:
    params = tuple(Param(f"W{g}", ("U", "W"), g) for g in "fico") + tuple(Param(f"b{g}", ("b",), g) for g in "fico")
    table = {p.name: p.name for p in params} | {"Wy": "Wy", "by": "by"}
    grads = {f"d{p.name}": f"d_{p.name}" for p in params}
    cache = ["h", "c", "h_prev", "c_prev", "f", "i", "c_tilde", "o", "x", table]
    return Convention(
        "ng", "lstm", "columns", params, extra=(("Wy", ("out", "hidden")), ("by", ("out", 1))),
        step_forward=Call("lstm_cell_forward", ("x", "h_prev", "c_prev", table), ["h", "c", "_", "cache"]),
        step_backward=Call("lstm_cell_backward", ("d_h", "d_c", "cache"),
                           {"dxt": "d_x", "da_prev": "d_h_prev", "dc_prev": "d_c_prev"} | grads),
        step_cache=cache, sequence_layout="fbt",
        sequence_forward=Call("lstm_forward", ("xs", "h0", table), ["hs", "_", "cs", "cache"]),
        sequence_backward=Call("lstm_backward", ("d_hs", "cache"), {"dx": "d_xs", "da0": "d_h0"} | grads))


def _cs231n() -> Convention:
    params = (Param("Wx", ("W",), "ifoc", transpose=True), Param("Wh", ("U",), "ifoc", transpose=True),
              Param("b", ("b",), "ifoc", transpose=True, flat=True))
    grads = ["dWx=d_Wx", "dWh=d_Wh", "db=d_b"]
    return Convention(
        "cs231n", "lstm", "rows", params,
        step_forward=Call("lstm_step_forward", ("x", "h_prev", "c_prev", "Wx", "Wh", "b"), ["h", "c", "cache"]),
        step_backward=Call("lstm_step_backward", ("d_h", "d_c", "cache"),
                           ["dx=d_x", "dprev_h=d_h_prev", "dprev_c=d_c_prev", *grads]),
        sequence_layout="btf",
        sequence_forward=Call("lstm_forward", ("xs", "h0", "Wx", "Wh", "b"), ["hs", "cache"]),
        sequence_backward=Call("lstm_backward", ("d_hs", "cache"), ["dx=d_xs", "dh0=d_h0", *grads]))


RNN_SPEC = str(SPECS / "rnn.toml")


def _ng_rnn() -> Convention:
    params = (Param("Wax", ("W",), "a"), Param("Waa", ("U",), "a"), Param("ba", ("b",), "a"))
    table = {"Wax": "Wax", "Waa": "Waa", "ba": "ba", "Wya": "Wya", "by": "by"}
    grads = {"dWax": "d_Wax", "dWaa": "d_Waa", "dba": "d_ba"}
    return Convention(
        "ng", RNN_SPEC, "columns", params, extra=(("Wya", ("out", "hidden")), ("by", ("out", 1))),
        step_forward=Call("rnn_cell_forward", ("x", "h_prev", table), ["h", "_", "cache"]),
        step_backward=Call("rnn_cell_backward", ("d_h", "cache"), {"dxt": "d_x", "da_prev": "d_h_prev"} | grads),
        sequence_layout="fbt",
        sequence_forward=Call("rnn_forward", ("xs", "h0", table), ["hs", "_", "cache"]),
        sequence_backward=Call("rnn_backward", ("d_hs", "cache"), {"dx": "d_xs", "da0": "d_h0"} | grads))


def _cs231n_rnn() -> Convention:
    params = (Param("Wx", ("W",), "a", transpose=True), Param("Wh", ("U",), "a", transpose=True),
              Param("b", ("b",), "a", transpose=True, flat=True))
    grads = ["dWx=d_Wx", "dWh=d_Wh", "db=d_b"]
    return Convention(
        "cs231n", RNN_SPEC, "rows", params,
        step_forward=Call("rnn_step_forward", ("x", "h_prev", "Wx", "Wh", "b"), ["h", "cache"]),
        step_backward=Call("rnn_step_backward", ("d_h", "cache"), ["dx=d_x", "dprev_h=d_h_prev", *grads]),
        sequence_layout="btf",
        sequence_forward=Call("rnn_forward", ("xs", "h0", "Wx", "Wh", "b"), ["hs", "cache"]),
        sequence_backward=Call("rnn_backward", ("d_hs", "cache"), ["dx=d_xs", "dh0=d_h0", *grads]))


def _framework(framework: str, cell: str = "lstm") -> Convention:
    """A hand-written forward and backward in a framework's weight layout (:mod:`interop.conventions`:
    PyTorch's weight_ih, weight_hh, bias_ih, bias_hh; Keras' kernel, recurrent_kernel, bias; ONNX's
    W, R, B; TensorFlow's kernel, bias), examples as rows, each array an argument of its own."""
    try:
        arrays = [k.removesuffix("_l0") for k in frameworks.array_names(framework, cell)]
    except frameworks.ConventionError as exc:
        raise ConventionError(f"convention '{framework}': {exc}") from None
    states = BUILTIN_CELLS[cell]().states
    kind = "lstm" if "c" in states else "gru"
    prev, step_d = [f"{s}_prev" for s in states], [f"d_{s}" for s in states]
    grads = [f"d_{a}" for a in arrays]
    return Convention(
        framework, cell, "rows", (), framework=framework,
        step_forward=Call(f"{kind}_step_forward", ("x", *prev, *arrays), [*states, "cache"]),
        step_backward=Call(f"{kind}_step_backward", (*step_d, "cache"),
                           ["d_x", *(f"d_{p}" for p in prev), *grads]),
        sequence_layout=frameworks.SEQUENCE_AXES[framework],
        sequence_forward=Call(f"{kind}_forward", ("xs", *(f"{s}0" for s in states), *arrays), ["hs", "cache"]),
        sequence_backward=Call(f"{kind}_backward", ("d_hs", "cache"),
                               ["d_xs", *(f"d_{s}0" for s in states), *grads]))


BUILTIN = {"ng": _ng, "cs231n": _cs231n}
FRAMEWORKS = frameworks.FRAMEWORKS  # pytorch, keras, onnx, tensorflow: one built-in convention each
# The plain-RNN functions of the same assignments, checked against the rnn spec beside the LSTM ones.
COMPANIONS = {"ng": _ng_rnn, "cs231n": _cs231n_rnn}
NAMES = ("kwargs", *BUILTIN, *FRAMEWORKS)


def companions(convention: Convention) -> list[Convention]:
    """The conventions checked together with a built-in one (its ``rnn_*`` functions)."""
    builder = COMPANIONS.get(convention.name)
    return [builder()] if builder else []


# -- a user's convention: TOML ---------------------------------------------------------------------
def load(name_or_path: str, cell: str | None = None) -> Convention:
    """A built-in convention's name or the path of a ``.toml`` convention file; a framework's
    convention is built for ``cell`` (default lstm)."""
    if name_or_path in BUILTIN:
        return BUILTIN[name_or_path]()
    if name_or_path in FRAMEWORKS:
        return _framework(name_or_path, cell or "lstm")
    if not name_or_path.endswith(".toml"):
        raise ConventionError(f"unknown convention '{name_or_path}': use one of {', '.join(NAMES)} "
                              "or a .toml file")
    try:
        text = read_text(name_or_path, MAX_BYTES, "convention file")
    except ReadError as exc:
        raise ConventionError(str(exc)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConventionError(f"{name_or_path}: not valid TOML: {exc}") from None
    convention = from_table(data, name_or_path)
    if convention.cell.endswith(".toml") and not Path(convention.cell).is_absolute():
        convention = replace(convention, cell=str(Path(name_or_path).parent / convention.cell))
    return convention


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
