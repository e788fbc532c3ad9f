"""Values in the user's layout, and the calls of the user's functions (part of ``verify-code``).

:class:`Setup` turns the cell's values (internal names, one example per column) into the items a
:class:`~lstm_symbolic.verify.convention.Convention` names, in the user's layout: orientation, stacked and
reordered gate blocks, a sequence's axes.  :func:`build` fills an argument structure with items,
:func:`collect` reads a result structure back, :func:`call_user` calls a function in the child.
The right values: :func:`step_items` for one step, :func:`bptt` and :func:`sequence_items` for a
whole sequence (the derived step swept forward and back).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import naming
from ..core.derive import Derivation
from ..interop import conventions as frameworks
from .code import VerifyCodeError, rel_error
from .convention import Call, Convention, to_user
from .eval import state_values
from .run import ChildError

EXTRA_SIZES = {"out": 2}


@dataclass
class Setup:
    convention: Convention
    derivation: Derivation
    sizes: dict
    dtype: str = "float64"
    seed: int = 0
    steps: int = 4
    one_bias: bool = False  # give the whole bias to the first of two (a diagnosis)
    rng: np.random.Generator = field(init=False)

    def __post_init__(self):
        self.rng = np.random.default_rng(self.seed)
        cell = self.derivation.cell
        gates = {q.name.partition("_")[2] for q in cell.params if q.name[:2] in ("W_", "U_", "b_")}
        for p in self.convention.params:
            if set(p.gates) - gates:
                raise VerifyCodeError(f"convention '{self.convention.name}': parameter {p.name} has gates "
                                      f"'{p.gates}', but cell '{cell.name}' has the gates {''.join(sorted(gates))}")

    @property
    def states(self) -> tuple[str, ...]:
        return self.derivation.cell.states

    def orient(self, vector: np.ndarray) -> np.ndarray:
        """A (n, batch) vector in the convention's orientation."""
        return vector if self.convention.orientation == "columns" else vector.T

    def sequence(self, steps: list[np.ndarray]) -> np.ndarray:
        """T vectors (n, batch) as one array with the convention's axes."""
        stacked = np.stack(steps)  # t, f, b
        return np.transpose(stacked, ["tfb".index(a) for a in self.convention.sequence_layout])

    def user_params(self, values: dict, prefix: str = "") -> dict:
        """``prefix=""``: the parameters; ``"d_"``: their gradients, in the user's layout.

        Where the layout has a second bias (part ``bh``, as PyTorch's ``b_hh``), the cell's bias
        b_g is split at random into ``b`` + ``bh``; both gradients are d_b_g.  A framework's arrays
        come from :mod:`interop.conventions` (its layout, and the adjoint of it for gradients)."""
        if self.convention.framework:
            return self._framework_arrays(values, prefix)
        two = {g for p in self.convention.params if "bh" in p.parts for g in p.gates}
        out = {}
        for p in self.convention.params:
            blocks = {}
            for part in p.parts:
                for g in p.gates:
                    value = values[f"{prefix}{'b' if part == 'bh' else part}_{g}"]
                    if not prefix and part in ("b", "bh") and g in two:
                        share = self.bias_share(g, value)
                        value = share if part == "bh" else value - share
                    blocks[f"{part}_{g}"] = value
            out[f"{prefix}{p.name}"] = to_user(p, blocks)
        return out

    def _framework_arrays(self, values: dict, prefix: str) -> dict:
        fw, cell = self.convention.framework, self.derivation.cell.name
        given = {q.name: values[prefix + q.name] for q in self.derivation.cell.params}
        params = {q.name: np.ravel(given[q.name]) if len(q.shape) == 1 else np.asarray(given[q.name])
                  for q in self.derivation.cell.params}
        if prefix:
            arrays = frameworks.grads_to_framework(fw, params, cell)
        else:
            arrays = frameworks.from_params(fw, params, cell)
            if not self.one_bias:
                arrays = frameworks.split_biases(fw, arrays, cell, np.random.default_rng(self.seed * 1000 + 7))
        return {f"{prefix}{k.removesuffix('_l0')}": v for k, v in arrays.items()}

    def framework_part(self, item: str, value) -> dict:
        """The cell's parameter blocks one framework array (``d_<array>``) carries."""
        fw, cell = self.convention.framework, self.derivation.cell.name
        key = next(k for k in frameworks.array_names(fw, cell) if k.removesuffix("_l0") == item[2:])
        like = {q.name: np.zeros(tuple(self.sizes[s] for s in q.shape)) for q in self.derivation.cell.params}
        return frameworks.params_of(fw, key, value, cell, like)

    def bias_share(self, gate: str, like: np.ndarray) -> np.ndarray:
        """The part of b_gate given as the second bias (the same for every call of one check)."""
        if self.one_bias:
            return np.zeros_like(like)
        seed = self.seed * 1000 + 7 + sum(map(ord, gate))
        return np.random.default_rng(seed).normal(0, 0.3, np.shape(like))

    def extra(self) -> dict:
        rng = np.random.default_rng(self.seed + 1)
        sizes = {**self.sizes, **EXTRA_SIZES}
        return {name: rng.normal(size=tuple(sizes.get(s, s) for s in shape)) for name, shape in self.convention.extra}

    def cast(self, value):
        if isinstance(value, np.ndarray):
            return value.astype(self.dtype)
        if isinstance(value, (list, tuple)):
            return tuple(self.cast(v) for v in value)
        if isinstance(value, dict):
            return {k: self.cast(v) for k, v in value.items()}
        return value


