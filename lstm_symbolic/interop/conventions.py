"""Framework weight layouts ↔ a built-in cell's parameters (beside the pipeline; NumPy only).

Every supported layout is first read into one neutral form, :class:`Stacked`: the input
weights and recurrent weights with the gates stacked row-wise in the framework's order
(each block acting as ``W @ v``), an input-side and a recurrent-side bias, and peepholes.
From there the cell's parameters follow one rule: ``W_g``, ``U_g`` are blocks; ``b_g`` is the
sum of the two biases, except for a cell with a separate ``b_h<g>`` (gru-reset-after's
``b_hn``), which keeps the recurrent bias of gate g apart.

Going back cannot recover how a framework split a summed bias: :func:`from_params` puts the
whole bias on the input side (PyTorch ``bias_ih``, ONNX ``Wb``) and zeros on the recurrent side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..errors import UserError
from ..spec.builtins import load_cell


class ConventionError(UserError, ValueError):
    """Weights that do not fit the framework's layout, or a layout this module does not know."""


# (framework, cell) -> the framework's gate order, in the cell's gate names.
GATE_ORDERS: dict[tuple[str, str], str] = {
    ("pytorch", "lstm"): "ifco",  # torch: i, f, g, o
    ("pytorch", "lstm-proj"): "ifco",  # nn.LSTM(proj_size=P): weight_hh (4H, P), weight_hr (P, H) is W_hr
    ("pytorch", "gru-reset-after"): "rzn",  # nn.GRU is the reset-after GRU
    ("keras", "lstm"): "ifco",
    ("keras", "gru"): "zrn",  # keras: z, r, h; reset_after=False, bias (3H,)
    ("keras", "gru-reset-after"): "zrn",  # reset_after=True, bias (2, 3H)
    ("onnx", "lstm"): "iofc",
    ("onnx", "lstm-peephole"): "iofc",  # peepholes P = [p_i, p_o, p_f]
    ("onnx", "gru"): "zrn",  # linear_before_reset = 0
    ("onnx", "gru-reset-after"): "zrn",  # linear_before_reset = 1
    ("tensorflow", "lstm"): "icfo",  # BasicLSTMCell: i, j, f, o acting on [x, h]
}
FRAMEWORKS = tuple(dict.fromkeys(f for f, _ in GATE_ORDERS))


@dataclass(frozen=True)
class Stacked:
    """The neutral form: gate blocks stacked row-wise in ``order``."""

    order: str
    w_x: np.ndarray  # (G*H, input)
    w_h: np.ndarray  # (G*H, hidden)
    b_x: np.ndarray  # (G*H,)
    b_h: np.ndarray  # (G*H,)
    peepholes: dict[str, np.ndarray]  # gate -> (H,)
    others: dict[str, np.ndarray] = field(default_factory=dict)  # parameters as they are (lstm-proj's W_hr)

    def block(self, a: np.ndarray, gate: str) -> np.ndarray:
        h = a.shape[0] // len(self.order)
        k = self.order.index(gate)
        return np.array(a[k * h:(k + 1) * h])


def _cell_params(cell: str) -> dict[str, tuple[str, ...]]:
    return {p.name: p.shape for p in load_cell(cell, specs=False).params}


def _order(framework: str, cell: str) -> str:
    if framework not in FRAMEWORKS:
        raise ConventionError(f"unknown framework '{framework}': use one of {', '.join(FRAMEWORKS)}")
    if (framework, cell) not in GATE_ORDERS:
        cells = ", ".join(c for f, c in GATE_ORDERS if f == framework)
        raise ConventionError(f"no {framework} layout for cell '{cell}': {framework} maps to {cells}")
    return GATE_ORDERS[framework, cell]


