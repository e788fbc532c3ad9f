"""The conventions ``verify-code`` knows by name (``ng``, ``cs231n``, and one per framework layout of
:mod:`lstm_symbolic.interop.conventions`), and :func:`load`: a known name or a user's ``.toml`` file
(:func:`lstm_symbolic.verify.convention.from_table`)."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

from ..files import ReadError, read_text
from ..interop import conventions as frameworks
from ..spec.builtins import BUILTIN_CELLS, SPECS
from .convention import MAX_BYTES, Call, Convention, ConventionError, Param, from_table


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
