"""The PyTorch emitter: a cell's plan printed on whole-sequence tensors into ``codegen/torch/module.py.j2``
(Plan → the text of ``<cell>_torch.py``).

The slots, passes and products are the NumPy emitter's (:func:`..numpy.emit.module_data`), printed with
the PyTorch printer and no ``out=`` (a value kept in a tensor is written into it by index).  The rest is
data for the template, which holds everything the same for every cell (the ``autograd.Function``'s
frame, the ``nn.Module``'s layer and direction loop, states, the ``nn.LSTM``/``nn.GRU`` state dicts):
the class name, which vector parameters are biases, and for a cell PyTorch has a layout for, where each
parameter lives in PyTorch's stacked arrays (read from :mod:`...interop.conventions`).
"""

from __future__ import annotations

import keyword

import numpy as np
import sympy as sp

from ... import naming
from ...core.functions import MatVec
from ...interop import conventions
from ...printing.torch import torch_code
from ..kernel import Kernel, check_sizes
from ..numpy.emit import module_data
from ..render import render

TORCH_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
MODULE_NAMES = frozenset({"PARAMS", "STATES", "MODULE", "BIASES"})  # the template's public module-level names


def class_name(cell_name: str) -> str:
    """``gru-reset-after`` → ``GruResetAfter``; ``…Module`` where that would be a keyword, a built-in or
    another name of the module (``p-a-r-a-m-s``)."""
    name = "".join(part[:1].upper() + part[1:] for part in naming.module_name(cell_name).split("_") if part)
    taken = keyword.iskeyword(name) or name in naming.RESERVED or name in MODULE_NAMES
    return name + "Module" if taken else name


def biases(cell) -> list[str]:
    """The vector parameters that are biases: each is only ever a term of a sum that holds a matrix
    product (``W x + U h + b``, ``U_n h + b_hn``); a peephole (``p ⊙ c``) is not."""
    vectors = {p.symbol for p in cell.params if p.shape == ("hidden",)}
    other = {eq.rhs for eq in cell.equations} & vectors
    for eq in cell.equations:
        for node in sp.preorder_traversal(eq.rhs):
            if not (isinstance(node, sp.Add) and node.atoms(MatVec)):
                other |= set(node.args) & vectors
    return [p.name for p in cell.params if p.symbol in vectors - other]


def torch_layout(cell) -> dict[str, tuple[tuple[str, int], ...]] | None:
    """For a cell conventions maps to PyTorch: each parameter as the sum of (array, gate block) of
    ``nn.LSTM``/``nn.GRU``'s arrays, probed through :func:`conventions.to_params` (it is linear);
    None for another cell."""
    if ("pytorch", cell.name) not in conventions.GATE_ORDERS:
        return None
    gates = len(conventions.GATE_ORDERS["pytorch", cell.name])
    suffix = conventions.array_names("pytorch", cell.name)[0][len(TORCH_KEYS[0]):]  # "_l0", PyTorch's key rule
    zero = {k + suffix: np.zeros((gates, 1) if k.startswith("weight") else (gates,)) for k in TORCH_KEYS}
    found: dict[str, list[tuple[str, int]]] = {}
    for key in TORCH_KEYS:
        for block in range(gates):
            probe = {k: a.copy() for k, a in zero.items()}
            probe[key + suffix].reshape(gates, -1)[block] = 1.0
            for name, value in conventions.to_params("pytorch", probe, cell.name).items():
                if np.any(value):
                    found.setdefault(name, []).append((key, block))
    return {p.name: tuple(found[p.name]) for p in cell.params}


def torch_module(kernel: Kernel) -> str:
    """The standalone PyTorch module (autograd.Function + nn.Module) for ``kernel``'s cell."""
    check_sizes(kernel, "torch")
    cell = kernel.cell
    data = module_data(kernel, code=torch_code, code_into=lambda expr, out: None)
    gates = len(conventions.GATE_ORDERS.get(("pytorch", cell.name), ""))
    return render("codegen/torch/module.py.j2", class_name=class_name(cell.name), bias_params=tuple(biases(cell)),
                  torch_layout=torch_layout(cell), torch_gates=gates,
                  kept=[f"{s}_seq" for s in data["cached_states"]] + [f"{n}_seq" for n, _ in data["intermediates"]],
                  finals=[f"{s}_seq[{data['last_row'][s]}].clone()" for s in cell.states],
                  d_states=[f"d_state_{s}" for s in cell.states], module=naming.module_name(cell.name), **data)


def torch_files(kernel: Kernel) -> dict[str, str]:
    return {f"{naming.module_name(kernel.cell.name)}_torch.py": torch_module(kernel)}
