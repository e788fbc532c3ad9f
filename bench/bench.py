"""Benchmark: LSTM forward+backward (full gradients) of every implementation, side by side.

Implementations: the generated NumPy module, the generated C through its binding
``lstm_c.py`` (when ``pipeline.LANGUAGES`` has "c"), ``torch.nn.LSTM``, the hand-written
NumPy BPTT of ``bench/hand_numpy.py``, and JAX (``lax.scan`` + ``grad``, jitted) when it
is importable.  Every implementation gets the same weights and computes the gradients of
every weight, the inputs and the initial state; their d_xs are compared once before timing.

Each (size, dtype) is measured interleaved: after a warm-up, every round runs each
implementation once, and the median of the rounds is reported, so that the ratios against
torch are measured under the same machine load.  Before its timed call in a round, an
implementation waits ``--settle`` seconds (default 0.2) and makes one untimed call: a BLAS or
OpenMP thread pool keeps its threads spinning for a while after a call (OpenBLAS for up to ~0.1 s),
and with the pools of four libraries in one process those threads would take the cores from the
next implementation, which no user running one of them sees; the untimed call then wakes the
implementation's own threads and caches, as in a training loop that calls it again and again.
glibc's malloc thresholds are fixed for the run (``--malloc``, see ``fix_malloc``), so that no
implementation's speed depends on which ran before it in the process.  Also times whole
`lstm-symbolic` processes (`emit lstm` per language, `generate`).  Prints a table
and writes bench/results.json.

    python bench/bench.py [--quick] [--sizes S1,S2] [--repeats N] [--threads N] [--settle S]
                          [--malloc fixed|adaptive] [--out FILE]

``--threads N`` pins OpenBLAS, OpenMP (the generated C) and torch to N threads (default: their own
choice); JAX does not follow it.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "bench"))

from lstm_symbolic import naming, pipeline  # noqa: E402
from lstm_symbolic.gradcheck import load_module  # noqa: E402

SIZES = {  # name: (T, B, input, hidden)
    "S1": (50, 32, 64, 128),
    "S2": (100, 64, 128, 256),
    "S3": (20, 1, 32, 64),
}
DTYPES = (np.float64, np.float32)
BASELINE, HAND = "torch nn.LSTM", "hand NumPy"
GATES_TORCH = ("i", "f", "c", "o")  # torch's row blocks i, f, g (our c), o


def packed(params: dict) -> dict:
    """The same arrays as views of one buffer, in order, as the C binding's init_params lays them out:
    each implementation gets its weights in its own layout before timing (torch its stacked
    weight_ih/weight_hh, the generated C adjacent arrays it uses as stacked matrices without a copy)."""
    flat = np.concatenate([a.ravel() for a in params.values()])
    out, start = {}, 0
    for name, a in params.items():
        out[name] = flat[start:start + a.size].reshape(a.shape)
        start += a.size
    return out


class Problem:
    """Weights, inputs, initial state and output gradients shared by every implementation."""

    def __init__(self, module, T, B, I, H, dtype, **sizes):
        """``sizes``: the cell's sizes beyond input and hidden (lstm-proj's ``proj=P``); a state of such a
        size (the module's STATE_SIZES) gets it, and so do the outputs when the first state (h) has it."""
        rng = np.random.default_rng(0)
        self.sizes = {"input": I, "hidden": H, **sizes}
        more = {f"{name}_size": n for name, n in sizes.items()}  # init_params(..., proj_size=P)
        self.params = packed(module.init_params(I, H, rng=rng, dtype=dtype, **more))
        width = {s: self.sizes[getattr(module, "STATE_SIZES", {}).get(s, "hidden")] for s in module.STATES}
        self.xs = rng.standard_normal((T, B, I)).astype(dtype)
        self.state0 = {s: (0.5 * rng.standard_normal((B, width[s]))).astype(dtype) for s in module.STATES}
        self.d_hs = rng.standard_normal((T, B, width[module.STATES[0]])).astype(dtype)


def generated(module):
    """The generated module's forward and backward; a C binding's with one Workspace, as a training loop
    passes it (its calls then write into the same buffers again instead of allocating their outputs)."""
    def prepare(p: Problem):
        reuse = {"workspace": module.Workspace()} if hasattr(module, "Workspace") else {}

        def run():
            _, _, cache = module.forward(p.params, p.xs, p.state0, **reuse)
            _, d_xs, _ = module.backward(p.params, cache, p.d_hs, **reuse)
            return d_xs
        return run
    return prepare


def hand_numpy():
    import hand_numpy as hand  # noqa: PLC0415

    def prepare(p: Problem):
        def run():
            _, _, steps = hand.forward(p.params, p.xs, p.state0)
            _, d_xs, _ = hand.backward(p.params, steps, p.d_hs)
            return d_xs
        return run
    return prepare


def torch_lstm():
    import torch  # noqa: PLC0415

    def prepare(p: Problem):
        T, B, I = p.xs.shape
        H = p.d_hs.shape[2]
        net = torch.nn.LSTM(I, H, dtype=torch.float64 if p.xs.dtype == np.float64 else torch.float32)
        cat = lambda k: torch.from_numpy(np.concatenate([p.params[f"{k}_{g}"] for g in GATES_TORCH]))  # noqa: E731
        with torch.no_grad():
            net.weight_ih_l0.copy_(cat("W"))
            net.weight_hh_l0.copy_(cat("U"))
            net.bias_ih_l0.copy_(cat("b"))
            net.bias_hh_l0.zero_()
        xs = torch.from_numpy(p.xs).requires_grad_()
        h0 = torch.from_numpy(p.state0["h"][None]).requires_grad_()
        c0 = torch.from_numpy(p.state0["c"][None]).requires_grad_()
        d_hs = torch.from_numpy(p.d_hs)

        def run():
            for t in (xs, h0, c0, *net.parameters()):
                t.grad = None
            out, _ = net(xs, (h0, c0))
            out.backward(d_hs)
            return xs.grad.numpy()
        return run
    return prepare


def jax_scan():
    import jax_lstm  # noqa: PLC0415 - optional: only when JAX is importable

    def prepare(p: Problem):
        args = (p.params, p.xs, p.state0["h"], p.state0["c"], p.d_hs)

        def run():
            grads = jax_lstm.forward_backward(*args)
            grads[0]["W_f"].block_until_ready()
            return np.asarray(grads[1])
        return run
    return prepare


def implementations(tmp: Path) -> tuple[dict, list[str], object]:
    """{name: prepare(problem) -> run}, the generated NumPy module, and notes on what is skipped."""
    cell = pipeline.load_cell("lstm")
    (path,) = pipeline.emit(cell, "numpy", tmp / "numpy")
    numpy_module = load_module(path)
    impls = {"generated NumPy": generated(numpy_module)}
    notes = []
    if "c" in pipeline.LANGUAGES:
        files = pipeline.emit(cell, "c", tmp / "c")
        binding = next(f for f in files if f.name == f"{naming.module_name('lstm')}_c.py")
        impls["generated C"] = generated(load_module(binding))
    else:
        notes.append("generated C: skipped (pipeline.LANGUAGES has no 'c' yet)")
    impls[BASELINE] = torch_lstm()
    impls[HAND] = hand_numpy()
    try:
        impls["JAX scan (jit)"] = jax_scan()
    except ImportError as exc:
        notes.append(f"JAX: skipped ({exc})")
    return impls, notes, numpy_module


def measure(runs: dict, repeats: int, settle: float = 0.0) -> dict[str, float]:
    """Median ms per implementation; in every round each implementation, after ``settle`` s and one
    untimed call, is timed once."""
    for run in runs.values():  # warm-up (JIT compilation, allocator, BLAS threads)
        run()
        run()
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            if settle:
                time.sleep(settle)
                run()
            t0 = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: statistics.median(ts) for name, ts in times.items()}


