"""Cell spec files: the built-in lstm as a spec, the examples (exact and numeric gradient
checks), and every refusal with its file, line and column."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy as sp

from lstm_symbolic import pipeline
from lstm_symbolic.core.cells import make_cell
from lstm_symbolic.core.components import exact_mismatches
from lstm_symbolic.core.derive import derive
from lstm_symbolic.core.functions import MatVec, sigmoid, tanh
from lstm_symbolic.errors import UserError
from lstm_symbolic.formula import transform as formula_transform
from lstm_symbolic.gradcheck import FD_RTOL, check_module, load_module
from lstm_symbolic.spec.load import MAX_SPEC_BYTES, SpecError, load_spec, parse_spec

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))


def _seed_001_lstm():
    """Seed 001's LSTM built by hand in SymPy, independently of the spec parser."""
    x, h_prev, c_prev, f, i, c_tilde, o, c = sp.symbols("x h_prev c_prev f i c_tilde o c")
    acts = {"f": sigmoid, "i": sigmoid, "c": tanh, "o": sigmoid}
    params = {f"{k}_{g}": shape for k, shape in (("W", ("hidden", "input")), ("U", ("hidden", "hidden")),
                                                  ("b", ("hidden",))) for g in acts}
    equations = []
    for g, act in acts.items():
        W, U, b = sp.symbols(f"W_{g} U_{g} b_{g}")
        equations += [(f"z_{g}", MatVec(W, x) + MatVec(U, h_prev) + b),
                      ("c_tilde" if g == "c" else g, act(sp.Symbol(f"z_{g}")))]
    equations += [("c", f * c_prev + i * c_tilde), ("h", o * tanh(c))]
    return make_cell("lstm", "LSTM with forget gate (Hochreiter & Schmidhuber 1997; Gers et al. 2000): "
                     "c = f*c_prev + i*c_tilde, h = o*tanh(c)",
                     inputs={"x": ("input",)}, states=("h", "c"), params=params, equations=equations)


def test_the_builtin_lstm_spec_is_seed_001s_cell():
    spec = pipeline.load_cell("lstm")
    built = _seed_001_lstm()
    assert spec.equations == built.equations
    assert spec == built


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_gradients_equal_sympy_diff_of_the_expanded_step(path):
    assert exact_mismatches(derive(load_spec(path))) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_generated_numpy_passes_central_differences(path, tmp_path):
    (module_path,) = pipeline.emit(pipeline.load_cell(str(path)), "numpy", tmp_path)
    errors = check_module(load_module(module_path), T=3, B=2, input_size=3, hidden_size=4)
    assert max(errors.values()) < FD_RTOL, errors


def test_there_are_examples_and_a_latex_one():
    assert len(EXAMPLES) >= 2
    assert any("\\sigma" in p.read_text() for p in EXAMPLES)


BASE = """\
name = "tiny"
description = "a gated unit for the error tests"
states = ["h"]

[inputs]
x = "input"

[params]
W_z = ["hidden", "input"]
U_z = ["hidden", "hidden"]
b_z = "hidden"

[equations]
z = "sigmoid(W_z @ x + U_z @ h_prev + b_z)"
h = "(1 - z)*h_prev + z*tanh(U_z @ h_prev)"
"""


def test_base_spec_is_fine():
    cell = parse_spec(BASE, "tiny.toml")
    assert cell.name == "tiny" and cell.states == ("h",)
    assert [eq.lhs.name for eq in cell.equations] == ["z", "h"]


def refusal(old: str, new: str) -> SpecError:
    text = BASE.replace(old, new)
    assert text != BASE
    with pytest.raises(SpecError) as info:
        parse_spec(text, "tiny.toml")
    err = info.value
    assert str(err).startswith(f"tiny.toml:{err.line}:{err.column}: ")
    assert "\n" not in str(err) and isinstance(err, UserError)
    return err


def where(text: str, needle: str, occurrence: int = 0) -> tuple[int, int]:
    """(line, column) of ``needle`` in ``BASE``-derived ``text``."""
    lines = text.splitlines()
    hits = [(n, line.index(needle) + 1) for n, line in enumerate(lines, 1) if needle in line]
    return hits[occurrence]


