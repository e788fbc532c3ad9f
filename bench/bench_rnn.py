"""Benchmark: the Elman RNN (built-in ``rnn-tanh``) forward+backward, the generated NumPy and C against
``torch.nn.RNN`` — the same sizes, weights, rounds and settling as bench/bench.py's LSTM rows.

Every implementation gets the same weights (torch through ``interop.conventions.from_params``) and computes
the gradients of every weight, the inputs and the initial state; their d_xs are compared once before timing.
Prints a table and writes bench/results_rnn.json.

    python bench/bench_rnn.py [--quick] [--sizes S1,S2] [--repeats N] [--threads N] [--settle S]
                              [--malloc fixed|adaptive] [--out FILE]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402 - the LSTM benchmark's problem, timing and machine description
from lstm_symbolic import naming, pipeline  # noqa: E402
from lstm_symbolic.gradcheck import load_module  # noqa: E402
from lstm_symbolic.interop.conventions import from_params  # noqa: E402

CELL, BASELINE = "rnn-tanh", "torch nn.RNN"


def torch_rnn():
    import torch  # noqa: PLC0415

    def prepare(p: bench.Problem):
        T, B, I = p.xs.shape
        H = p.d_hs.shape[2]
        net = torch.nn.RNN(I, H, nonlinearity="tanh", dtype=torch.float64 if p.xs.dtype == np.float64
                           else torch.float32)
        with torch.no_grad():
            for key, value in from_params("pytorch", p.params, CELL).items():
                getattr(net, key).copy_(torch.from_numpy(np.ascontiguousarray(value)))
        xs = torch.from_numpy(p.xs).requires_grad_()
        h0 = torch.from_numpy(p.state0["h"][None]).requires_grad_()
        d_hs = torch.from_numpy(p.d_hs)

        def run():
            for t in (xs, h0, *net.parameters()):
                t.grad = None
            out, _ = net(xs, h0)
            out.backward(d_hs)
            return xs.grad.numpy()
        return run
    return prepare


def implementations(tmp: Path):
    cell = pipeline.load_cell(CELL)
    (path,) = pipeline.emit(cell, "numpy", tmp / "numpy")
    numpy_module = load_module(path)
    files = pipeline.emit(cell, "c", tmp / "c")
    binding = next(f for f in files if f.name == f"{naming.module_name(CELL)}_c.py")
    impls = {"generated NumPy": bench.generated(numpy_module), "generated C": bench.generated(load_module(binding)),
             BASELINE: torch_rnn()}
    return impls, numpy_module


def agree(runs: dict) -> dict[str, float]:
    results = {name: np.asarray(run(), dtype=np.float64) for name, run in runs.items()}
    ref = results[BASELINE]
    return {name: float(np.max(np.abs(r - ref)) / np.max(np.abs(ref))) for name, r in results.items()}


def table(rows: list[dict], repeats: int, info: dict) -> str:
    lines = [f"machine: {info['nproc']} cores, {info['cpu']}, Python {info['python']}, NumPy {info['numpy']}, "
             f"torch {info['torch']}, threads {info['threads']}, malloc {info['malloc']}",
             f"cell {CELL}: median of {repeats} interleaved rounds (settle {info['settle_s']} s + one untimed call "
             "before each timed one), ms per forward+backward (all gradients)", "",
             "| size | (T, B, in, hid) | dtype | implementation | ms | × torch | max rel diff d_xs |",
             "|---|---|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['size']} | {tuple(r['shape'])} | {r['dtype']} | {r['impl']} | {r['median_ms']:.3f} | "
                     f"{r['ratio_vs_torch']:.2f} | {r['rel_diff_d_xs']:.0e} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = bench.parse(argv if argv is not None else sys.argv[1:])
    if args.out == str(bench.ROOT / "bench" / "results.json"):
        args.out = str(bench.ROOT / "bench" / "results_rnn.json")
    if args.threads:
        bench.limit_threads(args.threads)
    malloc = bench.fix_malloc() if args.malloc == "fixed" else "adaptive (glibc's default)"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        impls, module = implementations(Path(tmp))
        for size in args.sizes:
            for dtype in bench.DTYPES:
                problem = bench.Problem(module, *bench.SIZES[size], dtype)
                runs = {name: prep(problem) for name, prep in impls.items()}
                diffs = agree(runs)
                for name, ms in bench.measure(runs, args.repeats, args.settle).items():
                    rows.append({"size": size, "shape": list(bench.SIZES[size]), "dtype": np.dtype(dtype).name,
                                 "impl": name, "median_ms": ms, "rel_diff_d_xs": diffs[name]})
    ref = {(r["size"], r["dtype"]): r["median_ms"] for r in rows if r["impl"] == BASELINE}
    for r in rows:
        r["ratio_vs_torch"] = r["median_ms"] / ref[(r["size"], r["dtype"])]
    info = {**bench.machine(), "settle_s": args.settle, "malloc": malloc}
    print(table(rows, args.repeats, info))
    out = {"cell": CELL, "machine": info, "repeats": args.repeats, "settle_s": args.settle, "rows": rows}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