def agree(runs: dict, baseline: str = BASELINE) -> dict[str, float]:
    """Relative difference of each implementation's d_xs from the baseline's (torch's)."""
    results = {name: np.asarray(run(), dtype=np.float64) for name, run in runs.items()}
    ref = results[baseline]
    return {name: float(np.max(np.abs(r - ref)) / np.max(np.abs(ref))) for name, r in results.items()}


def process_ms(args: list[str], repeats: int) -> float:
    cmd = [sys.executable, "-m", "lstm_symbolic", *args]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def processes(tmp: Path, repeats: int) -> dict[str, float]:
    out = {}
    for lang in pipeline.LANGUAGES:
        out[f"emit lstm --lang {lang}"] = process_ms(["emit", "lstm", "--lang", lang, "-o", str(tmp / "e")], repeats)
    out["generate"] = process_ms(["generate", "--dir", str(tmp / "g")], repeats)
    return out


def limit_threads(n: int) -> None:
    """N threads for every pool: torch's, and (read when the libraries load: re-run with them set)
    OpenBLAS's and OpenMP's (the generated C's time loop)."""
    import torch  # noqa: PLC0415

    torch.set_num_threads(n)
    wanted = {"OPENBLAS_NUM_THREADS": str(n), "OMP_NUM_THREADS": str(n)}
    if any(os.environ.get(k) != v for k, v in wanted.items()):
        os.environ.update(wanted)
        os.execv(sys.executable, [sys.executable, *sys.argv])


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
MMAP_THRESHOLD, TRIM_THRESHOLD = 32 << 20, 512 << 20


