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

import functools
import keyword
import re

import numpy as np
import sympy as sp

from ... import naming
from ...core.functions import MatVec
from ...interop import conventions
from ...printing.torch import torch_code, torch_code_into
from ..kernel import Assign, Kernel
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


def fused(lines: list[str]) -> list[str]:
    """``p = a @ w.T`` followed by ``p += q`` (a whole product, the input's projection added) as one
    ``p = torch.addmm(q, a, w.T)``: one kernel a step instead of two."""
    out: list[str] = []
    for line in lines:
        name, _, added = line.partition(" += ")
        if added and out and out[-1].startswith(f"{name} = ") and " @ " in out[-1]:
            left, right = out[-1][len(name) + 3:].split(" @ ")
            out[-1] = f"{name} = torch.addmm({added}, {left}, {right})"
        else:
            out.append(line)
    return out


# a row of a sequence array at step t: x_seq[t + 1], d_lin_x[t, :, H:2 * H]
_STEP_ROW = re.compile(r"(\w+)\[t( \+ 1)?(, :, [^\]]+)?\]")
_NAME = re.compile(r"(?<![\w.])[A-Za-z_]\w*")
_STEP_SUM = re.compile(r"(d_\w+) \+= \((.*)\)\.sum\(axis=0\)")


def _whole(row: re.Match) -> str:
    """The rows of every step of an array read at step t: ``c_seq[t + 1]`` → ``c_seq[1:]``."""
    array, shifted, cols = row.groups()
    return f"{array}[{'1:' if shifted else ':T'}{cols or ''}]"


def hoisted_sums(lines: list[str], params: list[str]) -> tuple[list[str], list[str]]:
    """A vector gradient summed each step from sequence arrays (``d_p += (c_prev*d_z).sum(axis=0)``) summed
    once after the loop over every step instead ((lines of the loop, lines after it)): three kernels a
    step fewer.  Kept in the loop when it reads a value of the step that is no array's row."""
    rows: dict[str, str] = {}
    loop, after = [], []
    for line in lines:
        name, _, rhs = line.partition(" = ")
        target = re.search(r"(?:out|grad_input)=(.*)\)$", rhs) if rhs else None
        if rhs and (row := _STEP_ROW.fullmatch(target.group(1) if target else rhs)):
            rows[name] = _whole(row)
        summed = _STEP_SUM.fullmatch(line)
        names = set(_NAME.findall(summed.group(2))) if summed else set()
        if summed and names <= set(rows) | set(params) | {"torch"}:
            whole = _NAME.sub(lambda m: rows.get(m.group(0), m.group(0)), summed.group(2))
            after.append(f"{summed.group(1)} += ({whole}).sum(dim=(0, 1))")
        else:
            loop.append(line)
    return loop, after


_NP_ZEROS = re.compile(r"np\.zeros\((\(B, \w+\)), dtype=dtype\)")


def torch_zeros(lines: list[str]) -> list[str]:
    """A gradient that is zeros of a state not of the hidden size, as the NumPy emitter prints it
    (``np.zeros((B, _n_proj), dtype=dtype)``), made like d_hs: ``d_hs.new_zeros((B, _n_proj))``."""
    return [_NP_ZEROS.sub(r"d_hs.new_zeros(\1)", line) for line in lines]


_ROW_AT = re.compile(r"(?<![\w.])(\w+)\[(t(?: \+ 1)?)(, :, [^\]]+)?\]")
_STACKED = re.compile(r"stacked\[\"(\w+)\"\](\.T)?")


def hoisted_views(lines: list[str]) -> tuple[list[str], list[str]]:
    """The loop's lines reading each step's rows and stacked weights from tuples and locals made once
    before it ((lines of the loop, lines before it)): ``c_seq[t + 1]`` is ``_rows0[t + 1]`` with
    ``_rows0 = c_seq.unbind(0)``, a tuple index instead of a tensor view per read and step.  A row
    written with ``x[t] = ...``, and an array the loop assigns, stay as they are."""
    assigned = {line.partition(" = ")[0] for line in lines}
    setup: list[str] = []
    made: dict[str, str] = {}

    def local(key: str, value: str, prefix: str) -> str:
        if key not in made:
            made[key] = f"_{prefix}{len(made)}"
            setup.append(f"{made[key]} = {value}")
        return made[key]

    def row(m: re.Match) -> str:
        array, t, cols = m.groups()
        if array in assigned:
            return m.group(0)
        whole = f"{array}[:{cols}]" if cols else array
        return f"{local(whole, whole + '.unbind(0)', 'rows')}[{t}]"

    out = []
    for line in lines:
        target, eq, rhs = line.partition(" = ")
        if eq and _ROW_AT.fullmatch(target):  # a row written by index: the array itself
            out.append(f"{target} = {_ROW_AT.sub(row, rhs)}")
        else:
            out.append(_ROW_AT.sub(row, line))
    out = [_STACKED.sub(lambda m: local(m.group(0), m.group(0), "w"), line) for line in out]
    return out, setup


def numbers(kernel: Kernel) -> frozenset:
    """The step's symbols that hold a number, not a tensor (``_t2 = H**(-1.0)``: of no symbol but sizes)."""
    found: set = set()
    for a in (*kernel.forward, *kernel.backward):
        if isinstance(a, Assign) and not a.rhs.free_symbols - found:
            found.add(a.lhs)
    return frozenset(found)


def torch_module(kernel: Kernel) -> str:
    """The standalone PyTorch module (autograd.Function + nn.Module) for ``kernel``'s cell."""
    cell, scalars = kernel.cell, numbers(kernel)
    data = module_data(kernel, code=functools.partial(torch_code, numbers=scalars),
                       code_into=functools.partial(torch_code_into, numbers=scalars))
    data["forward_lines"] = fused(data["forward_lines"])
    data["backward_lines"], after = hoisted_sums(torch_zeros(data["backward_lines"]), data["backward_params"])
    data["forward_lines"], forward_setup = hoisted_views(data["forward_lines"])
    data["backward_lines"], backward_setup = hoisted_views(data["backward_lines"])
    return render("codegen/torch/module.py.j2", class_name=class_name(cell.name), bias_params=tuple(biases(cell)),
                  torch_layout=torch_layout(cell), torch_blocks=torch_blocks(cell),
                  kept=[f"{s}_seq" for s in data["cached_states"]] + [f"{n}_seq" for n, _ in data["intermediates"]],
                  finals=[f"{s}_seq[{data['last_row'][s]}].clone()" for s in cell.states],
                  d_states=[f"d_state_{s}" for s in cell.states], module=naming.module_name(cell.name),
                  after_loop=after, forward_setup=forward_setup, backward_setup=backward_setup,
                  size_lines=[f'{size_name(s)} = params["{p}"].shape[{k}]' for s, (p, k) in size_sources(cell).items()],
                  **data)


def torch_files(kernel: Kernel) -> dict[str, str]:
    return {f"{naming.module_name(kernel.cell.name)}_torch.py": torch_module(kernel)}
