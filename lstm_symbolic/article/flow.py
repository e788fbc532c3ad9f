"""How the gradient flows back in time: ‖∂s_T/∂s_{T−k}‖ from the derived step Jacobians.

The picture an article about vanishing gradients needs.  A cell runs forward on real sequences
(random weights by default: PyTorch's uniform ±1/√hidden, inputs N(0, 1)); at every step its
derived Jacobians of the memory (``jacobian.py``: partial, the other states held fixed, and
total, through them) are evaluated on the stored forward values, and their products from the
last step back give ‖∂s_T/∂s_{T−k}‖ (spectral norm) for k = 1..T, one curve per sequence.
Only NumPy here; :func:`draw` needs matplotlib (the ``images`` extra).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import sympy as sp

from .. import naming
from ..core.cells import Cell
from ..core.components import numpy_value
from ..core.functions import Units
from ..core.jacobian import Diag, Ones, jacobian
from ..errors import UserError

KINDS = ("partial", "total")
MAX_WEIGHTS_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Flow:
    """One cell's norms: ``norms[kind]`` has shape (sequences, T), column k−1 for ∂s_T/∂s_{T−k}."""

    cell: str
    memory: str
    norms: dict[str, np.ndarray]


def random_params(cell: Cell, hidden: int, input_size: int, rng) -> dict[str, np.ndarray]:
    """Weights as PyTorch initialises them: uniform in ±1/√hidden (biases as columns)."""
    sizes = {"hidden": hidden, "input": input_size}
    bound = 1 / np.sqrt(hidden)
    params = {}
    for q in cell.params:
        shape = tuple(sizes[s] for s in q.shape) + ((1,) if len(q.shape) == 1 else ())
        params[q.name] = rng.uniform(-bound, bound, size=shape)
    return params


def load_weights(path: str, cell: Cell) -> dict[str, np.ndarray]:
    """The cell's parameters from a ``.npz`` (its parameter names as keys) or a PyTorch state
    dict (``.pt``/``.pth``, a built-in cell; read with ``weights_only``), biases as columns."""
    from ..files import read_bytes  # noqa: PLC0415

    data = read_bytes(path, MAX_WEIGHTS_BYTES, "weights file")
    try:
        if path.endswith(".npz"):
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                params = {k: archive[k] for k in archive.files}
        elif path.endswith((".pt", ".pth")):
            import torch  # noqa: PLC0415 - only for a state dict

            from ..interop.conventions import to_params  # noqa: PLC0415

            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            params = to_params("pytorch", {k: v.double().numpy() for k, v in state.items()}, cell.name)
        else:
            raise UserError(f"{path}: weights are a .npz (the cell's parameter names) or a "
                            "PyTorch state dict (.pt, .pth)")
    except UserError:
        raise
    except ImportError:
        raise UserError(f"{path}: reading a PyTorch state dict needs torch") from None
    except Exception as exc:  # a damaged or foreign file: one line
        raise UserError(f"{path}: cannot read the weights: {exc}".splitlines()[0]) from None
    want = {q.name: q.shape for q in cell.params}
    missing = sorted(set(want) - set(params))
    if missing:
        raise UserError(f"{path}: no weights for {', '.join(missing)} of the cell '{cell.name}'")
    out = {k: np.asarray(params[k], dtype=np.float64) for k in want}
    out = {k: v.reshape(-1, 1) if v.ndim == 1 else v for k, v in out.items()}
    sizes: dict[str, int] = {}
    for name, shape in want.items():
        for size, n in zip(shape, out[name].shape, strict=False):
            if sizes.setdefault(size, n) != n or out[name].ndim != 2:
                raise UserError(f"{path}: '{name}' has shape {out[name].shape}, which does not fit "
                                f"the other weights ({', '.join(f'{k}={v}' for k, v in sizes.items())})")
    return out


def forward(cell: Cell, params: dict, xs: np.ndarray) -> list[dict]:
    """Every step's values (Symbol → array, one column per sequence) for inputs ``xs`` of shape
    (T, input, sequences); each step also holds the previous step's values as ``<name>_prev``."""
    hidden = next(params[q.name].shape[0] for q in cell.params if q.shape[0] == "hidden")
    (x_name,) = [q.name for q in cell.inputs] or ["x"]
    prev = {naming.prev(s): np.zeros((hidden, xs.shape[2])) for s in cell.states}
    steps = []
    for x in xs:
        env = {sp.Symbol(k): v for k, v in params.items()}
        env.update({sp.Symbol(k): v for k, v in prev.items()})
        env[sp.Symbol(x_name)] = x
        for eq in cell.equations:
            env[eq.lhs] = numpy_value(eq.rhs, env)
        steps.append(env)
        prev = {naming.prev(eq.lhs.name): env[eq.lhs] for eq in cell.equations}
        prev.update({naming.prev(s): env[sp.Symbol(s)] for s in cell.states})
    return steps


