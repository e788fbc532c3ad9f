"""Benchmark: the Elman RNN (built-in ``rnn-tanh``) against ``torch.nn.RNN`` and the LSTM with a projection
(``lstm-proj``) against ``torch.nn.LSTM(proj_size=P)``, forward+backward, the generated NumPy and C of each —
the same sizes, weights, rounds and settling as bench/bench.py's LSTM rows.  lstm-proj's P is half the hidden
size at each size (S1 64, S2 128, S3 32): h, the output and the recurrent operand have P units, c has H.

Every implementation gets the same weights (torch through ``interop.conventions.from_params``, lstm-proj's
``weight_hr_l0`` included) and computes the gradients of every weight, the inputs and the initial state; their
d_xs are compared once before timing.  Prints a table and writes bench/results_rnn.json.

    python bench/bench_rnn.py [--cells rnn-tanh,lstm-proj] [--quick] [--sizes S1,S2] [--repeats N]
                              [--threads N] [--settle S] [--malloc fixed|adaptive] [--out FILE]
"""

from __future__ import annotations

import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import backends  # noqa: E402 - torch_run: a torch module's forward+backward

import bench  # noqa: E402 - the LSTM benchmark's problem, timing and machine description
from lstm_symbolic import naming, pipeline  # noqa: E402
from lstm_symbolic.gradcheck import load_module  # noqa: E402
from lstm_symbolic.interop.conventions import from_params  # noqa: E402


def _rnn(torch, sizes: dict, dtype):
    return torch.nn.RNN(sizes["input"], sizes["hidden"], nonlinearity="tanh", dtype=dtype)


def _lstm_proj(torch, sizes: dict, dtype):
    return torch.nn.LSTM(sizes["input"], sizes["hidden"], proj_size=sizes["proj"], dtype=dtype)


# cell: (the baseline's name, its torch module, the sizes beyond input and hidden as functions of hidden)
CELLS = {"rnn-tanh": ("torch nn.RNN", _rnn, lambda H: {}),
         "lstm-proj": ("torch nn.LSTM(proj_size)", _lstm_proj, lambda H: {"proj": H // 2})}


def torch_baseline(cell: str):
    import torch  # noqa: PLC0415

    def prepare(p: bench.Problem):
        net = CELLS[cell][1](torch, p.sizes, torch.from_numpy(p.xs).dtype)
        weights = from_params("pytorch", p.params, cell)
        net.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()})
        return backends.torch_run(net, p, batched_state=True)
    return prepare


def implementations(cell: str, tmp: Path):
    """{name: prepare(problem) -> run} for the cell, and its generated NumPy module."""
    loaded = pipeline.load_cell(cell)
    (path,) = pipeline.emit(loaded, "numpy", tmp / cell / "numpy")
    numpy_module = load_module(path, f"_bench_{naming.module_name(cell)}")
    files = pipeline.emit(loaded, "c", tmp / cell / "c")
    binding = next(f for f in files if f.name == f"{naming.module_name(cell)}_c.py")
    impls = {"generated NumPy": bench.generated(numpy_module),
             "generated C": bench.generated(load_module(binding, f"_bench_{naming.module_name(cell)}_c")),
             CELLS[cell][0]: torch_baseline(cell)}
    return impls, numpy_module


def run_cell(cell: str, args, tmp: Path) -> list[dict]:
    rows, baseline = [], CELLS[cell][0]
    impls, module = implementations(cell, tmp)
    for size in args.sizes:
        T, B, I, H = bench.SIZES[size]
        for dtype in bench.DTYPES:
            problem = bench.Problem(module, T, B, I, H, dtype, **CELLS[cell][2](H))
            runs = {name: prep(problem) for name, prep in impls.items()}
            diffs = bench.agree(runs, baseline)
            medians = bench.measure(runs, args.repeats, args.settle)
            for name, ms in medians.items():
                rows.append({"cell": cell, "size": size, "shape": list(bench.SIZES[size]), "sizes": problem.sizes,
                             "dtype": np.dtype(dtype).name, "impl": name, "baseline": baseline, "median_ms": ms,
                             "ratio_vs_torch": ms / medians[baseline], "rel_diff_d_xs": diffs[name]})
            print(f"done: {cell} {size} {np.dtype(dtype).name}", file=sys.stderr)
    return rows


def table(rows: list[dict], repeats: int, info: dict) -> str:
    lines = [f"machine: {info['nproc']} cores, {info['cpu']}, Python {info['python']}, NumPy {info['numpy']}, "
             f"torch {info['torch']}, threads {info['threads']}, malloc {info['malloc']}",
             f"median of {repeats} interleaved rounds (settle {info['settle_s']} s + one untimed call before each "
             "timed one), ms per forward+backward (all gradients); lstm-proj: proj = hidden / 2", "",
             "| cell | size | (T, B, in, hid) | dtype | implementation | ms | × torch | max rel diff d_xs |",
             "|---|---|---|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['cell']} | {r['size']} | {tuple(r['shape'])} | {r['dtype']} | {r['impl']} | "
                     f"{r['median_ms']:.3f} | {r['ratio_vs_torch']:.2f} | {r['rel_diff_d_xs']:.0e} |")
    return "\n".join(lines)


def _cells_option(parser) -> None:
    parser.add_argument("--cells", default=",".join(CELLS), type=lambda s: s.split(","),
                        help="comma-separated subset of " + ",".join(CELLS))


def main(argv=None) -> int:
    args = bench.parse(argv if argv is not None else sys.argv[1:], __doc__, _cells_option)
    unknown = [c for c in args.cells if c not in CELLS]
    if unknown:
        raise SystemExit(f"unknown cell {unknown[0]}: use {', '.join(CELLS)}")
    if args.out == str(bench.ROOT / "bench" / "results.json"):
        args.out = str(bench.ROOT / "bench" / "results_rnn.json")
    if args.threads:
        bench.limit_threads(args.threads)
    # torch says so once per process: nn.LSTM(proj_size) runs its default kernels, not oneDNN's (docs/benchmarks.md)
    warnings.filterwarnings("ignore", "LSTM with projections is not supported with oneDNN")
    malloc = bench.fix_malloc() if args.malloc == "fixed" else "adaptive (glibc's default)"
    with tempfile.TemporaryDirectory() as tmp:
        rows = [row for cell in args.cells for row in run_cell(cell, args, Path(tmp))]
    info = {**bench.machine(), "settle_s": args.settle, "malloc": malloc}
    print(table(rows, args.repeats, info))
    out = {"cells": args.cells, "proj": "hidden // 2", "machine": info, "repeats": args.repeats,
           "settle_s": args.settle, "rows": rows}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