def build(structure, items: dict, where: str):
    """A structure with every item name replaced by its value (lists become tuples)."""
    if isinstance(structure, str):
        if structure not in items:
            raise VerifyCodeError(f"{where}: unknown item '{structure}' (known: {', '.join(sorted(items))})")
        return items[structure]
    if isinstance(structure, (list, tuple)):
        return tuple(build(s, items, where) for s in structure)
    if isinstance(structure, dict):
        return {k: build(s, items, where) for k, s in structure.items()}
    raise VerifyCodeError(f"{where}: {structure!r} is not an item name, a list or a table")


def collect(structure, got, out: dict, missing: list, call: Call, suffix: str = "") -> None:
    """``out[item] = (label, value)`` for every item the result holds; absent dict keys → ``missing``.
    ``suffix`` marks the labels (`` (forward)`` for what a forward returns)."""
    if isinstance(structure, str):
        label, _, item = structure.rpartition("=")
        if structure != "_" and item != "cache":
            out[item] = ((label or item) + suffix, got)
        return
    if isinstance(structure, (list, tuple)):
        if not isinstance(got, list) or len(got) < len(structure):
            raise VerifyCodeError(f"{call.function} returned {_kind(got)}; the convention expects a tuple of "
                                  f"{len(structure)}: {_shape_text(structure)}")
        for sub, value in zip(structure, got, strict=False):
            collect(sub, value, out, missing, call, suffix)
        return
    if not isinstance(got, dict):
        raise VerifyCodeError(f"{call.function} returned {_kind(got)}; the convention expects a dict with "
                              f"{', '.join(structure)}")
    for key, sub in structure.items():
        if key in got:
            sub = f"{key}={sub}" if isinstance(sub, str) and "=" not in sub else sub
            collect(sub, got[key], out, missing, call, suffix)
        else:
            missing.append((key, sub))


def path_of(item: str, structure) -> tuple:
    """Where ``item`` sits in a result structure (indices and keys), or ``()`` for the whole result."""
    if isinstance(structure, str):
        return () if structure.rpartition("=")[2] == item else None
    pairs = structure.items() if isinstance(structure, dict) else enumerate(structure)
    for key, sub in pairs:
        found = path_of(item, sub)
        if found is not None:
            return (key, *found)
    return None


def _kind(value) -> str:
    if isinstance(value, list):
        return f"a tuple of {len(value)}"
    return getattr(value, "type_name", type(value).__name__)


def _shape_text(structure) -> str:
    if isinstance(structure, str):
        return structure.partition("=")[0]
    if isinstance(structure, dict):
        return "{" + ", ".join(structure) + "}"
    return "(" + ", ".join(_shape_text(s) for s in structure) + ")"


