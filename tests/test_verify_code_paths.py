"""The one-function path of verify-code (`FILE.py:FUNC` with the `kwargs` or `ng` convention,
`check_backward`) gives the same diagnoses as the convention path (issue 19 item 4): the
implementations under tests/impls/ are hand-written for these tests, each with a `SLIP` switch."""

from __future__ import annotations

from pathlib import Path

import pytest

from lstm_symbolic import cli

IMPLS = Path(__file__).parent / "impls"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(["verify-code", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def planted(tmp_path, impl: str, slip: str | None) -> Path:
    path = tmp_path / impl
    path.write_text((IMPLS / impl).read_text().replace("SLIP = None", f"SLIP = {slip!r}"))
    return path


def details(out: str) -> dict[str, tuple[str, str]]:
    """{quantity: (status, detail)} of the first report in ``out``."""
    found = {}
    for line in out.split("\n\n")[0].splitlines():
        parts = line.split(None, 3)
        if len(parts) >= 3 and parts[1] in ("agrees", "wrong", "missing"):
            found.setdefault(parts[0], (parts[1], parts[3] if len(parts) > 3 else ""))
    return found


KWARGS_SLIPS = [
    ("sigma_for_tanh", {"d_W_c": "c_tilde = tanh(z_c): d_z_c multiplies by σ′ = y(1 − y) where tanh′ = 1 − y² belongs",
                        "d_x": "d_z_c multiplies by σ′"}),
    ("missing_derivative", {"d_U_o": "o = sigmoid(z_o): d_z_o multiplies by σ(z) itself where σ′ = y(1 − y) belongs"}),
    ("swap_gates", {"d_h_prev": "the gradients of gates f and i are swapped (d_z_f where d_z_i belongs, and back)",
                    "d_b_i": "gates f and i are swapped"}),
    ("wrong_operand", {"d_U_f": "the weight gradient uses c_prev where h_prev belongs (d_W = d_z @ h_prev.T)"}),
    ("dc_before_update", {"d_c_prev": "right only when d_h = 0: computed from d_c before the h path is added"}),
    ("forgets_next", {"d_c_prev": "right only when d_c_next = 0: forgets the gradient from step t+1"}),
    ("transposed", {"d_W_f": "shape (4, 3), expected (3, 4)"}),
]


@pytest.mark.parametrize("slip, expected", KWARGS_SLIPS, ids=[s for s, _ in KWARGS_SLIPS])
def test_planted_mistakes_are_named_on_the_kwargs_path(tmp_path, capsys, slip, expected):
    code, out, err = run(capsys, f"{planted(tmp_path, 'kwargs_lstm.py', slip)}:lstm_backward", "--notation", "default")
    assert code == 1 and not err
    found = details(out)
    for name, words in expected.items():
        assert found[name][0] == "wrong" and words in found[name][1], (name, out)
    assert sum(status == "agrees" for status, _ in found.values()) >= 7


def test_the_right_kwargs_implementation_agrees(capsys):
    code, out, _ = run(capsys, f"{IMPLS / 'kwargs_lstm.py'}:lstm_backward", "--notation", "default")
    assert code == 0 and "15 of 15 gradients agree" in out


@pytest.mark.parametrize("slip", ["sigma_for_tanh", "missing_derivative", "dc_before_update"])
def test_both_paths_give_the_same_diagnoses(tmp_path, capsys, slip):
    """The course's lstm_cell_backward, called alone (FILE.py:FUNC) and through convention ng."""
    path = planted(tmp_path, "ng_lstm.py", slip)
    code_one, one, _ = run(capsys, f"{path}:lstm_cell_backward")
    code_conv, conv, _ = run(capsys, path, "--convention", "ng")
    assert code_one == code_conv == 1
    alone, called = details(one), details(conv)
    wrong = {name for name, (status, _) in alone.items() if status == "wrong"}
    same = lambda text: text.replace("da_next = 0", "d_h = 0")  # noqa: E731 - the seed in the notation's name
    assert wrong and all(same(alone[name][1]) == called[name][1] for name in wrong), (one, conv)


def test_check_backward_in_python_names_the_mistake_too():
    import numpy as np

    from lstm_symbolic.verify import check_backward

    def backward(**v):  # σ′ where tanh′ belongs, written in the default notation's names
        d_c = v["d_c_next"] + v["d_h"] * v["o"] * (1 - np.tanh(v["c"]) ** 2)
        d_z_c = d_c * v["i"] * v["c_tilde"] * (1 - v["c_tilde"])
        return {"d_W_c": d_z_c @ v["x"].T, "d_b_c": d_z_c.sum(axis=1, keepdims=True)}

    report = check_backward(backward, notation="default")
    assert "d_z_c multiplies by σ′ = y(1 − y) where tanh′ = 1 − y² belongs" in report["d_W_c"].detail
    assert report["d_x"].status == "missing" and report.exit_code == 1