CASES = [
    # (old, new, needle marking the expected position, reason)
    ('b_z = "hidden"', 'b_z = "hidden', 'b_z = "hidden', "TOML syntax"),
    ("+ b_z)", "+ b_zz)", "b_zz", "unknown name 'b_zz' (did you mean 'b_z'?)"),
    ("U_z @ h_prev + b_z", "U_z @ x + b_z", "@ x + b_z", "shape mismatch in U_z @ x"),
    ('h = "(1', 'z = "1"\nh = "(1', 'z = "1"', "'z' is assigned twice (first on line 14)"),
    ("z*tanh", "q*tanh", "q*tanh", "unknown name 'q'"),
    ('z = "sigmoid(', 'y = "h_prev * g"\ng = "x"\nz = "sigmoid(', "g\"", "'g' is used before"),
    ("+ b_z)", "+ h)", "h)", "'h' is used before it is defined; for the previous step's value"),
    ('h = "(1 - z)*h_prev + z*tanh(U_z @ h_prev)"', 'g = "z"', 'states', "state 'h' is never"),
    ("tanh(U_z @ h_prev)", "tanh(U_z @ (z*h_prev))", "h = ", "not a plain name: name it"),
    ('b_z = "hidden"', 'b_z = "hiden"', "b_z", "unknown size 'hiden'"),
    ('b_z = "hidden"', 'b_z = ["hidden", "input", "input"]', "b_z", "shape of 'b_z'"),
    ('x = "input"', 'x = ["hidden", "input"]', 'x = [', "shape of 'x'"),
    ('h = "(1', 'x = "z"\nh = "(1', 'x = "z"', "'x' is an input; an equation cannot assign it"),
    ('h = "(1', 'h_prev = "z"\nh = "(1', 'h_prev = "z"', "is a previous state"),
    ("b_z = ", "d_z = ", "d_z", "reserved"),
    ('name = "tiny"', 'name = "tiny"\ncolour = "red"', "colour", "unknown key 'colour'"),
    ('name = "tiny"\n', "", "", "'name' must be a non-empty string"),
    ('states = ["h"]', 'states = "h"', "states", "'states' must be a list"),
    ('h = "(1', 'k = "W_z @ x @ h_prev.T"\nh = "(1', "k = ", "only W @ v"),
    ('h = "(1', 'k = "W_z[:, :2] @ x"\nh = "(1', "k = ", "only W @ v"),
    ('h = "(1', 'k = "2"\nh = "(1', "k = ", "gives a scalar value"),
    ("(1 - z)*h_prev + z*tanh(U_z @ h_prev)", "x", "h = ", "must have the hidden size"),
    ("z*tanh(U_z @ h_prev)", "z*foo(h_prev)", "foo", "unknown function 'foo'"),
    ("z*tanh(U_z @ h_prev)", "z.bar", ".bar", "attribute access '.bar'"),
]


@pytest.mark.parametrize("old, new, needle, reason", CASES, ids=[c[3][:30] for c in CASES])
def test_refusals_name_file_line_column_and_fix(old, new, needle, reason):
    err = refusal(old, new)
    assert reason in err.reason, str(err)
    if needle:
        text = BASE.replace(old, new)
        line, column = where(text, needle.rstrip("\n"))
        assert err.line == line, str(err)
        if reason != "TOML syntax":
            assert err.column == column, str(err)


def test_a_formula_error_points_into_the_file():
    err = refusal("+ b_z)", "+ b_zz)")
    line = BASE.replace("+ b_z)", "+ b_zz)").splitlines()[err.line - 1]
    assert line[err.column - 1 :].startswith("b_zz")


def test_latex_equations_point_into_the_file_too():
    text = BASE.replace('z = "sigmoid(W_z @ x + U_z @ h_prev + b_z)"',
                        "z = '\\sigma(W_z x_t + U_z h_{t-1} + b_q)'")
    with pytest.raises(SpecError) as info:
        parse_spec(text, "t.toml")
    line = text.splitlines()[info.value.line - 1]
    assert line[info.value.column - 1 :].startswith("b_q")


def test_a_function_without_a_derivative_rule_is_refused(monkeypatch):
    monkeypatch.setitem(formula_transform.FUNCTIONS, "sin", sp.sin)
    err = refusal("z*tanh(U_z @ h_prev)", "z*sin(h_prev)")
    assert "no derivative rule for 'sin'" in err.reason


@pytest.mark.parametrize(
    "formula",
    ["__import__('os').system('ls')", "x.__class__", "lambda: 0", "x**99999999",
     "(" * 10_000 + "x" + ")" * 10_000, "x" * 20_000, "h_prev;x"],
    ids=["import", "dunder", "lambda", "power", "nesting", "long", "semicolon"],
)
def test_hostile_formulas_in_a_spec_are_refused(formula):
    text = BASE.replace('"(1 - z)*h_prev + z*tanh(U_z @ h_prev)"', "'''" + formula + "'''")
    with pytest.raises(SpecError) as info:
        parse_spec(text, "evil.toml")
    assert info.value.line == 15 and "\n" not in str(info.value)


def test_huge_and_binary_files_are_refused(tmp_path):
    big = tmp_path / "big.toml"
    big.write_text(BASE + "# " + "x" * (MAX_SPEC_BYTES + 1) + "\n")
    with pytest.raises(SpecError, match="larger than"):
        load_spec(big)
    with pytest.raises(SpecError, match="larger than"):
        parse_spec("x" * 1_000_000, "big.toml")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"name = \"\xff\xfe\"\x00")
    with pytest.raises(SpecError, match="UTF-8"):
        load_spec(binary)
    nul = tmp_path / "nul.toml"
    nul.write_text(BASE.replace('"tiny"', '"ti\x00ny"'))
    with pytest.raises(SpecError, match="TOML syntax"):
        load_spec(nul)
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "missing.toml")


def test_the_cli_loader_reads_spec_paths():
    cell = pipeline.load_cell(str(EXAMPLES[0]))
    assert cell.name == load_spec(EXAMPLES[0]).name


def test_a_parameter_no_equation_uses_is_refused_at_its_line():
    text = ('name = "u"\nstates = ["h"]\n[inputs]\nx = "input"\n[params]\nW = ["hidden", "input"]\n'
            'q = "hidden"\n[equations]\nh = "tanh(W @ x)"\n')
    with pytest.raises(SpecError, match=r"u.toml:7:1: parameter 'q' is declared but no equation uses it"):
        parse_spec(text, "u.toml")