def call_user(child, call: Call, args: tuple, keep: str | None = None):
    try:
        return child.call(call.function, *args, keep=keep)
    except ChildError as exc:
        if exc.kind not in ("signature", "exception"):
            raise
        expected = f"{call.function}({', '.join(_shape_text(a) for a in call.args)}) -> {_shape_text(call.returns)}"
        raise VerifyCodeError(f"{exc}; the convention calls {expected}") from None


def step_items(setup: Setup, values: dict) -> dict:
    """Every item a step's structures can name, in the user's layout (internal values → user)."""
    cell = setup.derivation.cell
    items = {}
    for q in cell.quantities:
        if q.shape == ("hidden",) or q.shape == ("input",):
            if q.name in values:
                items[q.name] = setup.orient(values[q.name])
    for s, seed in setup.derivation.seeds.items():
        items[f"d_{s}"] = setup.orient(values[str(seed)])
    for a in setup.derivation.input_adjoints:
        items[str(a.name)] = setup.orient(values[str(a.name)])
    items.update(setup.user_params(values))
    items.update(setup.user_params(values, "d_"))
    items.update(setup.extra())
    return items


# -- a whole sequence -------------------------------------------------------------------------------
def bptt(setup: Setup, params: dict, xs: list, state0: dict, d_outs: list, d_last: dict,
         drop: frozenset = frozenset(), only_step: int | None = None) -> dict:
    """Forward over the steps, then back: ``{"states": {s: [..]}, "d_xs": [..], "d_<s>0", "d_<param>"}``.

    ``drop``: states whose gradient is not carried to the step before; ``only_step``: the weight
    gradients of that step alone (both: the planted time-loop bugs the diagnoses look for)."""
    d, out = setup.derivation, setup.states[0]
    states, steps = dict(state0), []
    for x in xs:
        zeros = {str(seed): np.zeros_like(states[s]) for s, seed in d.seeds.items()}
        values = state_values(d, {**params, "x": x, **{f"{s}_prev": v for s, v in states.items()}, **zeros},
                              exact=False)
        steps.append(values)
        states = {s: values[s] for s in setup.states}
    carried = {s: d_last.get(s, np.zeros_like(state0[s])) for s in setup.states}
    grads = {f"d_{p}": np.zeros_like(v) for p, v in params.items()}
    d_xs = [None] * len(xs)
    for t in reversed(range(len(xs))):
        seeds = {str(seed): carried[s] + (d_outs[t] if s == out else 0) for s, seed in d.seeds.items()}
        kept = {k: v for k, v in steps[t].items() if not naming.is_adjoint(k)}
        values = state_values(d, {**kept, **seeds}, exact=False)
        d_xs[t] = values["d_x"]
        carried = {s: values[f"d_{s}_prev"] * (s not in drop) for s in setup.states}
        if only_step is None or only_step == t:
            grads = {k: grads[k] + values[k] for k in grads}
    result = {"states": {s: [v[s] for v in steps] for s in setup.states}, "d_xs": d_xs}
    result.update({f"d_{s}0": carried_value for s, carried_value in carried.items()})
    result.update(grads)
    return result


def sequence_items(setup: Setup, params: dict, ref: dict, inputs: dict) -> dict:
    items = {"xs": setup.sequence(inputs["xs"]), f"d_{setup.states[0]}s": setup.sequence(inputs["d_outs"])}
    for s in setup.states:
        items[f"{s}0"] = setup.orient(inputs["state0"][s])
        items[f"d_{s}_last"] = setup.orient(inputs["d_last"].get(s, np.zeros_like(inputs["state0"][s])))
        items[f"{s}s"] = setup.sequence(ref["states"][s])
        items[f"{s}_last"] = setup.orient(ref["states"][s][-1])
        items[f"d_{s}0"] = setup.orient(ref[f"d_{s}0"])
    items["d_xs"] = setup.sequence(ref["d_xs"])
    items.update(setup.user_params(params))
    items.update(setup.user_params(ref, "d_"))
    items.update(setup.extra())
    return items


def names_in(structure) -> set[str]:
    if isinstance(structure, str):
        return {structure}
    values = structure.values() if isinstance(structure, dict) else structure
    return set().union(*(names_in(s) for s in values)) if values else set()


def close(got, want, rtol) -> bool:
    err = rel_error(got, want)
    return err is not None and err <= rtol
