"""The PyTorch emitter: a cell's plan printed on whole-sequence tensors into ``codegen/torch/module.py.j2``
(Plan → the text of ``<cell>_torch.py``).

The slots, passes and products are the NumPy emitter's (:func:`..numpy.emit.module_data`), printed in a
:class:`TorchDialect`: the PyTorch printers and PyTorch's choices, each made on the plan (which slot is
a row of a sequence array, which addend a product folds in, which values a sum reads).  The rest is
data for the template, which holds everything the same for every cell (the ``autograd.Function``'s
frame, the ``nn.Module``'s layer and direction loop, states, the ``nn.LSTM``/``nn.GRU`` state dicts):
the class name, which vector parameters are biases, and for a cell PyTorch has a layout for, where each
parameter lives in PyTorch's stacked arrays (read from :mod:`...interop.conventions`).
"""

from __future__ import annotations

import functools
import keyword

import numpy as np
import sympy as sp

from ... import naming
from ...core.functions import MatVec
from ...interop import conventions
from ...printing.torch import torch_code, torch_code_into
from ..kernel import Assign, Kernel
from ..numpy.dialect import Dialect, Row
from ..numpy.emit import module_data, size_name
from ..render import render
from ..widths import size_sources

TORCH_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
# the template's public module-level names
MODULE_NAMES = frozenset({"PARAMS", "STATES", "STATE_SIZES", "MODULE", "BIASES"})


def class_name(cell_name: str) -> str:
    """``gru-reset-after`` → ``GruResetAfter``; ``…Module`` where that would be a keyword, a built-in or
    another name of the module (``p-a-r-a-m-s``)."""
    name = "".join(part[:1].upper() + part[1:] for part in naming.module_name(cell_name).split("_") if part)
    taken = keyword.iskeyword(name) or name in naming.RESERVED or name in MODULE_NAMES
    return name + "Module" if taken else name


def biases(cell) -> list[str]:
    """The vector parameters that are biases: each is only ever a term of a sum that holds a matrix
    product (``W x + U h + b``, ``U_n h + b_hn``); a peephole (``p ⊙ c``) is not."""
    vectors = {p.symbol for p in cell.params if len(p.shape) == 1}
    other = {eq.rhs for eq in cell.equations} & vectors
    for eq in cell.equations:
        for node in sp.preorder_traversal(eq.rhs):
            if not (isinstance(node, sp.Add) and node.atoms(MatVec)):
                other |= set(node.args) & vectors
    return [p.name for p in cell.params if p.symbol in vectors - other]


def torch_blocks(cell) -> dict[str, int] | None:
    """{key: blocks} of ``nn.LSTM``/``nn.GRU``'s arrays for a cell conventions maps to PyTorch (``weight_ih``:
    one block per gate; an array beyond the four stacked ones, ``nn.LSTM(proj_size)``'s ``weight_hr``, is
    one block); None for another cell."""
    if ("pytorch", cell.name) not in conventions.GATE_ORDERS:
        return None
    gates = len(conventions.GATE_ORDERS["pytorch", cell.name])
    names = conventions.array_names("pytorch", cell.name)
    suffix = names[0][len(TORCH_KEYS[0]):]  # "_l0", PyTorch's key rule
    return {n.removesuffix(suffix): gates if n.removesuffix(suffix) in TORCH_KEYS else 1 for n in names}


def torch_layout(cell) -> dict[str, tuple[tuple[str, int], ...]] | None:
    """For a cell conventions maps to PyTorch: each parameter as the sum of (array, block) of
    ``nn.LSTM``/``nn.GRU``'s arrays, probed through :func:`conventions.to_params` (it is linear);
    None for another cell."""
    blocks = torch_blocks(cell)
    if blocks is None:
        return None
    suffix = conventions.array_names("pytorch", cell.name)[0][len(TORCH_KEYS[0]):]
    zero = {k + suffix: np.zeros((n,) if k.startswith("bias") else (n, 1)) for k, n in blocks.items()}
    found: dict[str, list[tuple[str, int]]] = {}
    for key, count in blocks.items():
        for block in range(count):
            probe = {k: a.copy() for k, a in zero.items()}
            probe[key + suffix].reshape(count, -1)[block] = 1.0
            for name, value in conventions.to_params("pytorch", probe, cell.name).items():
                if np.any(value):
                    found.setdefault(name, []).append((key, block))
    return {p.name: tuple(found[p.name]) for p in cell.params}


