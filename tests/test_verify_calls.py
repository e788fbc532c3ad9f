"""verify-code with calling conventions: the user's own forward and backward, one step and a
whole sequence, in the built-in conventions and in convention files (issue 19 items 1, 2, 4).

The implementations under tests/impls/ are hand-written for these tests; each has a `SLIP`
switch that plants one of the mistakes the diagnoses name."""

from __future__ import annotations

from pathlib import Path

import pytest

from lstm_symbolic import cli
from lstm_symbolic.verify.convention import ConventionError, Param, from_user, to_user
from lstm_symbolic.verify.known_conventions import BUILTIN, load

IMPLS = Path(__file__).parent / "impls"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "verify"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(["verify-code", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def planted(tmp_path, impl: str, slip: str | None = None, order: str | None = None) -> Path:
    text = (IMPLS / impl).read_text()
    if slip:
        text = text.replace("SLIP = None", f"SLIP = {slip!r}")
    if order:
        text = text.replace('ORDER = "ifog"', f"ORDER = {order!r}")
    path = tmp_path / impl
    path.write_text(text)
    return path


def rows(out: str) -> dict[str, list[tuple[str, str]]]:
    """{quantity: [(status, detail), ...]} (a name can appear under the step and the sequence)."""
    found = {}
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) >= 3 and parts[1] in ("agrees", "wrong", "missing"):
            found.setdefault(parts[0], []).append((parts[1], parts[3] if len(parts) > 3 else ""))
    return found


@pytest.mark.parametrize("impl, convention, counts", [
    ("ng_lstm.py", "ng", ["13 of 13 values agree", "12 of 12 values agree"]),
    ("cs231n_lstm.py", "cs231n", ["8 of 8 values agree", "6 of 6 values agree"]),
    ("ifog_lstm.py", EXAMPLES / "ifog.toml", ["7 of 7 values agree"]),
    ("per_gate_lstm.py", EXAMPLES / "per-gate.toml", ["17 of 17 values agree"]),
    ("torch_layout_lstm.py", EXAMPLES / "torch-layout.toml", ["10 of 10 values agree"]),
    ("ng_rnn.py", "ng", ["6 of 6 values agree", "a sequence of 4 steps: rnn_forward, rnn_backward"]),
    ("cs231n_rnn.py", "cs231n", ["6 of 6 values agree", "one step: rnn_step_forward, rnn_step_backward"]),
])
def test_right_implementations_check_with_no_adapter(capsys, impl, convention, counts):
    code, out, err = run(capsys, IMPLS / impl, "--convention", convention)
    assert code == 0 and not err, out + err
    for count in counts:
        assert count in out


# (implementation, slip) -> {quantity: words its detail holds}; quantities not named must agree
# where the slip cannot reach them (checked on the step report).
SLIPS = [
    ("cs231n_lstm.py", "swap_blocks", {"dWx": "gate blocks i, f are swapped (is the gate order ifoc?)"}),
    ("cs231n_lstm.py", "sigma_for_tanh", {"dWx": "d_z_c multiplies by σ′ = y(1 − y) where tanh′ = 1 − y² belongs",
                                          "dx": "d_z_c multiplies by σ′"}),
    ("ng_lstm.py", "sigma_for_tanh", {"dWc": "d_z_c multiplies by σ′ = y(1 − y) where tanh′"}),
    ("cs231n_lstm.py", "missing_derivative", {"dWh": "d_z_f multiplies by σ(z) itself where σ′ = y(1 − y)"}),
    ("ng_lstm.py", "missing_derivative", {"da_prev": "d_z_f multiplies by σ(z) itself"}),
    ("cs231n_lstm.py", "wrong_operand", {"dWh": "uses c_prev where h_prev belongs (d_W = d_z @ h_prev.T)"}),
    ("cs231n_lstm.py", "dc_before_update", {"dprev_c": "right only when d_h = 0: computed from d_c before the h"}),
    ("ng_lstm.py", "dc_before_update", {"dc_prev": "before the h path is added to it (take it after the +=)"}),
    ("ng_lstm.py", "no_carry_c", {"dx": "d_c_next is not carried", "da0": "d_c_next is not carried"}),
    ("ng_lstm.py", "no_carry_h", {"dx": "d_h_next is not carried", "dWf": "d_h_next is not carried"}),
    ("ng_lstm.py", "last_step_weights", {"dWc": "= where += belongs"}),
    ("cs231n_lstm.py", "last_step_weights", {"dWx": "= where += belongs"}),
    ("cs231n_lstm.py", "no_carry_c", {"dh0": "d_c_next is not carried"}),
    ("cs231n_lstm.py", "transposed", {"dWx": "shape (12, 4), expected (4, 12)"}),
    ("ng_rnn.py", "sigma_for_tanh", {"dWaa": "h = tanh(z_a): d_z_a multiplies by σ′ = y(1 − y)"}),
    ("ng_rnn.py", "no_carry_h", {"da0": "d_h_next is not carried"}),
]


@pytest.mark.parametrize("impl, slip, expected", SLIPS, ids=[f"{i[:-3]}-{s}" for i, s, _ in SLIPS])
def test_planted_mistakes_are_named(tmp_path, capsys, impl, slip, expected):
    convention = impl.split("_")[0]
    code, out, err = run(capsys, planted(tmp_path, impl, slip), "--convention", convention)
    assert code == 1 and not err
    found = rows(out)
    for name, words in expected.items():
        assert any(status == "wrong" and words in detail for status, detail in found[name]), (name, out)


def test_a_sequence_bug_is_invisible_to_one_step_and_placed_in_time(tmp_path, capsys):
    code, out, _ = run(capsys, planted(tmp_path, "cs231n_lstm.py", "no_carry_h"), "--convention", "cs231n")
    step, sequence = out.split("a sequence of 4 steps")
    assert "8 of 8 values agree" in step and code == 1
    assert "d_h_next is not carried" in sequence


def test_a_wrong_step_term_is_placed_at_the_last_step(tmp_path, capsys):
    code, out, _ = run(capsys, planted(tmp_path, "ng_lstm.py", "sigma_for_tanh"), "--convention", "ng")
    sequence = out.split("a sequence of 4 steps")[1]
    assert code == 1 and "wrong from the last step (T) on: the step's own term" in sequence


def test_the_gate_order_option(tmp_path, capsys):
    path = planted(tmp_path, "cs231n_lstm.py", order="ifgo")
    code, out, _ = run(capsys, path, "--convention", "cs231n")
    assert code == 1 and "(forward)  wrong" in out
    assert "the code's gate order looks like ifco: pass --gate-order ifco" in out
    code, out, _ = run(capsys, path, "--convention", "cs231n", "--gate-order", "ifco")
    assert code == 0, out


def test_func_picks_one_backward(tmp_path, capsys):
    code, out, _ = run(capsys, f"{IMPLS / 'cs231n_lstm.py'}:lstm_backward", "--convention", "cs231n")
    assert code == 0 and "one step" not in out and "a sequence of 4 steps" in out
    code, out, _ = run(capsys, f"{IMPLS / 'cs231n_lstm.py'}:lstm_step_backward", "--convention", "cs231n")
    assert code == 0 and "one step" in out and "sequence" not in out


def test_steps_option(capsys):
    code, out, _ = run(capsys, IMPLS / "cs231n_lstm.py", "--convention", "cs231n", "--steps", "7")
    assert code == 0 and "a sequence of 7 steps" in out


@pytest.mark.parametrize("argv, message", [
    (["--convention", "nope"], "unknown convention 'nope'"),
    (["--convention", "cs231n", "--gate-order", "ifx"], "gate order 'ifx': use each of the gates"),
    (["--convention", "ng", "--gate-order", "ifco"], "stacks no gates"),
])
def test_convention_mistakes_are_one_line(capsys, argv, message):
    code, out, err = run(capsys, IMPLS / "cs231n_lstm.py", *argv)
    assert code == 2 and message in err and err.count("\n") == 1 and not out


def test_a_file_without_the_conventions_functions(tmp_path, capsys):
    path = tmp_path / "other.py"
    path.write_text("def f():\n    pass\n")
    code, _, err = run(capsys, path, "--convention", "cs231n")
    assert code == 2 and "defines none of the backward functions convention 'cs231n' calls" in err


def test_a_signature_that_does_not_fit_the_convention(tmp_path, capsys):
    path = tmp_path / "sig.py"
    path.write_text("def lstm_step_forward(x, h, Wx, Wh, b):\n    pass\n\n\n"
                    "def lstm_step_backward(dh, cache):\n    pass\n")
    code, _, err = run(capsys, path, "--convention", "cs231n")
    assert code == 2 and "lstm_step_forward(x, h, Wx, Wh, b) cannot take the call" in err
    assert "the convention calls lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b)" in err


@pytest.mark.parametrize("text, message", [
    ("name = 1\n", "'name' must be a string"),
    ("bogus = 1\n", "unknown key 'bogus'"),
    ('orientation = "diagonal"\n[params]\nW = { parts = ["W"], gates = "f" }\n[step]\n', "orientation is"),
    ('[params]\nW = { parts = ["Q"], gates = "f" }\n', "parts are among W (input), U (recurrent), b (bias), bh"),
    ('[params]\nW = { parts = ["W"], gates = "f" }\n', "add a [step] or a [sequence] table"),
    ("x = [", "not valid TOML"),
    ('[params]\nW = { parts = ["W"], gates = "f" }\n[step]\nbackward = { function = "f", returns = 3 }\n',
     "backward.returns: a structure is item names"),
    ('[params]\nW = { parts = ["W"], gates = "f" }\n[step]\nbackward = { function = "os.system", returns = [] }\n',
     "function is a Python name"),
])
def test_convention_file_mistakes(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConventionError, match=None) as error:
        load(str(path))
    assert message in str(error.value)


def test_layouts_round_trip():
    import numpy as np

    rng = np.random.default_rng(0)
    sizes = {"hidden": 2, "input": 3}
    blocks = {f"{p}_{g}": rng.normal(size=(2, {"W": 3, "U": 2, "b": 1}[p])) for p in "WUb" for g in "fico"}
    for param in [Param("A", ("b", "W", "U"), "ifoc", transpose=True), Param("B", ("b",), "oicf", flat=True),
                  Param("C", ("U", "W"), "f"), Param("D", ("b",), "ifco", transpose=True, flat=True)]:
        back = from_user(param, to_user(param, blocks), sizes)
        assert all(np.array_equal(back[k], blocks[k]) for k in back)
    assert to_user(Param("D", ("b",), "ifco", transpose=True, flat=True), blocks).shape == (8,)


def test_builtin_conventions_name_their_functions():
    assert BUILTIN["ng"]().functions() == ["lstm_cell_forward", "lstm_cell_backward", "lstm_forward", "lstm_backward"]
    assert BUILTIN["cs231n"]().functions() == ["lstm_step_forward", "lstm_step_backward", "lstm_forward",
                                               "lstm_backward"]


def test_correct_float32_code_is_never_wrong_with_a_convention(tmp_path):
    """The cs231n implementation computing its steps in float32 (its own casts) while its sequence
    functions store into float64 arrays: --dtype float32 says so; 50 seeds, step and sequence."""
    from lstm_symbolic.core.derive import derive
    from lstm_symbolic.spec.builtins import BUILTIN_CELLS
    from lstm_symbolic.verify.calls import check_file
    from lstm_symbolic.verify.run import ChildProcess

    cast = "    x, prev_h, prev_c, Wx, Wh, b = (np.float32(v) for v in (x, prev_h, prev_c, Wx, Wh, b))\n"
    first = "    H = prev_h.shape[1]\n"
    text = (IMPLS / "cs231n_lstm.py").read_text().replace(first, cast + first)
    path = tmp_path / "f32.py"
    path.write_text(text)
    derivation = derive(BUILTIN_CELLS["lstm"]())
    with ChildProcess(str(path)) as child:
        for seed in range(50):
            for title, report in check_file(child, load("cs231n"), derivation, seed=seed, dtype="float32"):
                assert report.exit_code == 0 and report.dtype == "float32", (seed, title, report.text())


def test_an_unknown_item_in_a_convention_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text('[params]\nWx = { parts = ["W"], gates = "ifoc", transpose = true }\n[step]\n'
                    'backward = { function = "lstm_step_backward", args = ["d_h", "nonsense"], returns = [] }\n')
    code, _, err = run(capsys, IMPLS / "cs231n_lstm.py", "--convention", path)
    assert code == 2 and "unknown item 'nonsense'" in err and err.count("\n") == 1


def test_a_gru_sequence_through_a_convention_file_and_a_cell_spec(tmp_path, capsys):
    """The convention names its cell; a cell spec path in it is relative to the convention file."""
    code, out, _ = run(capsys, IMPLS / "gru_seq.py", "--convention", IMPLS / "gru.toml")
    assert code == 0 and "6 of 6 values agree" in out
    spec = Path(__file__).resolve().parent.parent / "lstm_symbolic" / "spec" / "builtin" / "gru.toml"
    (tmp_path / "my-gru.toml").write_text(spec.read_text())
    conv = (IMPLS / "gru.toml").read_text().replace('cell = "gru"', 'cell = "my-gru.toml"')
    (tmp_path / "conv.toml").write_text(conv)
    code, out, _ = run(capsys, planted(tmp_path, "gru_seq.py", "no_carry_h"), "--convention", tmp_path / "conv.toml")
    assert code == 1 and "the gradient d_h_next is not carried to the step before" in out
    code, out, err = run(capsys, IMPLS / "gru_seq.py", "--convention", IMPLS / "gru.toml", "--cell", "lstm")
    assert code == 2 and "has gates 'rzn', but cell 'lstm' has the gates cfio" in err


def test_a_gate_read_as_one_minus_itself_is_named(tmp_path, capsys):
    """A GRU written h = z*n + (1 - z)*h_prev (the other z convention), forward and backward consistent."""
    text = (IMPLS / "gru_seq.py").read_text()
    for right, other in [("h = (1 - z) * n + z * h\n", "h = z * n + (1 - z) * h\n"),
                         ("dn = dh * (1 - z) * (1 - n ** 2)", "dn = dh * z * (1 - n ** 2)"),
                         ("dz = dh * (h - n) * z * (1 - z)", "dz = dh * (n - h) * z * (1 - z)"),
                         ("dh_next = dh * z + ", "dh_next = dh * (1 - z) + ")]:
        assert right in text
        text = text.replace(right, other)
    path = tmp_path / "gru_other_z.py"
    path.write_text(text)
    code, out, _ = run(capsys, path, "--convention", IMPLS / "gru.toml")
    assert code == 1 and "the code reads gate z as 1 − z (the z ↔ 1 − z convention)" in out


def test_lstm_and_rnn_functions_in_one_file(tmp_path, capsys):
    path = tmp_path / "both.py"
    path.write_text((IMPLS / "cs231n_lstm.py").read_text() + "\n\n" + (IMPLS / "cs231n_rnn.py").read_text())
    code, out, _ = run(capsys, path, "--convention", "cs231n")
    assert code == 0 and out.count("one step:") == 2 and out.count("a sequence of 4 steps:") == 2
    code, out, _ = run(capsys, f"{path}:rnn_backward", "--convention", "cs231n")
    assert code == 0 and out.count("a sequence") == 1 and "rnn_forward, rnn_backward" in out


def test_two_biases_and_code_that_adds_only_one(tmp_path, capsys):
    path = planted(tmp_path, "torch_layout_lstm.py", "one_bias")
    code, out, _ = run(capsys, path, "--convention", EXAMPLES / "torch-layout.toml")
    assert code == 1 and "the code ignores bias_hh: it agrees when the whole bias is in the first one" in out


def test_an_activation_applied_twice_is_named(capsys):
    """The example's planted mistake: 1 - tanh(cct)**2, where cct is already tanh(.)."""
    code, out, _ = run(capsys, EXAMPLES / "ng_backward.py", "--convention", "ng")
    assert code == 1 and "d_z_c multiplies by 1 − tanh²(y) (tanh applied again to c_tilde, already tanh)" in out


# ---- the framework layouts of interop.conventions as built-in conventions -------------------------
@pytest.mark.parametrize("impl, argv, counts", [
    ("pytorch_lstm.py", ["--convention", "pytorch"], ["9 of 9 values agree", "8 of 8 values agree"]),
    ("tensorflow_lstm.py", ["--convention", "tensorflow"], ["7 of 7 values agree"]),
    ("keras_gru.py", ["--convention", "keras", "--cell", "gru"], ["6 of 6 values agree"]),
])
def test_framework_layouts_check_with_no_adapter(capsys, impl, argv, counts):
    code, out, err = run(capsys, IMPLS / impl, *argv)
    assert code == 0 and not err, out + err
    for count in counts:
        assert count in out


FRAMEWORK_SLIPS = [
    ("pytorch_lstm.py", "swap_blocks", [], {"d_weight_ih": "the gate blocks f, i are swapped (pytorch's order is ifco)",
                                            "d_bias_hh": "the gate blocks f, i are swapped"}),
    ("pytorch_lstm.py", "one_bias", [], {"h (forward)": "the code ignores bias_hh"}),
    ("pytorch_lstm.py", "c_not_carried", [], {"d_h0": "d_c_next is not carried"}),
    ("tensorflow_lstm.py", "sigma_for_tanh", [], {"d_kernel": "d_z_c multiplies by σ′ = y(1 − y) where tanh′"}),
    ("keras_gru.py", "z_flipped", ["--cell", "gru"], {"hs (forward)": "the code reads gate z as 1 − z"}),
]


@pytest.mark.parametrize("impl, slip, argv, expected", FRAMEWORK_SLIPS,
                         ids=[f"{i[:-3]}-{s}" for i, s, _, _ in FRAMEWORK_SLIPS])
def test_framework_layout_mistakes_are_named(tmp_path, capsys, impl, slip, argv, expected):
    convention = impl.split("_")[0]
    code, out, err = run(capsys, planted(tmp_path, impl, slip), "--convention", convention, *argv)
    assert code == 1 and not err
    found = {}
    for line in out.splitlines():
        name, _, rest = line.partition("  ")
        found.setdefault(name.strip(), []).append(rest)
    for name, words in expected.items():
        assert any("wrong" in rest and words in rest for rest in found[name]), (name, out)


def test_a_framework_forward_without_its_forget_bias_is_wrong(tmp_path, capsys):
    code, out, _ = run(capsys, planted(tmp_path, "tensorflow_lstm.py", "no_forget_bias"), "--convention", "tensorflow")
    assert code == 1 and "0 of 7 values agree" in out


def test_framework_conventions_come_from_interop():
    from lstm_symbolic.interop import conventions as frameworks

    for framework, cell in frameworks.GATE_ORDERS:
        conv = load(framework, cell)
        arrays = [k.removesuffix("_l0") for k in frameworks.array_names(framework, cell)]
        assert conv.framework == framework and conv.sequence_layout == frameworks.SEQUENCE_AXES[framework]
        assert list(conv.step_forward.args[-len(arrays):]) == arrays
    assert load("pytorch").functions() == ["lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward"]
    assert load("keras", "gru").functions()[0] == "gru_step_forward"


@pytest.mark.parametrize("argv, message", [
    (["--convention", "pytorch", "--cell", "gru"],
     "no pytorch layout for cell 'gru': pytorch maps to lstm, lstm-proj, gru-reset-after, rnn-tanh, rnn-relu"),
    (["--convention", "onnx", "--gate-order", "fico"], "convention 'onnx' has onnx's own gate order (iofc)"),
])
def test_framework_convention_mistakes_are_one_line(capsys, argv, message):
    code, out, err = run(capsys, IMPLS / "pytorch_lstm.py", *argv)
    assert code == 2 and message in err and err.count("\n") == 1 and not out


def test_framework_gradients_are_the_adjoint_of_the_layout():
    """Every summed bias gets the bias's gradient; split biases keep the cell's parameters."""
    import numpy as np

    from lstm_symbolic.interop import conventions as frameworks

    rng = np.random.default_rng(3)
    for framework, cell in frameworks.GATE_ORDERS:
        sizes = {"hidden": 3, "input": 2, "proj": 2}  # proj: lstm-proj's
        shapes = {n: tuple(sizes[s] for s in shape) for n, shape in frameworks._cell_params(cell).items()}
        params = {n: rng.normal(size=s) for n, s in shapes.items()}
        grads = {n: rng.normal(size=s) for n, s in shapes.items()}
        weights = frameworks.from_params(framework, params, cell)
        split = frameworks.split_biases(framework, weights, cell, rng)
        back = frameworks.to_params(framework, split, cell)
        assert all(np.allclose(back[n], params[n], atol=1e-12) for n in params)
        d_weights = frameworks.grads_to_framework(framework, grads, cell)
        step = {k: rng.normal(size=np.shape(v)) for k, v in weights.items()}
        moved = frameworks.to_params(framework, {k: weights[k] + step[k] for k in weights}, cell)
        base = frameworks.to_params(framework, weights, cell)
        lhs = sum(float(np.sum(d_weights[k] * step[k])) for k in weights)
        rhs = sum(float(np.sum(grads[n] * (moved[n] - base[n]))) for n in grads)
        assert abs(lhs - rhs) < 1e-9
