"""plot --flow (issue 20): the plotted norms are products of step Jacobians, checked here against
the same products built from finite differences of the forward pass."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from test_reductions import LN_RNN

from lstm_symbolic import cli, naming
from lstm_symbolic.article import flow
from lstm_symbolic.core.jacobian import Ones, Term, jacobian
from lstm_symbolic.spec.builtins import load_cell

ROOT = Path(__file__).resolve().parent.parent
RNN = str(ROOT / "examples" / "rnn-tanh.toml")
SIZES = {"steps": 6, "sequences": 2, "hidden": 3, "input_size": 2, "seed": 5}
EPS = 1e-6


def _memory_after(cell, env: dict, value: np.ndarray, column: int) -> dict:
    """Step values with the memory's column replaced and every later equation recomputed."""
    env = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in env.items()}
    mem = sp.Symbol(cell.memory)
    env[mem] = env[mem].copy()
    env[mem][:, column] = value
    names = [eq.lhs for eq in cell.equations]
    for eq in cell.equations[names.index(mem) + 1:]:
        env[eq.lhs] = flow.numpy_value(eq.rhs, env)
    return env


def _step(cell, params, x, prev: dict) -> dict:
    env = {sp.Symbol(k): v for k, v in params.items()} | {sp.Symbol(k): v for k, v in prev.items()}
    env[sp.Symbol("x")] = x
    for eq in cell.equations:
        env[eq.lhs] = flow.numpy_value(eq.rhs, env)
    return env


def _prev_of(cell, env: dict) -> dict:
    prev = {naming.prev(eq.lhs.name): env[eq.lhs] for eq in cell.equations}
    prev.update({naming.prev(s): env[sp.Symbol(s)] for s in cell.states})
    return prev


def fd_norms(cell, total: bool) -> np.ndarray:
    """‖∏ ∂s_t/∂s_{t−1}‖ with every step Jacobian by central differences."""
    return flow.norms_back(fd_jacobians(cell, total, _values(cell)))


def _values(cell):
    """(params, inputs, the forward values at every step) of the plotted sequences."""
    rng = np.random.default_rng(SIZES["seed"])
    params = flow.random_params(cell, SIZES["hidden"], SIZES["input_size"], rng)
    xs = rng.standard_normal((SIZES["steps"] + 1, SIZES["input_size"], SIZES["sequences"]))
    return params, xs, flow.forward(cell, params, xs)


def fd_jacobians(cell, total: bool, run) -> np.ndarray:
    """Every step Jacobian ∂s_t/∂s_{t−1} by central differences, shape (T, sequences, hidden, hidden)."""
    params, xs, values = run
    hidden, mem = SIZES["hidden"], sp.Symbol(cell.memory)
    jacobians = np.zeros((SIZES["steps"], SIZES["sequences"], hidden, hidden))
    for t in range(1, len(values)):
        for b in range(SIZES["sequences"]):
            for j in range(hidden):
                cols = []
                for sign in (1, -1):
                    moved = values[t - 1][mem][:, b].copy()
                    moved[j] += sign * EPS
                    if total:  # the other states follow the memory through step t−1's equations
                        prev = _prev_of(cell, _memory_after(cell, values[t - 1], moved, b))
                    else:
                        prev = _prev_of(cell, values[t - 1])
                        prev[naming.prev(cell.memory)] = prev[naming.prev(cell.memory)].copy()
                        prev[naming.prev(cell.memory)][:, b] = moved
                    cols.append(_step(cell, params, xs[t], prev)[mem][:, b])
                jacobians[t - 1, b, :, j] = (cols[0] - cols[1]) / (2 * EPS)
    return jacobians