def _params_from(s: Stacked, cell: str) -> dict[str, np.ndarray]:
    names = _cell_params(cell)
    params = {}
    for g in s.order:
        params[f"W_{g}"] = s.block(s.w_x, g)
        params[f"U_{g}"] = s.block(s.w_h, g)
        split = f"b_h{g}" in names
        params[f"b_{g}"] = s.block(s.b_x, g) if split else s.block(s.b_x, g) + s.block(s.b_h, g)
        if split:
            params[f"b_h{g}"] = s.block(s.b_h, g)
    for g, p in s.peepholes.items():
        if f"p_{g}" in names:
            params[f"p_{g}"] = np.array(p)
        elif np.any(p != 0):
            raise ConventionError(f"the weights have peepholes (p_{g} ≠ 0) but cell '{cell}' has none: "
                                  "use lstm-peephole")
    params.update({name: np.array(a) for name, a in s.others.items()})
    for name in names:
        params.setdefault(name, np.zeros(params["b_" + s.order[0]].shape, params["W_" + s.order[0]].dtype))
    return {name: params[name] for name in names}


def _stacked_from(params: dict, cell: str, order: str) -> Stacked:
    names = _cell_params(cell)
    _check_params(params, names)
    rows = lambda prefix: np.concatenate([np.asarray(params[f"{prefix}_{g}"]) for g in order])  # noqa: E731
    b_h = np.concatenate([np.asarray(params[f"b_h{g}"]) if f"b_h{g}" in names
                          else np.zeros_like(params[f"b_{g}"]) for g in order])
    peep = {n[2:]: np.asarray(params[n]) for n in names if n.startswith("p_")}
    blocks = {f"{k}_{g}" for g in order for k in ("W", "U", "b", "p")} | {f"b_h{g}" for g in order}
    others = {n: np.asarray(params[n]) for n in names if n not in blocks}
    return Stacked(order, rows("W"), rows("U"), rows("b"), b_h, peep, others)


def _check_params(params: dict, names: dict[str, tuple[str, ...]]) -> None:
    missing = [n for n in names if n not in params]
    if missing:
        raise ConventionError(f"parameters missing: {', '.join(missing)}")
    w = next(n for n, shape in names.items() if shape == ("hidden", "input"))
    sizes = dict(zip(("hidden", "input"), np.shape(params[w]), strict=False))
    for name, shape in names.items():  # a size beyond hidden and input (proj): as the first parameter has it
        sizes.update({s: n for s, n in zip(shape, np.shape(params[name]), strict=False) if s not in sizes})
    for name, shape in names.items():
        want = tuple(sizes[s] for s in shape)
        if np.shape(params[name]) != want:
            raise ConventionError(f"parameter {name} has shape {np.shape(params[name])}, expected {want}")


def _get(weights: dict, key: str, framework: str) -> np.ndarray:
    if key not in weights:
        have = ", ".join(sorted(map(str, weights))) or "nothing"
        raise ConventionError(f"{framework} weights: missing '{key}' (have {have})")
    return np.asarray(weights[key])


