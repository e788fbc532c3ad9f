"""bench/bench_rnn.py's rows at a tiny size: rnn-tanh against nn.RNN and lstm-proj (proj = hidden / 2)
against nn.LSTM(proj_size), the generated NumPy and C of each, their d_xs agreeing with torch's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lstm_symbolic.gradcheck import load_module

BENCH = Path(__file__).resolve().parent.parent / "bench"
TOLERANCE = {"float64": 1e-10, "float32": 1e-4}


def test_every_row_runs_and_agrees_with_torch_at_a_tiny_size(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    bench_rnn = load_module(BENCH / "bench_rnn.py", "_bench_rnn")
    monkeypatch.setattr(bench_rnn.bench, "SIZES", {"S3": (4, 3, 5, 6)})
    out = tmp_path / "rows.json"
    assert bench_rnn.main(["--sizes", "S3", "--repeats", "1", "--settle", "0", "--malloc", "adaptive",
                           "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert {(r["cell"], r["dtype"], r["impl"]) for r in rows} == {
        (cell, dtype, impl) for cell, (baseline, _, _) in bench_rnn.CELLS.items() for dtype in TOLERANCE
        for impl in ("generated NumPy", "generated C", baseline)}
    assert all(r["rel_diff_d_xs"] < TOLERANCE[r["dtype"]] for r in rows)
    assert all(r["sizes"] == {"input": 5, "hidden": 6, **({"proj": 3} if r["cell"] == "lstm-proj" else {})}
               for r in rows)


def test_the_problem_gives_h_and_the_outputs_the_projection_size():
    bench = load_module(BENCH / "bench.py", "_bench")
    module = load_module(BENCH.parent / "generated" / "lstm_proj" / "lstm_proj.py", "_bench_lstm_proj")
    p = bench.Problem(module, 4, 3, 5, 6, np.float64, proj=2)
    assert p.state0["h"].shape == (3, 2) and p.state0["c"].shape == (3, 6) and p.d_hs.shape == (4, 3, 2)
    assert p.params["W_hr"].shape == (2, 6) and p.params["U_f"].shape == (6, 2)