def fix_malloc() -> str:
    """Fix glibc's malloc thresholds for the rest of the process, and say what was done.  glibc raises
    its mmap threshold to the size of any mapped block freed (up to 32 MiB), so otherwise a library's
    speed depends on what ran before it in the process: hand NumPy at S2 f64 took 502 ms in a fresh
    process and 342 ms after one 20 MB array had been freed (each block of 128 KiB or more it
    allocates per step was mapped, and its pages zeroed, afresh).  Fixed: blocks up to 32 MiB come
    from the heap and the heap is not trimmed below 512 MiB, for every implementation alike."""
    name = ctypes.util.find_library("c")
    mallopt = getattr(ctypes.CDLL(name), "mallopt", None) if name else None
    if mallopt is None:
        return "adaptive (no glibc mallopt here)"
    if mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD):
        return f"fixed: mmap threshold {MMAP_THRESHOLD >> 20} MiB, trim threshold {TRIM_THRESHOLD >> 20} MiB"
    return "adaptive (mallopt refused)"


def machine() -> dict:
    import torch  # noqa: PLC0415

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "numpy": np.__version__, "torch": torch.__version__,
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
            "threads": os.environ.get("OPENBLAS_NUM_THREADS", "(default)")}


def table(rows: list[dict], repeats: int, info: dict) -> str:
    lines = [f"machine: {info['nproc']} cores, {info['cpu']}, Python {info['python']}, NumPy {info['numpy']}, "
             f"torch {info['torch']}, OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE']}, threads {info['threads']}, "
             f"malloc {info['malloc']}",
             f"median of {repeats} interleaved rounds (settle {info['settle_s']} s + one untimed call before "
             "each timed one), ms per forward+backward (all gradients)", "",
             "| size | (T, B, in, hid) | dtype | implementation | ms | × torch | × hand NumPy | max rel diff d_xs |",
             "|---|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['size']} | {tuple(r['shape'])} | {r['dtype']} | {r['impl']} | {r['median_ms']:.3f} | "
                     f"{r['ratio_vs_torch']:.2f} | {r['ratio_vs_hand']:.2f} | {r['rel_diff_d_xs']:.0e} |")
    return "\n".join(lines)


def parse(argv, doc: str = __doc__, extra=None):
    """bench.py's options; ``extra(parser)`` adds a script's own (bench_rnn.py's ``--cells``)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    if extra:
        extra(p)
    p.add_argument("--quick", action="store_true", help="S3 only, 3 rounds, one process timing each")
    p.add_argument("--sizes", help="comma-separated subset of " + ",".join(SIZES))
    p.add_argument("--repeats", type=int, help="rounds per size and dtype (default 9, quick 3)")
    p.add_argument("--threads", type=int, help="threads for OpenBLAS, OpenMP and torch (default: theirs)")
    p.add_argument("--settle", type=float, default=0.2,
                   help="seconds before each implementation's turn in a round, for the other libraries' "
                   "idle thread pools to go to sleep (default 0.2; 0: no wait, no untimed call)")
    p.add_argument("--malloc", choices=("fixed", "adaptive"), default="fixed",
                   help="glibc's malloc thresholds: fixed for the run (default), or glibc's adaptive ones, "
                   "which make each library's speed depend on what ran before it")
    p.add_argument("--out", default=str(ROOT / "bench" / "results.json"), help="the JSON file")
    args = p.parse_args(argv)
    args.sizes = args.sizes.split(",") if args.sizes else (["S3"] if args.quick else list(SIZES))
    unknown = [s for s in args.sizes if s not in SIZES]
    if unknown:
        p.error(f"unknown size {unknown[0]}: use {', '.join(SIZES)}")
    args.repeats = args.repeats or (3 if args.quick else 9)
    return args


def main(argv=None) -> int:
    args = parse(argv)
    if args.threads:
        limit_threads(args.threads)
    malloc = fix_malloc() if args.malloc == "fixed" else "adaptive (glibc's default)"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        impls, notes, module = implementations(tmp)
        for size in args.sizes:
            for dtype in DTYPES:
                problem = Problem(module, *SIZES[size], dtype)
                runs = {name: prep(problem) for name, prep in impls.items()}
                diffs = agree(runs)
                for name, ms in measure(runs, args.repeats, args.settle).items():
                    rows.append({"size": size, "shape": list(SIZES[size]), "dtype": np.dtype(dtype).name,
                                 "impl": name, "median_ms": ms, "rel_diff_d_xs": diffs[name]})
        procs = processes(tmp, 1 if args.quick else 5)
    ref = {(r["size"], r["dtype"], r["impl"]): r["median_ms"] for r in rows}
    for r in rows:
        r["ratio_vs_torch"] = r["median_ms"] / ref[(r["size"], r["dtype"], BASELINE)]
        r["ratio_vs_hand"] = r["median_ms"] / ref[(r["size"], r["dtype"], HAND)]
    info = {**machine(), "settle_s": args.settle, "malloc": malloc}
    print(table(rows, args.repeats, info))
    print()
    for name, ms in procs.items():
        print(f"`lstm-symbolic {name}` as a whole process: {ms:.0f} ms (median of {1 if args.quick else 5})")
    for note in notes:
        print(f"note: {note}")
    out = {"machine": info, "repeats": args.repeats, "settle_s": args.settle, "rows": rows, "process_ms": procs,
           "notes": notes}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
