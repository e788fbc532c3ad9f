"""The benchmark's hand-written NumPy BPTT computes the same gradients as the generated module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import RTOL_TORCH_F64, rel_err

from lstm_symbolic.gradcheck import load_module, random_problem

HAND = Path(__file__).resolve().parent.parent / "bench" / "hand_numpy.py"


def test_hand_numpy_agrees_with_the_generated_module(numpy_modules):
    m, hand = numpy_modules["lstm"], load_module(HAND)
    params, xs, state0, g_hs, g_T = random_problem(m, T=6, B=3, input_size=4, hidden_size=5, seed=11)
    hs, state_T, cache = m.forward(params, xs, state0)
    grads, d_xs, d_state0 = m.backward(params, cache, g_hs, g_T)
    hand_hs, hand_T, steps = hand.forward(params, xs, state0)
    hand_grads, hand_d_xs, hand_d0 = hand.backward(params, steps, g_hs, g_T)
    assert rel_err(hand_hs, hs) < RTOL_TORCH_F64 and rel_err(hand_T["c"], state_T["c"]) < RTOL_TORCH_F64
    assert max(rel_err(hand_grads[k], grads[k]) for k in m.PARAMS) < RTOL_TORCH_F64
    assert rel_err(hand_d_xs, d_xs) < RTOL_TORCH_F64
    assert all(rel_err(hand_d0[s], d_state0[s]) < RTOL_TORCH_F64 for s in m.STATES)
    assert np.all(np.isfinite(hand_d_xs))


BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_bench_measure_settles_then_times_one_call_after_an_untimed_one():
    bench = load_module(BENCH / "bench.py", "_bench")
    calls = {"a": 0, "b": 0}

    def counter(name):
        def run():
            calls[name] += 1
        return run

    medians = bench.measure({k: counter(k) for k in calls}, repeats=3, settle=0.001)
    assert set(medians) == {"a", "b"} and all(ms >= 0 for ms in medians.values())
    assert calls == {"a": 2 + 3 * 2, "b": 2 + 3 * 2}  # warm-up, then an untimed and a timed call per round
    bench.measure({k: counter(k) for k in calls}, repeats=3, settle=0)
    assert calls == {"a": 8 + 2 + 3, "b": 8 + 2 + 3}  # no settling: only the timed calls


def test_gemm_floor_runs_the_bptt_products_where_openblas_links(capsys):
    import ctypes.util  # noqa: PLC0415

    import pytest  # noqa: PLC0415

    if ctypes.util.find_library("openblas") is None:
        pytest.skip("no libopenblas here")
    floor = load_module(BENCH / "gemm_floor.py", "_gemm_floor")
    lib = floor.openblas()
    T, B, D, H = 3, 2, 4, 5
    run, flops = floor.bptt_products(floor.gemm(lib, np.float64), T, B, D, H, np.float64)
    run()
    assert flops == 2 * 3 * T * B * 4 * H * (D + H)  # three products of each weight's size per step and row
    assert floor.main(["--sizes", "S3", "--repeats", "1"]) == 0
    assert "| S3 | float64 | 1 |" in capsys.readouterr().out


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt")
def test_bench_fixes_mallocs_thresholds_so_a_freed_block_is_reused():
    """In a fresh process glibc maps a 4 MiB block and unmaps it on free, so the next one lands
    elsewhere; with the bench's fixed thresholds it comes from the heap and is reused in place."""
    probe = (
        f"import sys; sys.path.insert(0, {str(BENCH)!r}); import numpy as np\n"
        "if sys.argv[1] == 'fixed':\n"
        "    import bench; print(bench.fix_malloc())\n"
        "a = np.empty(1 << 19); first = a.ctypes.data; del a\n"
        "b = np.empty(1 << 19); print(b.ctypes.data == first)\n"
    )
    runs = {mode: subprocess.run([sys.executable, "-c", probe, mode], capture_output=True, text=True, check=True)
            for mode in ("fixed", "adaptive")}
    assert runs["fixed"].stdout.splitlines() == ["fixed: mmap threshold 32 MiB, trim threshold 512 MiB", "True"]
    assert runs["adaptive"].stdout.splitlines() == ["False"]