@pytest.mark.parametrize("cell", ["lstm", "lstm-peephole", "gru", "gru-reset-after", RNN, "lstm-layernorm"])
@pytest.mark.parametrize("kind", flow.KINDS)
def test_plotted_norms_are_products_of_finite_difference_jacobians(cell, kind):
    loaded = load_cell(cell)
    plotted = flow.flow(loaded, **SIZES).norms[kind]
    np.testing.assert_allclose(plotted, fd_norms(loaded, kind == "total"), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("hidden", [2, 3])
@pytest.mark.parametrize("name", ["lstm-layernorm", "ln-rnn"])
def test_a_jacobian_through_means_and_sums_equals_central_differences(monkeypatch, tmp_path, name, hidden):
    """dc_t/dc_{t-1} of lstm-layernorm passes through mean(c) and the means of U h_{t-1}, ln-rnn's through
    sum(e*g) of a mean-centred e (its (1/H) 1 1ᵀ and 1 1ᵀ factors, and sum(g) (1/H) 1 1ᵀ where they meet):
    evaluated at every step, against central differences of the forward pass; a factor without its
    1/H (a sum where the mean is) fails."""
    if name == "ln-rnn":
        (tmp_path / "ln-rnn.toml").write_text(LN_RNN)
    cell = load_cell(str(tmp_path / "ln-rnn.toml") if name == "ln-rnn" else name)
    monkeypatch.setitem(SIZES, "hidden", hidden)
    run = _values(cell)
    for kind in flow.KINDS:
        derived = flow.step_jacobians(cell, run[2], kind == "total")
        np.testing.assert_allclose(derived, fd_jacobians(cell, kind == "total", run), rtol=1e-6, atol=1e-9)
    jac = jacobian(cell, total=True)
    assert any(Ones(mean=True) in t.factors for t in jac.terms)
    wrong = replace(jac, terms=tuple(Term(tuple(Ones(mean=False) if f == Ones(mean=True) else f for f in t.factors))
                                     for t in jac.terms))
    monkeypatch.setattr(flow, "jacobian", lambda *_, **__: wrong)
    assert not np.allclose(flow.step_jacobians(cell, run[2], True), fd_jacobians(cell, True, run), atol=1e-4)


def test_total_differs_from_partial_only_where_another_state_carries_the_memory():
    lstm, gru = (flow.flow(load_cell(c), **SIZES) for c in ("lstm", "gru"))
    assert not np.allclose(lstm.norms["partial"], lstm.norms["total"], rtol=1e-3, atol=0)
    np.testing.assert_array_equal(gru.norms["partial"], gru.norms["total"])


def test_cli_draws_every_format_and_writes_the_numbers(tmp_path, capsys):
    small = ["--steps", "5", "--sequences", "3", "--hidden", "4", "--input", "2"]
    for fmt, magic in (("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")):
        out = tmp_path / f"flow.{fmt}"
        args = ["plot", "lstm", "gru", RNN, "--flow", "-o", str(out), *small]
        assert cli.main(args + (["--csv", str(tmp_path / "flow.csv")] if fmt == "png" else [])) == 0
        assert out.read_bytes().startswith(magic)
    rows = (tmp_path / "flow.csv").read_text().splitlines()
    assert rows[0].startswith("cell,jacobian,k,median,p10,p90,sequence_1")
    assert len(rows) == 1 + 3 * 2 * 5 and rows[1].startswith("lstm,partial,1,")
    assert {r.split(",")[0] for r in rows[1:]} == {"lstm", "gru", "rnn-tanh"}


def test_weights_from_an_npz_are_used(tmp_path, capsys):
    cell = load_cell("lstm")
    params = flow.random_params(cell, 3, 2, np.random.default_rng(1))
    np.savez(tmp_path / "w.npz", **{k: (v.ravel() if v.shape[1] == 1 else v) for k, v in params.items()})
    out = tmp_path / "f.svg"
    assert cli.main(["plot", "lstm", "--flow", "--weights", str(tmp_path / "w.npz"), "-o", str(out),
                     "--csv", str(tmp_path / "f.csv"), "--steps", "4", "--sequences", "2"]) == 0
    expected = flow.flow(cell, params=params, steps=4, sequences=2)
    first = (tmp_path / "f.csv").read_text().splitlines()[1].split(",")
    # the CSV keeps 6 significant digits: off by at most half a unit in the 6th, 5e-6 relative
    assert float(first[6]) == pytest.approx(expected.norms["partial"][0, 0], rel=5e-6, abs=0)


@pytest.mark.parametrize("args, words", [
    (["plot", "lstm", "--flow", "-o", "x.gif"], "a .png, .svg or .pdf"),
    (["plot", "lstm", "gru", "--flow", "--weights", "w.npz"], "name one cell"),
    (["plot", "lstm", "--flow", "--weights", "missing.npz"], "missing.npz"),
    (["plot", "lstm", "--flow", "--weights", "bad.npz"], "cannot read the weights"),
    (["plot", "lstm", "--flow", "--weights", "short.npz"], "no weights for"),
    (["plot", "lstm", "--flow", "--steps", "1"], "--steps must be at least 2"),
])
def test_plot_mistakes_are_one_line(tmp_path, monkeypatch, capsys, args, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    np.savez(tmp_path / "short.npz", W_f=np.zeros((3, 2)))
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err
    assert not (tmp_path / "flow.png").exists()


def test_weights_from_a_pytorch_state_dict(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    torch.save(torch.nn.LSTM(2, 3).state_dict(), tmp_path / "lstm.pt")
    out = tmp_path / "f.png"
    assert cli.main(["plot", "lstm", "--flow", "--weights", str(tmp_path / "lstm.pt"), "-o", str(out),
                     "--steps", "3", "--sequences", "2"]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")
