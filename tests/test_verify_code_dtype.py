"""verify-code's tolerance follows the dtype the code computes in (issue 19 item 3)."""

from __future__ import annotations

import numpy as np
import pytest
from test_verify import EXAMPLES, ng_backward

from lstm_symbolic import cli
from lstm_symbolic.verify import formulas as verify
from lstm_symbolic.verify.code import TOLERANCES, computed_dtype


def cast(value, dtype):
    if isinstance(value, dict):
        return {k: cast(v, dtype) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(cast(v, dtype) for v in value)
    return np.asarray(value, dtype=dtype)


def in_float32(slip=None, back=False):
    """The right backward (or one with a slip), computing in float32 whatever it is given."""
    def backward(da_next, dc_next, cache):
        grads = ng_backward(cast(da_next, np.float32), cast(dc_next, np.float32), cast(cache, np.float32), slip=slip)
        return cast(grads, np.float64) if back else grads
    return backward


def test_correct_float32_code_is_never_reported_wrong():
    for seed in range(50):
        report = verify.check_backward(in_float32(), seed=seed)
        assert report.ok and report.dtype == "float32" and report.rtol == TOLERANCES["float32"], seed


def test_float32_inputs_keep_float32_code_in_float32():
    for seed in range(50):
        report = verify.check_backward(ng_backward, seed=seed, dtype="float32")
        assert report.ok and report.dtype == "float32", seed


def test_a_planted_slip_is_still_found_in_float32():
    for seed in range(50):
        report = verify.check_backward(in_float32(slip="forget"), seed=seed)
        assert {c.name for c in report.checks if c.status == "wrong"} == {"dWf", "dbf", "da_prev", "dxt"}, seed


def test_float64_stays_strict_and_hints_at_float32_rounding():
    report = verify.check_backward(in_float32(back=True))
    assert report.dtype == "float64" and report.rtol == 1e-7 and not report.ok
    wrong = [c for c in report.checks if c.status == "wrong"]
    assert wrong and all("within float32 rounding" in c.detail for c in wrong)


def test_computed_dtype_is_the_least_precise():
    f16, f32, f64 = (np.zeros(2, d) for d in ("float16", "float32", "float64"))
    assert computed_dtype([f64, f32], "float64") == "float32"
    assert computed_dtype([f64, np.zeros(2, int)], "float64") == "float64"
    assert computed_dtype([f16], "float32") == "float16"
    assert computed_dtype([], "float32") == "float32"


def test_an_explicit_rtol_wins():
    report = verify.check_backward(in_float32(), rtol=1e-9)
    assert report.rtol == 1e-9 and not report.ok


def test_seed_rtol_and_dtype_on_the_command_line(capsys):
    target = f"{EXAMPLES / 'ng_backward.py'}:lstm_cell_backward"
    assert cli.main(["verify-code", target, "--seed", "7", "--dtype", "float32", "--rtol", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "11 of 11 gradients agree (float32, rtol 5e-01, seed 7)" in out


@pytest.mark.parametrize("args", [["--rtol", "0"], ["--rtol", "x"], ["--seed", "1.5"], ["--dtype", "int8"]])
def test_bad_options_are_one_line(capsys, args):
    with pytest.raises(SystemExit) as stop:
        cli.main(["verify-code", "x.py:f", *args])
    assert stop.value.code == 2 and capsys.readouterr().err.count("\n") == 1
