"""Framework weight layouts ↔ a built-in cell's parameters, and their gradients (beside the
pipeline; NumPy only).

Every supported layout (:mod:`.layouts`) is first read into one neutral form, :class:`Stacked`.
From there the cell's parameters follow one rule: ``W_g``, ``U_g`` are blocks; ``b_g`` is the
sum of the two biases, except for a cell with a separate ``b_h<g>`` (gru-reset-after's
``b_hn``), which keeps the recurrent bias of gate g apart.

Going back cannot recover how a framework split a summed bias: :func:`from_params` puts the
whole bias on the input side (PyTorch ``bias_ih``, ONNX ``Wb``) and zeros on the recurrent side.
That is right for parameters and wrong for gradients: :func:`grads_to_framework` gives each of
the two summed arrays the gradient of the sum, as the framework's own autograd does.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..spec.builtins import load_cell
from .layouts import CONSTANT_OPTIONS, FRAMEWORKS, GATE_ORDERS, LAYOUTS, SEQUENCE_AXES, ConventionError, Stacked

__all__ = ["FRAMEWORKS", "GATE_ORDERS", "SEQUENCE_AXES", "ConventionError", "Stacked", "array_names",
           "from_params", "grads_from_framework", "grads_to_framework", "params_of", "split_biases", "to_params"]


def _cell_params(cell: str) -> dict[str, tuple[str, ...]]:
    return {p.name: p.shape for p in load_cell(cell, specs=False).params}


def _order(framework: str, cell: str) -> str:
    if framework not in FRAMEWORKS:
        raise ConventionError(f"unknown framework '{framework}': use one of {', '.join(FRAMEWORKS)}")
    if (framework, cell) not in GATE_ORDERS:
        cells = ", ".join(c for f, c in GATE_ORDERS if f == framework)
        raise ConventionError(f"no {framework} layout for cell '{cell}': {framework} maps to {cells}")
    return GATE_ORDERS[framework, cell]


def _name(prefix: str, gate: str) -> str:
    """A gate's parameter: ``W_f`` for gate f, plain ``W`` for a cell's only block (gate "")."""
    return f"{prefix}_{gate}" if gate else prefix


def _params_from(s: Stacked, cell: str) -> dict[str, np.ndarray]:
    names = _cell_params(cell)
    params = {}
    for g in s.order:
        params[_name("W", g)] = s.block(s.w_x, g)
        params[_name("U", g)] = s.block(s.w_h, g)
        split = g and f"b_h{g}" in names
        params[_name("b", g)] = s.block(s.b_x, g) if split else s.block(s.b_x, g) + s.block(s.b_h, g)
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
        params.setdefault(name, np.zeros(params[_name("b", s.order[0])].shape, params[_name("W", s.order[0])].dtype))
    return {name: params[name] for name in names}


def _stacked_from(params: dict, cell: str, order: str, *, both: bool = False) -> Stacked:
    """``both``: a summed bias b_g on both sides (its gradient), else on the input side only."""
    names = _cell_params(cell)
    _check_params(params, names)
    rows = lambda prefix: np.concatenate([np.asarray(params[_name(prefix, g)]) for g in order])  # noqa: E731
    b_h = np.concatenate([np.asarray(params[f"b_h{g}"]) if g and f"b_h{g}" in names
                          else np.asarray(params[_name("b", g)]) if both
                          else np.zeros_like(params[_name("b", g)]) for g in order])
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
    """A framework's weights from the cell's parameters (summed biases go to the input side).

    For parameters only: gradients go to a framework's layout with :func:`grads_to_framework`
    (here ``bias_hh`` would get no gradient)."""
    order = _order(framework, cell)
    write = LAYOUTS[framework][1]
    return write(_stacked_from(params, cell, order), cell, **_options(framework, options))


# ---- gradients in a framework's layout ---------------------------------------------------------
def grads_to_framework(framework: str, grads: dict, cell: str, **options) -> dict[str, np.ndarray]:
    """The gradient with respect to a framework's weights from the one with respect to the cell's
    parameters (``grads``, keyed by the parameter names), with the keys and shapes of
    :func:`from_params`: the adjoint of :func:`to_params`.  Each of two summed biases (PyTorch's
    bias_ih and bias_hh, ONNX's Wb and Rb, a reset-after Keras GRU's two bias rows) receives the
    gradient of the sum, so the result is the framework's own ``.grad``."""
    order = _order(framework, cell)
    write = LAYOUTS[framework][1]
    return write(_stacked_from(grads, cell, order, both=True), cell, **_linear_options(framework, options))


def grads_from_framework(framework: str, framework_grads: dict, cell: str, **options) -> dict[str, np.ndarray]:
    """The gradient with respect to the cell's parameters from one in a framework's layout (say the
    ``.grad`` of an ``nn.LSTM``'s parameters): the reverse of :func:`grads_to_framework`.  A bias
    that two summed arrays carry gets their mean: each holds the gradient of the sum."""
    _order(framework, cell)
    opts = _linear_options(framework, options)
    summed = to_params(framework, framework_grads, cell, **opts)
    neutral = _linear_options(framework, {})  # D = 1, layer 0: where grads_to_framework writes
    ones = grads_to_framework(framework, {n: np.ones_like(v) for n, v in summed.items()}, cell, **neutral)
    counts = to_params(framework, ones, cell, **neutral)
    return {n: summed[n] / counts[n] for n in summed}


def _linear_options(framework: str, options: dict) -> dict:
    """The options with those that only add a constant (TensorFlow's forget_bias) at zero."""
    return {k: 0.0 if k in CONSTANT_OPTIONS else v for k, v in _options(framework, options).items()}


def array_names(framework: str, cell: str, **options) -> tuple[str, ...]:
    """The keys of the framework's weights for ``cell``, in the order :func:`from_params` writes them."""
    ones = tuple(sorted({(size, 1) for shape in _cell_params(cell).values() for size in shape}))
    return tuple(_linear_map(framework, cell, ones, tuple(sorted(options.items())))[0])


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
    sizes = _sizes(to_params(framework, weights, cell, **options), cell)
    keys, shapes, _, matrix = _linear_map(framework, cell, sizes, tuple(sorted(options.items())))
    noise = rng.normal(0, scale, matrix.shape[0])
    coef, *_ = np.linalg.lstsq(matrix, noise, rcond=None)
    free = _unflatten(noise - matrix @ coef, keys, shapes)  # a direction to_params does not see
    return {k: np.asarray(weights[k]) + np.where(np.abs(free[k]) > 1e-12, free[k], 0) for k in keys}


def _map_for(framework: str, cell: str, like: dict, options: dict):
    return _linear_map(framework, cell, _sizes(like, cell), tuple(sorted(options.items())))


def _sizes(params: dict, cell: str) -> tuple[tuple[str, int], ...]:
    """The cell's sizes ((name, value), …: hidden, input, proj, …) read off its parameters' shapes."""
    found = {}
    for name, shape in _cell_params(cell).items():
        found.update(zip(shape, np.shape(params[name]), strict=True))
    return tuple(sorted(found.items()))


@lru_cache(maxsize=64)
def _linear_map(framework: str, cell: str, sizes: tuple, options: tuple):
    """(keys, shapes, parameter names, M): ``to_params(w) = Mᵀ w + const`` on the flattened arrays."""
    opts, sizes = dict(options), dict(sizes)
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
