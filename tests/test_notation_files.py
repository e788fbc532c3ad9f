"""Notation profiles as data (issue 20): the built-in ones are TOML files, a user's own is read from
``--notation FILE.toml``, checked against the cell with located errors, compiled, and read back by
``verify``."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from lstm_symbolic import cli, notation, pipeline
from lstm_symbolic.article.documents import derivation_document
from lstm_symbolic.article.publish import fitted_pdf, to_latex
from lstm_symbolic.notation.profile_file import dump_profile, load_profile, parse_profile
from lstm_symbolic.notation.profiles import NOTATIONS

ROOT = Path(__file__).resolve().parent.parent
D2L = ROOT / "examples" / "notations" / "d2l.toml"


@pytest.mark.parametrize("name", notation.names())
def test_each_builtin_profile_is_its_file(name):
    from_file = load_profile(NOTATIONS / f"{name}.toml")
    assert dataclasses.replace(from_file, where="", positions=notation.get(name).positions) == notation.get(name)
    back = parse_profile(dump_profile(from_file), "again.toml")
    assert dataclasses.replace(back, where=from_file.where, positions=from_file.positions) == from_file


@pytest.fixture(scope="module")
def d2l_doc():
    return derivation_document("lstm", str(D2L), steps=True)


def test_d2l_prints_its_own_names(d2l_doc):
    tex = to_latex(d2l_doc)
    for name in (r"I_{t}", r"\tilde{C}_{t}", r"W_{xi}", r"W_{hf}", r"H_{t-1}",
                 r"\frac{\partial E}{\partial O_{t}}"):
        assert name in tex, name
    assert r"\delta" not in tex and "Dive into Deep Learning" in tex


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_d2l_compiles_and_fits(d2l_doc):
    done = fitted_pdf(d2l_doc)
    assert done.pdf.startswith(b"%PDF") and not done.overfull(1.0)


def test_verify_reads_d2l_back(tmp_path, capsys):
    shutil.copy(D2L, tmp_path / "d2l.toml")
    formulas = tmp_path / "mine.toml"
    formulas.write_text('cell = "lstm"\nnotation = "d2l.toml"\n\n[formulas]\n'
                        'dO = "dH*tanh(C)"\ndZ_O = "dO*O*(1 - O)"\ndZ_F = "dC*C_prev*F"\n')
    assert cli.main(["verify", str(formulas)]) == 1
    out = capsys.readouterr().out
    assert "dO        holds" in out and "dZ_O      holds" in out
    assert "right formula: dZ_F = F*dF*(1 - F)" in out


def test_the_cli_takes_a_notation_file(tmp_path, capsys):
    assert cli.main(["derive", "lstm", "--notation", str(D2L), "--format", "markdown"]) == 0
    assert "F_{t}" in capsys.readouterr().out
    assert cli.main(["jacobian", "lstm", "--total", "--notation", str(D2L), "--format", "latex"]) == 0
    assert "W_{hf}" in capsys.readouterr().out


def _profile(tmp_path, text: str) -> str:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    return str(path)


def _one_error(capsys, argv) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("text, located, reason", [
    (D2L.read_text() + 'W_q = ["W_q", "W_q"]\n', ":41:1:", "'W_q' is not a quantity of the cell 'lstm'"),
    (D2L.read_text().replace('z_f = [\'Z_{F,@}\', "Z_F"]\n', ""), ":", "gives no LaTeX for z_f"),
    ('name = "x"\n[names]\nx = "X"\n', ":3:1:", "'x' must be [LaTeX, code name]"),
    ('name = "x"\nadjoint = "nabla"\n[names]\nx = ["X", "X"]\n', ":2:1:", "'adjoint' must be one of"),
    ('name = "x"\ncolour = 1\n[names]\nx = ["X", "X"]\n', ":2:1:", "unknown key 'colour'"),
    ('name = "x\n', ":1:", "TOML syntax"),
    ('name = "x"\n', ":", "needs a [names] table"),
])
def test_a_bad_notation_file_is_one_located_line(tmp_path, capsys, text, located, reason):
    path = _profile(tmp_path, text)
    err = _one_error(capsys, ["derive", "lstm", "--format", "latex", "--notation", path])
    assert f"{path}{located}" in err and reason in err


def test_a_profile_for_another_cell_is_refused_with_its_names(capsys):
    err = _one_error(capsys, ["derive", "gru", "--format", "latex", "--notation", str(D2L)])
    assert "is not a quantity of the cell 'gru'" in err and ":20:1:" in err  # c, its first LSTM name


def test_unknown_notation_and_missing_file_are_one_line(tmp_path, capsys):
    assert "choose one of default, ng" in _one_error(capsys, ["derive", "lstm", "--format", "latex",
                                                               "--notation", "d2l"])
    assert "no.toml" in _one_error(capsys, ["derive", "lstm", "--format", "latex", "--notation",
                                            str(tmp_path / "no.toml")])


@pytest.mark.parametrize("style, expected", [("d", r"dO_{t}"), ("delta", r"\delta O_{t}"),
                                             ("partial", r"\frac{\partial E}{\partial O_{t}}")])
def test_adjoint_styles(tmp_path, style, expected):
    path = _profile(tmp_path, D2L.read_text().replace('adjoint = "partial"', f'adjoint = "{style}"'))
    tex = pipeline.derivation_output("lstm", "latex", path)
    assert expected in tex


def test_product_symbols(tmp_path):
    text = D2L.read_text().replace("hadamard = '\\odot'", "hadamard = '\\circ'") \
        .replace("matmul = ''", "matmul = '\\cdot'")
    tex = pipeline.derivation_output("lstm", "latex", _profile(tmp_path, text))
    equations = tex[tex.index(r"\section*{Forward pass}"):]
    assert r"\odot" not in equations and r"\circ" in equations
    assert r"W_{xf} \cdot X_{t}" in equations


def test_ng_writes_the_courses_own_symbols_and_factor_order():
    tex = to_latex(derivation_document("lstm", "ng", steps=True))
    for name in ("da_{next}", "dc_{next}", r"d\Gamma_o^{\langle t \rangle}", r"d\Gamma_u^{\langle t \rangle}",
                 r"dp\widetilde{c}^{\langle t \rangle}", "da_{prev}", "dc_{prev}", r"dW_{f}"):
        assert name in tex, name
    assert r"\delta" not in tex  # the course writes d, never δ
    gate_first = r"c^{\langle t \rangle} &= \Gamma_f^{\langle t \rangle} \odot c^{\langle t-1 \rangle} + "
    assert gate_first in tex
    assert r"\operatorname{diag}\left(\Gamma_f^{\langle t \rangle} \odot c^{\langle t-1 \rangle}" in tex
    assert "The course has no name for the gradient of a gate's value" in tex  # what it invents


@pytest.mark.parametrize("profile, line", [("pytorch", r"c_{t} &= f_{t} \odot c_{t-1} + i_{t} \odot g_{t}"),
                                           ("default", r"c_{t} &= c_{t-1} \odot f_{t} + i_{t} \odot \tilde{c}_{t}")])
def test_factor_order_is_the_profiles_habit(profile, line):
    assert line in to_latex(derivation_document("lstm", profile))


def test_gfg_writes_the_tutorials_gradients():
    tex = to_latex(derivation_document("lstm", "gfg", steps=True))
    assert r"E_{\delta}" in tex and r"&= E_{\delta} \cdot \tanh(c_{t})" in tex
    assert r"\delta" not in tex.replace(r"E_{\delta}", "")


def test_vector_style_bold(tmp_path):
    text = D2L.read_text().replace("matmul = ''", "matmul = ''\nvector = \"bold\"")
    tex = pipeline.derivation_output("lstm", "latex", _profile(tmp_path, text), steps=True)
    assert r"\boldsymbol{F}_{t} &= \sigma(\boldsymbol{Z}_{F,t})" in tex
    assert r"W_{xf} \boldsymbol{X}_{t}" in tex and r"\boldsymbol{W" not in tex  # matrices stay
    assert r"\frac{\partial E}{\partial \boldsymbol{O}_{t}}" in tex
