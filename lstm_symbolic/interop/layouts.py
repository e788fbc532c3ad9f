"""The frameworks' weight layouts as data and code (beside the pipeline; NumPy only).

Each layout has a reader, which takes the framework's arrays into one neutral form,
:class:`Stacked` (the input weights and recurrent weights with the gates stacked row-wise in
the framework's order, each block acting as ``W @ v``; an input-side and a recurrent-side bias;
peepholes), and a writer, which goes back.  A reader only selects, transposes and adds
constants, so its writer is also the adjoint of its linear part: :mod:`.conventions` uses the
writers for parameters and for gradients alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError


class ConventionError(UserError, ValueError):
    """Weights that do not fit the framework's layout, or a layout this module does not know."""


# (framework, cell) -> the framework's gate order, in the cell's gate names (the gate "" is a cell's
# only block, whose parameters have no suffix: W, U, b).
GATE_ORDERS: dict[tuple[str, str], str | tuple[str, ...]] = {
    ("pytorch", "lstm"): "ifco",  # torch: i, f, g, o
    ("pytorch", "lstm-proj"): "ifco",  # nn.LSTM(proj_size=P): weight_hh (4H, P), weight_hr (P, H) is W_hr
    ("pytorch", "gru-reset-after"): "rzn",  # nn.GRU is the reset-after GRU
    ("pytorch", "rnn-tanh"): ("",),  # nn.RNN: one block, parameters W, U, b (no gate suffix)
    ("pytorch", "rnn-relu"): ("",),  # nn.RNN(nonlinearity="relu")
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

    order: str | tuple[str, ...]
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
    bias = s.b_x.copy()  # one bias: the recurrent side is not written
    bias[s.order.index("f") * h:(s.order.index("f") + 1) * h] -= forget_bias
    return {"kernel": np.concatenate([s.w_x.T, s.w_h.T], axis=0), "bias": bias}


# framework -> (reader, writer, options with their defaults)
LAYOUTS = {
    "pytorch": (_read_pytorch, _write_pytorch, {"layer": 0, "reverse": False}),
    "keras": (_read_keras, _write_keras, {}),
    "onnx": (_read_onnx, _write_onnx, {"direction": 0}),
    "tensorflow": (_read_tensorflow, _write_tensorflow, {"forget_bias": 1.0}),
}

# The axes of a sequence each framework uses by default: t time, b batch, f features (PyTorch
# without batch_first, Keras and TensorFlow batch-major, ONNX [seq_length, batch_size, input_size]).
SEQUENCE_AXES = {"pytorch": "tbf", "keras": "btf", "onnx": "tbf", "tensorflow": "btf"}

# Options that only add a constant to a parameter (TensorFlow's forget_bias): gradients do not see them.
CONSTANT_OPTIONS = ("forget_bias",)
