"""Side-by-side timing of the generated C binding, the generated NumPy module and torch.nn.LSTM.

Median ms of one forward + backward (full gradients) over >= 7 runs after a warm-up, the
implementations interleaved (S1, S2: one round of 7 each; S3: the median of three rounds of 51).
Usage: python scripts/bench_c.py [DIR] [S1 S2 S3] (DIR holds lstm.py and lstm_c.py; default
generated/lstm).  Prints a Markdown table.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lstm_symbolic.gradcheck import load_module  # noqa: E402

SIZES = {"S1": (50, 32, 64, 128), "S2": (100, 64, 128, 256), "S3": (20, 1, 32, 64)}
GATES = ("i", "f", "c", "o")


def module_runner(m, T, B, D, H, dtype):
    rng = np.random.default_rng(0)
    p = m.init_params(D, H, rng=rng, dtype=dtype)
    xs = rng.standard_normal((T, B, D)).astype(dtype)
    g = rng.standard_normal((T, B, H)).astype(dtype)

    def run():
        _, _, cache = m.forward(p, xs)
        m.backward(p, cache, g)
    return run


def torch_runner(T, B, D, H, dtype):
    import torch  # noqa: PLC0415

    tdt = torch.float32 if dtype == np.float32 else torch.float64
    net = torch.nn.LSTM(D, H, dtype=tdt)
    xs = torch.randn(T, B, D, dtype=tdt, requires_grad=True)
    g = torch.randn(T, B, H, dtype=tdt)

    def run():
        net.zero_grad()
        out, _ = net(xs)
        (out * g).sum().backward()
    return run


def median_ms(run, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    args = sys.argv[1:]
    folder = Path(args.pop(0) if args and args[0] not in SIZES else "generated/lstm")
    chosen = args or list(SIZES)
    npm, cm = load_module(folder / "lstm.py"), load_module(folder / "lstm_c.py")
    print(f"C binding uses CBLAS: {cm.USES_CBLAS}")
    print("| size (T,B,in,hid) | dtype | torch ms | NumPy ms | C ms | NumPy/torch | C/torch |")
    print("|---|---|---|---|---|---|---|")
    for label in chosen:
        T, B, D, H = SIZES[label]
        for dtype in (np.float64, np.float32):
            runs = {"torch": torch_runner(T, B, D, H, dtype), "numpy": module_runner(npm, T, B, D, H, dtype),
                    "c": module_runner(cm, T, B, D, H, dtype)}
            big = T * B * H > 100_000
            reps = 7 if big else 51
            for run in runs.values():
                run()
            times = {k: [] for k in runs}
            for _ in range(1 if big else 3):  # interleaved rounds, each a median of reps
                for k, run in runs.items():
                    times[k].append(median_ms(run, reps))
            ms = {k: statistics.median(v) for k, v in times.items()}
            print(f"| {label} ({T},{B},{D},{H}) | {np.dtype(dtype).name} | {ms['torch']:.3f} | {ms['numpy']:.3f} "
                  f"| {ms['c']:.3f} | {ms['numpy'] / ms['torch']:.2f} | {ms['c'] / ms['torch']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
