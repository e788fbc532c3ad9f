"""Planted-mistake variants of the right values: what a wrong gradient matches names the mistake.

Part of ``verify-code``'s diagnoses.  Each :class:`Mutant` is the step's right values recomputed
with one classic slip made on purpose: an activation's derivative written for the wrong function
(σ′ where tanh′ belongs and back), the activation itself used for its derivative, the derivative
left out, a weight gradient taken with the wrong operand (``c_prev`` where ``h_prev`` belongs), or
two gates' gradients exchanged.
A user's value that equals a mutant's is described by the mutant's sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from .. import naming
from ..core.derive import Derivation, stored_values
from ..core.functions import sigmoid, tanh
from .eval import state_values

_SIGMOID = "σ′ = y(1 − y)"
_TANH = "tanh′ = 1 − y²"


@dataclass(frozen=True)
class Mutant:
    sentence: str
    values: dict  # internal name → value, as :func:`verify_eval.state_values` gives


def activation_mutants(derivation: Derivation, leaves: dict, values: dict) -> list[Mutant]:
    """For each stored activation y = act(z): d_z recomputed with the wrong derivative."""
    forward = {k: v for k, v in values.items() if not naming.is_adjoint(k)}
    found = []
    for call, stored in stored_values(derivation.cell).items():
        z, y = str(call.args[0]), stored.name
        if f"d_{y}" not in values or f"d_{z}" not in values:
            continue
        dy, yv = values[f"d_{y}"], values[y]
        if call.func == sigmoid:
            twice = 1 / (1 + np.exp(-yv))
            right, slips = _SIGMOID, [(_TANH, 1 - yv**2), ("σ(z) itself", yv), ("nothing (1)", 1.0),
                                      (f"σ(y)(1 − σ(y)) (σ applied again to {y}, already σ)", twice * (1 - twice))]
        elif call.func in (tanh, sp.tanh):
            right, slips = _TANH, [(_SIGMOID, yv * (1 - yv)), ("tanh(z) itself", yv), ("nothing (1)", 1.0),
                                   (f"1 − tanh²(y) (tanh applied again to {y}, already tanh)", 1 - np.tanh(yv) ** 2)]
        else:
            continue
        for wrong, factor in slips:
            mutated = state_values(derivation, {**leaves, **forward, f"d_{z}": dy * factor}, exact=False)
            found.append(Mutant(f"{y} = {call.func.__name__}({z}): d_{z} multiplies by {wrong} where "
                                f"{right} belongs", mutated))
    return found


def swap_mutants(derivation: Derivation, leaves: dict, values: dict) -> list[Mutant]:
    """For each two gates: their pre-activation gradients d_z exchanged (gate blocks stacked in
    another order than the forward's), which moves every gradient computed from them."""
    forward = {k: v for k, v in values.items() if not naming.is_adjoint(k)}
    pres = [str(call.args[0]) for call in stored_values(derivation.cell)]
    pres = [z for z in pres if f"d_{z}" in values and z.startswith("z_")]
    found = []
    for k, a in enumerate(pres):
        for b in pres[k + 1:]:
            if np.shape(values[f"d_{a}"]) != np.shape(values[f"d_{b}"]):
                continue
            swapped = {f"d_{a}": values[f"d_{b}"], f"d_{b}": values[f"d_{a}"]}
            mutated = state_values(derivation, {**leaves, **forward, **swapped}, exact=False)
            found.append(Mutant(f"the gradients of gates {a[2:]} and {b[2:]} are swapped (d_{a} where d_{b} "
                                "belongs, and back)", mutated))
    return found


def operand_mutants(derivation: Derivation, values: dict) -> list[Mutant]:
    """For the weight gradients d_W = d_z @ v.T of one operand v: the same with another vector of v's
    size in every one of them (a slip is made once and copied to every gate)."""
    found = []
    sizes = {k: np.shape(v)[0] for k, v in values.items() if np.ndim(v) == 2 and not naming.is_adjoint(k)}
    by_operand = {}
    for linear in derivation.linears:
        weight, target = str(linear.weight), str(linear.adjoint)
        if f"d_{weight}" in values and target in values:
            by_operand.setdefault(str(linear.operand), []).append((weight, target))
    for vector, uses in by_operand.items():
        for other in _candidates(derivation, vector, sizes, values):
            mutated = dict(values)
            for weight, target in uses:
                mutated[f"d_{weight}"] = mutated[f"d_{weight}"] + values[target] @ (values[other] - values[vector]).T
            found.append(Mutant(f"the weight gradient uses {other} where {vector} belongs "
                                f"(d_W = d_z @ {vector}.T)", mutated))
    return found


def _candidates(derivation: Derivation, vector: str, sizes: dict, values: dict) -> list[str]:
    states = [f"{s}_prev" for s in derivation.cell.states] + list(derivation.cell.states)
    return [s for s in states if s != vector and s in values and sizes.get(s) == sizes.get(vector)
            and np.shape(values[s]) == np.shape(values[vector])]