class TorchDialect(Dialect):
    """The PyTorch module's decisions on the plan (:class:`..numpy.dialect.Dialect`'s hooks): the torch
    printers, no ``out=`` but into a tensor's row; a step's product with its folded addend one
    ``torch.addmm`` (one kernel a step instead of two); zeros made like ``d_hs``; each row a loop reads
    from a tuple made once before it (``c_seq[t + 1]`` is ``_rows0[t + 1]``, ``_rows0 = c_seq.unbind(0)``:
    a tuple index instead of a tensor view per read and step) and each stacked weight from a local; a
    vector gradient summed from rows of sequence arrays and parameters alone summed once after the loop
    over every step (three kernels a step fewer)."""

    sums_after_loop = True

    def __init__(self, numbers: frozenset = frozenset()):
        """``numbers``: the step's symbols that hold a number, not a tensor (:func:`numbers`)."""
        self.code = functools.partial(torch_code, numbers=numbers)
        self.code_into = functools.partial(torch_code_into, numbers=numbers)
        self._tuples: dict[str, str] = {}  # an array whose rows the loop reads: the local of its tuple
        self._weights: dict[str, str] = {}  # stacked weights: their local

    def loop(self, build):
        """The loop's lines, and before them the tuples of the rows it reads and the locals of its weights."""
        self._tuples, self._weights = {}, {}
        loop = build()
        return loop, ([f"{n} = {a}.unbind(0)" for a, n in self._tuples.items()]
                      + [f"{n} = {w}" for w, n in self._weights.items()])

    def read(self, row: Row) -> str:
        return f"{self._tuples.setdefault(row.rows, f'_rows{len(self._tuples)}')}[{row.step}]"

    def weight(self, group: str, back: bool) -> str:
        text = super().weight(group, back)
        return self._weights.setdefault(text, f"_w{len(self._weights)}")

    def product(self, target: str, source: Row | str, weight: str, addend: Row | None = None) -> list[str]:
        if addend is None:
            return super().product(target, source, weight)
        added = self.read(addend)  # read first: the rows' locals are numbered as the line reads them
        source = self.read(source) if isinstance(source, Row) else source
        return [f"{target} = torch.addmm({added}, {source}, {weight})"]

    def zeros(self, size: str) -> str:
        return f"d_hs.new_zeros((B, {size}))"

    def summed(self, grad: str, every_step) -> str:
        return f"{grad} += ({self.code(every_step)}).sum(dim=(0, 1))"


def numbers(kernel: Kernel) -> frozenset:
    """The step's symbols that hold a number, not a tensor (``_t2 = H**(-1.0)``: of no symbol but sizes)."""
    found: set = set()
    for a in (*kernel.forward, *kernel.backward):
        if isinstance(a, Assign) and not a.rhs.free_symbols - found:
            found.add(a.lhs)
    return frozenset(found)


def torch_module(kernel: Kernel) -> str:
    """The standalone PyTorch module (autograd.Function + nn.Module) for ``kernel``'s cell."""
    cell = kernel.cell
    data = module_data(kernel, TorchDialect(numbers(kernel)))
    return render("codegen/torch/module.py.j2", class_name=class_name(cell.name), bias_params=tuple(biases(cell)),
                  torch_layout=torch_layout(cell), torch_blocks=torch_blocks(cell),
                  kept=[f"{s}_seq" for s in data["cached_states"]] + [f"{n}_seq" for n, _ in data["intermediates"]],
                  finals=[f"{s}_seq[{data['last_row'][s]}].clone()" for s in cell.states],
                  d_states=[f"d_state_{s}" for s in cell.states], module=naming.module_name(cell.name),
                  size_lines=[f'{size_name(s)} = params["{p}"].shape[{k}]' for s, (p, k) in size_sources(cell).items()],
                  **data)


def torch_files(kernel: Kernel) -> dict[str, str]:
    return {f"{naming.module_name(kernel.cell.name)}_torch.py": torch_module(kernel)}
