"""The command line: its jobs, its one-line errors, and generated/ being current."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lstm_symbolic import pipeline
from lstm_symbolic.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "lstm_symbolic", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=300)


def test_cells_lists_lstm(capsys):
    assert main(["cells"]) == 0
    assert capsys.readouterr().out.startswith("lstm ")


def test_derive_text_prints_forward_and_backward(capsys):
    assert main(["derive", "lstm", "--format", "text"]) == 0
    out = capsys.readouterr().out
    assert "z_f = W_f @ x + U_f @ h_prev + b_f" in out
    assert "d_z_f = d_f*f*(1 - f)" in out
    assert "d_c_prev = d_c*f" in out


def test_jacobian_partial_and_total(capsys):
    assert main(["jacobian", "lstm"]) == 0
    assert "dc/dc_prev = diag(f)\n" in capsys.readouterr().out
    assert main(["jacobian", "lstm", "--total"]) == 0
    out = capsys.readouterr().out
    assert "total" in out and out.count("@ U_") == 3


def test_emit_writes_the_module(tmp_path):
    result = run("emit", "lstm", "--lang", "numpy", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "lstm.py").read_text().startswith('"""Backward pass (BPTT) of the `lstm` cell')


@pytest.mark.parametrize("args, needle", [
    (["emit", "no-such-cell", "--lang", "numpy"], "unknown cell 'no-such-cell'"),
    (["emit", "lstm", "--lang", "fortran"], "invalid choice: 'fortran'"),
    (["derive"], "the following arguments are required: cell"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["emit", "lstm", "--lang", "numpy", "-o", "/proc/forbidden"], "cannot write to /proc/forbidden"),
])
def test_bad_input_gives_one_line_and_exit_2(args, needle):
    result = run(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_unwritable_output_leaves_no_partial_file(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    assert run("emit", "lstm", "--lang", "numpy", "-o", str(blocked / "sub")).returncode == 2
    assert blocked.read_text() == "not a directory"


def test_generated_folder_is_current():
    assert pipeline.stale(ROOT / "generated") == [], "run `lstm-symbolic generate`"


def test_generate_check_reports_a_stale_file(tmp_path):
    assert run("generate", "--dir", str(tmp_path)).returncode == 0
    assert run("generate", "--check", "--dir", str(tmp_path)).returncode == 0
    victim = next(p for p in tmp_path.rglob("*.py"))
    victim.write_text(victim.read_text() + "# edited\n")
    result = run("generate", "--check", "--dir", str(tmp_path))
    assert result.returncode == 1 and "-# edited" in result.stdout


def test_output_is_the_same_under_any_hash_seed(tmp_path):
    outs = []
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        target = tmp_path / seed
        assert run("generate", "--dir", str(target), env=env).returncode == 0
        outs.append({p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()})
    assert outs[0] == outs[1]


def test_the_installed_package_carries_its_templates_and_specs(tmp_path):
    """The console script, run outside the checkout, uses the installed wheel's files."""
    script = Path(sys.executable).parent / "lstm-symbolic"
    if not script.exists():
        pytest.skip("the package is not installed in this environment (run `make test`)")
    probe = subprocess.run([sys.executable, "-c", "import lstm_symbolic, sys; print(lstm_symbolic.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=60)
    if probe.returncode != 0 or probe.stdout.startswith(str(ROOT / "lstm_symbolic")):
        pytest.skip("lstm_symbolic is only importable from the checkout here")
    result = subprocess.run([str(script), "emit", "gru", "--lang", "numpy", "-o", str(tmp_path)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "gru.py").read_text().startswith('"""Backward pass (BPTT) of the `gru` cell')


def test_code_for_a_cell_with_two_inputs_is_refused_but_its_derivation_works(tmp_path):
    spec = tmp_path / "two.toml"
    spec.write_text('name = "two"\nstates = ["h"]\n[inputs]\nx = "input"\ny = "input"\n'
                    '[params]\nW = ["hidden", "input"]\nV = ["hidden", "input"]\n'
                    '[equations]\nh = "tanh(W @ x + V @ y)"\n')
    result = run("emit", str(spec), "--lang", "numpy", "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and "takes one input sequence" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
    assert run("derive", str(spec)).returncode == 0
