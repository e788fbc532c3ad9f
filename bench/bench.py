"""Benchmark: forward+backward of the generated code against torch.nn.LSTM, side by side.

Every implementation runs interleaved at each size and dtype (median of REPEATS after a
warm-up), so that ratios are measured under the same machine load.  Prints a table and
writes bench/results.json.  Run with `make bench`.
"""

from __future__ import annotations

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

from lstm_symbolic import pipeline  # noqa: E402
from lstm_symbolic.gradcheck import load_module  # noqa: E402

SIZES = {  # name: (T, B, input, hidden)
    "S2": (100, 64, 128, 256),
    "S3": (20, 1, 32, 64),
}
REPEATS = 7


def generated_numpy(tmp: Path):
    (path,) = pipeline.emit(pipeline.load_cell("lstm"), "numpy", tmp / "numpy")
    m = load_module(path)

    def prepare(T, B, I, H, dtype):
        rng = np.random.default_rng(0)
        params = m.init_params(I, H, rng=rng, dtype=dtype)
        xs = rng.standard_normal((T, B, I)).astype(dtype)
        d_hs = rng.standard_normal((T, B, H)).astype(dtype)

        def run():
            _, _, cache = m.forward(params, xs, None)
            m.backward(params, cache, d_hs, None)
        return run
    return prepare


def torch_lstm(_tmp: Path):
    import torch

    def prepare(T, B, I, H, dtype):
        tdtype = torch.float64 if dtype == np.float64 else torch.float32
        net = torch.nn.LSTM(I, H, dtype=tdtype)
        xs = torch.randn(T, B, I, dtype=tdtype, requires_grad=True)
        d_hs = torch.randn(T, B, H, dtype=tdtype)

        def run():
            out, _ = net(xs)
            out.backward(d_hs)
        return run
    return prepare


IMPLEMENTATIONS = {"generated NumPy": generated_numpy, "torch nn.LSTM": torch_lstm}
BASELINE = "torch nn.LSTM"


def median_ms(run) -> float:
    run()
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def emit_process_ms(tmp: Path) -> float:
    cmd = [sys.executable, "-m", "lstm_symbolic", "emit", "lstm", "--lang", "numpy", "-o", str(tmp / "e")]
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        preparers = {name: make(tmp) for name, make in IMPLEMENTATIONS.items()}
        for size, (T, B, I, H) in SIZES.items():
            for dtype in (np.float64, np.float32):
                runs = {name: prep(T, B, I, H, dtype) for name, prep in preparers.items()}
                times = {name: [] for name in runs}
                for _ in range(REPEATS):  # interleaved: each round runs every implementation once
                    for name, run in runs.items():
                        times[name].append(median_ms(run) if not times[name] else _once(run))
                for name, ts in times.items():
                    med = statistics.median(ts)
                    rows.append({"size": size, "shape": [T, B, I, H], "dtype": np.dtype(dtype).name,
                                 "impl": name, "median_ms": med})
        emit_ms = emit_process_ms(tmp)
    base = {(r["size"], r["dtype"]): r["median_ms"] for r in rows if r["impl"] == BASELINE}
    for r in rows:
        r["ratio_vs_torch"] = r["median_ms"] / base[(r["size"], r["dtype"])]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"NumPy {np.__version__}; median of {REPEATS} forward+backward, interleaved")
    print(f"{'size':5} {'(T, B, in, hid)':18} {'dtype':8} {'implementation':18} {'ms':>9} {'× torch':>8}")
    for r in rows:
        print(f"{r['size']:5} {str(tuple(r['shape'])):18} {r['dtype']:8} {r['impl']:18} "
              f"{r['median_ms']:9.3f} {r['ratio_vs_torch']:8.2f}")
    print(f"`lstm-symbolic emit lstm --lang numpy` as a whole process: {emit_ms:.0f} ms (median of 5)")
    out = {"rows": rows, "emit_process_ms": emit_ms}
    (ROOT / "bench" / "results.json").write_text(json.dumps(out, indent=2) + "\n")
    return 0


def _once(run) -> float:
    t0 = time.perf_counter()
    run()
    return (time.perf_counter() - t0) * 1e3


if __name__ == "__main__":
    sys.exit(main())