def step_jacobians(cell: Cell, steps: list[dict], total: bool) -> np.ndarray:
    """∂s_t/∂s_{t−1} at every step but the first, shape (T−1, sequences, hidden, hidden)."""
    jac = jacobian(cell, total=total)
    out = []
    for env in steps[1:]:
        batch = env[sp.Symbol(cell.memory)].shape[1]
        hidden = env[sp.Symbol(cell.memory)].shape[0]
        env = {**env, Units(): hidden}
        acc = np.zeros((batch, hidden, hidden))
        for term in jac.terms:
            product = np.broadcast_to(np.eye(hidden), (batch, hidden, hidden)).copy()
            for factor in term.factors:  # left to right
                if isinstance(factor, Diag):
                    d = np.broadcast_to(np.asarray(numpy_value(factor.expr, env), dtype=float),
                                        (hidden, batch))
                    product = product * d.T[:, None, :]  # product @ diag(d)
                elif isinstance(factor, Ones):  # product @ (1/n) 1 1ᵀ: each row's mean in every column
                    product = np.broadcast_to(product.sum(axis=2, keepdims=True) / (hidden if factor.mean else 1),
                                              product.shape).copy()
                else:
                    product = product @ env[factor]
            acc += product
        out.append(acc)
    return np.array(out)


def norms_back(jacobians: np.ndarray) -> np.ndarray:
    """‖J_T J_{T−1} ⋯ J_{T−k+1}‖₂ for k = 1.., shape (sequences, len(jacobians))."""
    count, batch, hidden, _ = jacobians.shape
    product = np.broadcast_to(np.eye(hidden), (batch, hidden, hidden)).copy()
    out = np.zeros((batch, count))
    for k in range(count):
        product = product @ jacobians[count - 1 - k]
        out[:, k] = np.linalg.norm(product, ord=2, axis=(1, 2))
    return out


def flow(cell: Cell, *, steps: int = 50, sequences: int = 20, hidden: int = 16, input_size: int = 8,
         seed: int = 0, params: dict | None = None) -> Flow:
    """The norms of ``cell`` over ``sequences`` random sequences of ``steps`` steps."""
    if steps < 2 or sequences < 1 or hidden < 1 or input_size < 1:
        raise UserError("--steps must be at least 2, --sequences, --hidden and --input at least 1")
    rng = np.random.default_rng(seed)
    if params is None:
        params = random_params(cell, hidden, input_size, rng)
    else:
        matrices = {q.name: q.shape for q in cell.params if len(q.shape) == 2}
        input_size = next((params[k].shape[1] for k, shape in matrices.items() if shape[1] == "input"),
                          input_size)
    xs = rng.standard_normal((steps + 1, input_size, sequences))
    values = forward(cell, params, xs)
    norms = {kind: norms_back(step_jacobians(cell, values, kind == "total")) for kind in KINDS}
    return Flow(cell.name, cell.memory, norms)


def csv_text(flows: list[Flow]) -> str:
    """cell, jacobian, k, median, p10, p90, then one column per sequence."""
    lines = []
    for f in flows:
        for kind in KINDS:
            values = f.norms[kind]
            if not lines:
                lines.append("cell,jacobian,k,median,p10,p90," +
                             ",".join(f"sequence_{j + 1}" for j in range(values.shape[0])))
            for k in range(values.shape[1]):
                col = values[:, k]
                row = [np.median(col), np.percentile(col, 10), np.percentile(col, 90), *col]
                lines.append(f"{f.cell},{kind},{k + 1}," + ",".join(f"{v:.6g}" for v in row))
    return "\n".join(lines) + "\n"


def draw(flows: list[Flow], fmt: str) -> bytes:
    """The figure: median and 10–90 % band per cell, total solid, partial dashed, log scale."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError:
        raise UserError('plot needs matplotlib: pip install "lstm-symbolic[images]"') from None
    with matplotlib.rc_context({"svg.hashsalt": "lstm-symbolic", "font.family": "serif"}):
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        for n, f in enumerate(flows):
            colour = f"C{n}"
            for kind, style in (("total", "-"), ("partial", "--")):
                values = f.norms[kind]
                if kind == "partial" and np.allclose(values, f.norms["total"]):
                    continue  # the memory is the only state: one curve
                k = np.arange(1, values.shape[1] + 1)
                label = f"{f.cell}, {kind}" if not np.allclose(f.norms["partial"], f.norms["total"]) \
                    else f.cell
                ax.plot(k, np.median(values, axis=0), style, color=colour, label=label)
                ax.fill_between(k, np.percentile(values, 10, axis=0), np.percentile(values, 90, axis=0),
                                color=colour, alpha=0.15, linewidth=0)
        ax.set_yscale("log")
        ax.set_xlabel("$k$ (steps back from $T$)")
        ax.set_ylabel(r"$\|\partial s_T / \partial s_{T-k}\|_2$")
        ax.legend(fontsize="small")
        fig.tight_layout()
        out = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {"CreationDate": None} if fmt == "pdf" else {}
        try:
            fig.savefig(out, format=fmt, dpi=150, metadata=metadata)
        finally:
            plt.close(fig)
    return out.getvalue()