def _expect(key: str, a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if a.shape != shape:
        raise ConventionError(f"'{key}' has shape {a.shape}, expected {shape}")
    return a


def _sizes(key: str, a: np.ndarray, gates: int, ndim: int, rows_axis: int) -> int:
    """The hidden size from a stacked matrix whose ``rows_axis`` holds gates × hidden."""
    if a.ndim != ndim or a.shape[rows_axis] % gates:
        raise ConventionError(f"'{key}' has shape {a.shape}: not a stack of {gates} gate blocks")
    return a.shape[rows_axis] // gates


# ---- the layouts: each reads its weights into Stacked and writes Stacked back ------------------
def _torch_keys(layer: int, reverse: bool) -> tuple[str, ...]:
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    return tuple(k + suffix for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


def _read_pytorch(weights, order, cell, *, layer, reverse) -> Stacked:
    """nn.LSTM / nn.GRU state dict: weight_ih (G*H, I), weight_hh (G*H, H), bias_ih, bias_hh (G*H,); with
    proj_size P (cell lstm-proj), weight_hh (G*H, P) and weight_hr (P, H), the cell's W_hr."""
    k_ih, k_hh, k_bi, k_bh = _torch_keys(layer, reverse)
    w_hh = _get(weights, k_hh, "pytorch")
    h = _sizes(k_hh, w_hh, len(order), 2, 0)
    w_ih = _get(weights, k_ih, "pytorch")
    others = {}
    if cell == "lstm-proj":
        k_hr = f"weight_hr{k_hh.removeprefix('weight_hh')}"
        others["W_hr"] = _get(weights, k_hr, "pytorch")
        _expect(k_hr, others["W_hr"], (w_hh.shape[-1], h))
    _expect(k_hh, w_hh, (len(order) * h, others["W_hr"].shape[0] if others else h))
    _expect(k_ih, w_ih, (len(order) * h, w_ih.shape[-1]))
    b_ih = _expect(k_bi, _get(weights, k_bi, "pytorch"), (len(order) * h,))
    b_hh = _expect(k_bh, _get(weights, k_bh, "pytorch"), (len(order) * h,))
    return Stacked(order, w_ih, w_hh, b_ih, b_hh, {}, others)


def _write_pytorch(s: Stacked, cell, *, layer, reverse) -> dict:
    out = dict(zip(_torch_keys(layer, reverse), (s.w_x, s.w_h, s.b_x, s.b_h), strict=True))
    if "W_hr" in s.others:
        out[f"weight_hr_l{layer}" + ("_reverse" if reverse else "")] = s.others["W_hr"]
    return out


def _read_keras(weights, order, cell) -> Stacked:
    """kernel (I, G*H), recurrent_kernel (H, G*H), bias (G*H,) or, reset_after, (2, G*H)."""
    rec = _get(weights, "recurrent_kernel", "keras")
    h = _sizes("recurrent_kernel", rec, len(order), 2, 1)
    kernel = _get(weights, "kernel", "keras")
    _expect("recurrent_kernel", rec, (h, len(order) * h))
    _expect("kernel", kernel, (kernel.shape[0], len(order) * h))
    bias = _get(weights, "bias", "keras")
    two = cell == "gru-reset-after"
    if bias.shape != ((2, len(order) * h) if two else (len(order) * h,)):
        hint = "a (2, 3H) bias is a GRU with reset_after=True: use cell gru-reset-after" if bias.ndim == 2 \
            else "a (3H,) bias is a GRU with reset_after=False: use cell gru" if two else ""
        raise ConventionError(f"'bias' has shape {bias.shape}, wrong for cell {cell}" + (f"; {hint}" if hint else ""))
    b_x, b_h = (bias[0], bias[1]) if two else (bias, np.zeros_like(bias))
    return Stacked(order, kernel.T, rec.T, b_x, b_h, {})


def _write_keras(s: Stacked, cell) -> dict:
    bias = np.stack([s.b_x, s.b_h]) if cell == "gru-reset-after" else s.b_x
    return {"kernel": s.w_x.T.copy(), "recurrent_kernel": s.w_h.T.copy(), "bias": bias}


def _read_onnx(weights, order, cell, *, direction) -> Stacked:
    """LSTM/GRU operator inputs: W (D, G*H, I), R (D, G*H, H), B (D, 2*G*H) = [Wb, Rb], P (D, 3H) = [iof]."""
    R = _get(weights, "R", "onnx")
    h = _sizes("R", R, len(order), 3, 1)
    W = _get(weights, "W", "onnx")
    d, n = R.shape[0], len(order) * h
    _expect("R", R, (d, n, h))
    _expect("W", W, (d, n, W.shape[-1]))
    if not 0 <= direction < d:
        raise ConventionError(f"direction {direction} out of range: the weights have {d} direction(s)")
    B = _expect("B", np.asarray(weights["B"]), (d, 2 * n)) if "B" in weights else np.zeros((d, 2 * n), W.dtype)
    peep = {}
    if "P" in weights:
        P = _expect("P", np.asarray(weights["P"]), (d, 3 * h))
        peep = {g: P[direction, k * h:(k + 1) * h] for k, g in enumerate("iof")}
    return Stacked(order, W[direction], R[direction], B[direction, :n], B[direction, n:], peep)


def _write_onnx(s: Stacked, cell, *, direction) -> dict:
    out = {"W": s.w_x[None], "R": s.w_h[None], "B": np.concatenate([s.b_x, s.b_h])[None]}
    if s.peepholes:
        out["P"] = np.concatenate([s.peepholes[g] for g in "iof"])[None]
    return out


def _read_tensorflow(weights, order, cell, *, forget_bias) -> Stacked:
    """BasicLSTMCell: kernel (I+H, 4H) acting on [x, h], bias (4H,); forget_bias added to gate f."""
    kernel = _get(weights, "kernel", "tensorflow")
    h = _sizes("kernel", kernel, 4, 2, 1)
    if kernel.shape[0] <= h:
        raise ConventionError(f"'kernel' has shape {kernel.shape}: expected (input + {h}, {4 * h})")
    bias = _expect("bias", _get(weights, "bias", "tensorflow"), (4 * h,))
    b_x = bias.copy()
    b_x[order.index("f") * h:(order.index("f") + 1) * h] += forget_bias
    n_in = kernel.shape[0] - h
    return Stacked(order, kernel[:n_in].T, kernel[n_in:].T, b_x, np.zeros_like(bias), {})


def _write_tensorflow(s: Stacked, cell, *, forget_bias) -> dict:
    h = s.w_h.shape[1]
    bias = s.b_x + s.b_h
    bias[s.order.index("f") * h:(s.order.index("f") + 1) * h] -= forget_bias
    return {"kernel": np.concatenate([s.w_x.T, s.w_h.T], axis=0), "bias": bias}


# framework -> (reader, writer, options with their defaults)
LAYOUTS = {
    "pytorch": (_read_pytorch, _write_pytorch, {"layer": 0, "reverse": False}),
    "keras": (_read_keras, _write_keras, {}),
    "onnx": (_read_onnx, _write_onnx, {"direction": 0}),
    "tensorflow": (_read_tensorflow, _write_tensorflow, {"forget_bias": 1.0}),
}


def _options(framework: str, options: dict) -> dict:
    defaults = LAYOUTS[framework][2]
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        known = ", ".join(defaults) or "none"
        raise ConventionError(f"unknown {framework} option '{unknown[0]}': its options are {known}")
    return {**defaults, **options}


def to_params(framework: str, weights: dict, cell: str, **options) -> dict[str, np.ndarray]:
    """The cell's parameters (names of the generated API) from a framework's weights."""
    order = _order(framework, cell)
    read = LAYOUTS[framework][0]
    return _params_from(read(weights, order, cell, **_options(framework, options)), cell)


def from_params(framework: str, params: dict, cell: str, **options) -> dict[str, np.ndarray]:
    """A framework's weights from the cell's parameters (summed biases go to the input side)."""
    order = _order(framework, cell)
    write = LAYOUTS[framework][1]
    return write(_stacked_from(params, cell, order), cell, **_options(framework, options))


# ---- gradients in a framework's layout ---------------------------------------------------------
# The axes of a sequence each framework uses by default: t time, b batch, f features (PyTorch
# without batch_first, Keras and TensorFlow batch-major, ONNX [seq_length, batch_size, input_size]).
SEQUENCE_AXES = {"pytorch": "tbf", "keras": "btf", "onnx": "tbf", "tensorflow": "btf"}


def array_names(framework: str, cell: str, **options) -> tuple[str, ...]:
    """The keys of the framework's weights for ``cell``, in the order :func:`from_params` writes them."""
    return tuple(_linear_map(framework, cell, 1, 1, tuple(sorted(options.items())))[0])


def gradients_from(framework: str, grads: dict, cell: str, **options) -> dict[str, np.ndarray]:
    """The gradient with respect to a framework's weights from the one with respect to the cell's
    parameters (``grads``, keyed by the parameter names): the adjoint of :func:`to_params`, which is
    linear up to a constant (TensorFlow's forget_bias).  Each of two summed biases gets the bias's
    gradient."""
    keys, shapes, names, matrix = _map_for(framework, cell, grads, options)
    flat = np.concatenate([np.asarray(grads[n], dtype=np.float64).ravel() for n in names])
    return _unflatten(matrix @ flat, keys, shapes)


def params_of(framework: str, array: str, value, cell: str, like: dict, **options) -> dict[str, np.ndarray]:
    """The part of the cell's parameters that one framework array carries (the others taken as
    zero; ``like`` gives the parameters' shapes): its gate blocks, without TensorFlow's forget_bias."""
    keys, shapes, names, matrix = _map_for(framework, cell, like, options)
    k = keys.index(array)
    start = sum(int(np.prod(s)) for s in shapes[:k])
    part = np.zeros(matrix.shape[0])
    part[start:start + int(np.prod(shapes[k]))] = np.asarray(value, dtype=np.float64).reshape(shapes[k]).ravel()
    flat, out, at = part @ matrix, {}, 0
    for n in names:
        size = int(np.prod(np.shape(like[n])))
        out[n] = flat[at:at + size].reshape(np.shape(like[n]))
        at += size
    return out


def split_biases(framework: str, weights: dict, cell: str, rng: np.random.Generator, scale: float = 0.3,
                 **options) -> dict[str, np.ndarray]:
    """Weights that give the same cell parameters, with every bias the framework keeps as two summed
    arrays (PyTorch's bias_ih + bias_hh, ONNX's Wb + Rb) split at random between them."""
    hidden, input_size = _sizes_of(framework, weights, cell, options)
    keys, shapes, _, matrix = _linear_map(framework, cell, hidden, input_size, tuple(sorted(options.items())))
    noise = rng.normal(0, scale, matrix.shape[0])
    coef, *_ = np.linalg.lstsq(matrix, noise, rcond=None)
    free = _unflatten(noise - matrix @ coef, keys, shapes)  # a direction to_params does not see
    return {k: np.asarray(weights[k]) + np.where(np.abs(free[k]) > 1e-12, free[k], 0) for k in keys}


def _map_for(framework: str, cell: str, like: dict, options: dict):
    w = next(n for n, shape in _cell_params(cell).items() if shape == ("hidden", "input"))
    hidden, input_size = np.shape(like[w])
    return _linear_map(framework, cell, hidden, input_size, tuple(sorted(options.items())))


def _sizes_of(framework: str, weights: dict, cell: str, options: dict) -> tuple[int, int]:
    params = to_params(framework, weights, cell, **options)
    w = next(n for n, shape in _cell_params(cell).items() if shape == ("hidden", "input"))
    return np.shape(params[w])


@lru_cache(maxsize=64)
def _linear_map(framework: str, cell: str, hidden: int, input_size: int, options: tuple):
    """(keys, shapes, parameter names, M): ``to_params(w) = Mᵀ w + const`` on the flattened arrays."""
    opts = dict(options)
    sizes = {"hidden": hidden, "input": input_size}
    names = _cell_params(cell)
    zero = {n: np.zeros(tuple(sizes[s] for s in shape)) for n, shape in names.items()}
    base_w = from_params(framework, zero, cell, **opts)
    keys, shapes = list(base_w), [np.shape(v) for v in base_w.values()]
    base = to_params(framework, base_w, cell, **opts)
    rows = []
    for key, shape in zip(keys, shapes, strict=True):
        for idx in np.ndindex(shape):
            probe = {k: np.array(v, dtype=np.float64) for k, v in base_w.items()}
            probe[key][idx] += 1.0
            got = to_params(framework, probe, cell, **opts)
            rows.append(np.concatenate([(got[n] - base[n]).ravel() for n in names]))
    return keys, shapes, tuple(names), np.array(rows)


def _unflatten(flat: np.ndarray, keys: list, shapes: list) -> dict[str, np.ndarray]:
    out, at = {}, 0
    for key, shape in zip(keys, shapes, strict=True):
        size = int(np.prod(shape))
        out[key] = flat[at:at + size].reshape(shape)
        at += size
    return out
