"""verify: formula files judged against the derivation, and hand-written backward functions."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstm_symbolic import cli, notation, pipeline
from lstm_symbolic.core.derive import derive
from lstm_symbolic.printing.text import text
from lstm_symbolic.verify import formulas as verify
from lstm_symbolic.verify import names as verify_names

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "verify"
HEAD = 'cell = "lstm"\nnotation = "ng"\nshape = "vector"\n[formulas]\n'


def by_name(verdicts) -> dict:
    return {v.name: v for v in verdicts}


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def mistakes():
    return by_name(verify.check_file(EXAMPLES / "ng-mistakes.toml"))


@pytest.fixture(scope="module")
def seed003():
    return by_name(verify.check_file(EXAMPLES / "gfg-seed003.toml"))


# -- correct formulas hold -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ng-correct", "default", "greff", "greff-peephole", "pytorch"])
def test_correct_formula_files_hold(name):
    verdicts = verify.check_file(EXAMPLES / f"{name}.toml", pipeline.load_cell)
    assert [v.verdict for v in verdicts] == ["holds"] * len(verdicts)
    assert verify.exit_code(verdicts) == 0
    assert all(v.diagnosis == "" and v.max_rel_error < 1e-12 for v in verdicts)


@pytest.mark.parametrize("cell", [name for name, _ in pipeline.cell_summaries()])
def test_the_derivations_own_formulas_hold_in_the_default_notation(cell):
    d = derive(pipeline.load_cell(cell))
    lines = [f'cell = "{cell}"', 'notation = "default"', "[formulas]"]
    lines += [f"{a.name} = {json.dumps(text(a.rhs))}" for a in d.adjoints if a.name != a.seed]
    lines += [f"{g.name} = {json.dumps(text(g.rhs))}" for g in d.param_grads]
    verdicts = verify.check_text("\n".join(lines), cell, pipeline.load_cell)
    assert [(v.name, v.verdict) for v in verdicts if v.verdict != "holds"] == []


def test_equal_forms_that_differ_in_writing_hold():
    text = HEAD + (
        'dot = "da_next * tanh(c_next) * (ot - ot**2)"\n'
        'dft = "(dc_next + da_next*ot*(1 - tanh(ft*c_prev + it*cct)**2)) * c_prev * ft * (1 - ft)"\n'
        'dbf = "sum(dft, axis=1)"\n'
        'dWo = "(da_next * tanh(c_next) * ot * (1 - ot)) @ concat.T"\n'
    )
    assert {v.verdict for v in verify.check_text(text)} == {"holds"}


# -- planted mistakes: the right verdict and diagnosis ---------------------------------------
@pytest.mark.parametrize(
    "name, verdict, diagnosis",
    [
        ("dot", "wrong", "uses 1 - ot**2 (the derivative of tanh) where ot = sigmoid(·) needs ot*(1 - ot)"),
        ("dcct", "wrong", "uses tanh(cct) where cct is already tanh(·)"),
        ("dft", "wrong", "the parenthesis closes too early: ft*(1 - ft) must multiply the whole sum, "
                         "but the term c_prev*dc_next lacks it"),
        ("dit", "holds-at-last-step", "misses the term cct*dc_next*it*(1 - it)"),
        ("dc_prev", "holds-at-last-step", "right only when dc_next = 0 (no gradient from step t+1): "
                                          "misses the term dc_next*ft"),
        ("da_prev", "wrong", "the product Wf[:, :n_a] @ dft is transposed: write Wf[:, :n_a].T @ dft"),
        ("dWf", "wrong", "the product concat @ dft.T is transposed: write dft @ concat.T"),
        ("dxt", "wrong", "misses the term Wo[:, n_a:].T @ dot"),
        ("dbo", "wrong", "has the extra term da_next"),
        ("dbf", "wrong", "the term 2*dft is off by the factor 2"),
        ("dWi", "holds", ""),
    ],
)
def test_planted_mistakes(mistakes, name, verdict, diagnosis):
    v = mistakes[name]
    assert v.verdict == verdict
    assert diagnosis in v.diagnosis if diagnosis else v.diagnosis == ""


def test_a_wrong_formula_comes_with_the_right_one_in_the_users_notation(mistakes):
    assert mistakes["dc_prev"].expected == "ft*(dc_next + da_next*ot*(1 - tanh(c_next)**2))"
    assert mistakes["dxt"].expected == ("Wc[:, n_a:].T @ dcct + Wf[:, n_a:].T @ dft + "
                                        "Wi[:, n_a:].T @ dit + Wo[:, n_a:].T @ dot")
    # LaTeX in the notation's article names (the ng profile: W_f = [W_fa W_fx], Γ gates)
    assert r"W_{ox}^{\top} d\Gamma_o^{\langle t \rangle}" in mistakes["dxt"].expected_latex
    assert mistakes["dc_prev"].expected_latex.startswith(r"\Gamma_f^{\langle t \rangle} \odot \left(")
    assert mistakes["dWf"].expected_latex.endswith(r"\end{bmatrix}^{\top}")
    assert mistakes["dot"].max_rel_error > 1e-3


def test_holds_at_last_step_is_told_apart_from_wrong():
    text = HEAD + (
        'dc_prev = "ot * (1 - tanh(c_next)**2) * ft * da_next"\n'  # forgets dc_next
        'dft = "dc_next * c_prev + ot * (1 - tanh(c_next)**2) * c_prev * da_next * ft * (1 - ft)"\n'
        'dit = "(2 * dc_next * cct + ot * (1 - tanh(c_next)**2) * cct * da_next) * it * (1 - it)"\n'
    )
    got = by_name(verify.check_text(text))
    assert got["dc_prev"].verdict == "holds-at-last-step"
    assert got["dft"].verdict == "wrong"  # equal when dc_next = 0, but it does use dc_next
    assert got["dit"].verdict == "wrong"
    assert "the term 2*cct*dc_next*it*(1 - it) is off by the factor 2" in got["dit"].diagnosis


def test_scalar_diagnoses_wrong_activation_and_missing_or_extra_factors():
    text = 'cell = "lstm"\nnotation = "gfg"\n[formulas]\n' + (  # shape: scalar by default for gfg
        'dE_dbo = "E_delta * tanh(ct) * tanh(zo) * (1 - tanh(zo))"\n'
        'dE_dzf = "(dE_dc_next + E_delta * o * (1-tanh(ct)**2)) * f * (1 - f)"\n'
        'dE_dwxf = "dE_dzf * x * h_prev"\n'
        'dE_dwhf = "dE_dzf * h_prev"\n'
    )
    got = by_name(verify.check_text(text))
    assert got["dE_dbo"].diagnosis == "uses tanh(zo) where the activation is sigmoid(zo)"
    assert got["dE_dzf"].diagnosis == "lacks the factor c_prev"
    assert got["dE_dwxf"].diagnosis == "has the extra factor h_prev"
    assert got["dE_dwhf"].verdict == "holds"


def test_peephole_terms_left_out_are_named():
    text = 'cell = "lstm-peephole"\nnotation = "greff"\n[formulas]\n' + (
        'dc_prev = "dc * f"\n'
        'dc = "dy * o * (1 - tanh(c)**2) + dc_next"\n'
    )
    got = by_name(verify.check_text(text, "f", pipeline.load_cell))
    assert got["dc_prev"].diagnosis == "misses the term dfbar*p_f; misses the term dibar*p_i"
    assert got["dc"].diagnosis == "misses the term dy*o*p_o*(1 - o)*tanh(c)"
    assert got["dc"].expected == "dc_next + dy*o*(1 - tanh(c)**2) + dy*o*p_o*(1 - o)*tanh(c)"


def test_a_formula_not_linear_in_the_gradients_is_said_to_be():
    (v,) = verify.check_text(HEAD + 'dft = "log(sigmoid(tanh(dcct)**2)) + dc_next**2"\n')
    assert v.verdict == "wrong" and v.diagnosis.startswith("is not linear in the gradients da_next, dc_next")


def test_a_size_written_as_a_number_is_caught_at_other_sizes():
    text = HEAD + 'da_prev = "Wf[:, :2].T @ dft + Wi[:, :2].T @ dit + Wc[:, :2].T @ dcct + Wo[:, :2].T @ dot"\n'
    (v,) = verify.check_text(text)
    assert v.verdict == "wrong" and "is a size written as a number?" in v.diagnosis


def test_seed_003_typos_and_slips_are_reported(seed003):
    assert seed003["dE_do"].verdict == "holds"
    for name in ("dE_dc", "dE_di", "dE_dg", "dE_df", "dE_dc_prev"):
        assert seed003[name].verdict == "holds-at-last-step"
        assert "dE_dc_next" in seed003[name].diagnosis
    assert seed003["dE_dwxo"].verdict == "error"
    assert seed003["dE_dwxo"].diagnosis == "line 1, column 55: unexpected end of formula; expected ')'"
    assert seed003["dE_dwxg"].diagnosis == "line 1, column 39: unexpected character '?'"
    assert seed003["dE_dwxo"].expected == "E_delta*o*x*(1 - o)*tanh(c)"  # scalar: * for every product


# -- unreadable and hostile input: error / exit 2, a position, nothing run -------------------
@pytest.mark.parametrize(
    "formula, reason",
    [
        ("__import__('os').system('touch /tmp/lstm_symbolic_pwned')", "strings are not part"),
        ("dft.__class__", "'__class__' is Python"),
        ("foo * 2", "unknown name 'foo'"),
        ("(" * 150 + "ft" + ")" * 150, "nested deeper than 100"),
        ("ft +", "unexpected end of formula"),
        ("dft", "uses dft itself"),
    ],
)
def test_unreadable_formulas_are_errors_with_a_position(formula, reason):
    (v,) = verify.check_text(HEAD + f"dft = {json.dumps(formula)}\n")
    assert v.verdict == "error" and reason in v.diagnosis
    assert v.diagnosis.startswith("line 1, column ")
    assert verify.exit_code([v]) == 1
    assert not Path("/tmp/lstm_symbolic_pwned").exists()


def test_a_hostile_power_is_judged_without_expanding_it():
    (v,) = verify.check_text(HEAD + 'dit = "((it + ot + ft + cct + c_next)**16)**16"\n')
    assert v.verdict == "wrong"


@pytest.mark.parametrize(
    "text, message",
    [
        ("cell = [", "not valid TOML"),
        ('cell = "lstm"\nnotation = "ng"\n', "add a [formulas] table"),
        ('cell = "lstm"\nnotation = "ng"\nimport = "os"\n[formulas]\ndft = "ft"\n', "unknown key 'import'"),
        ('cell = "lstm"\nnotation = "nope"\n[formulas]\ndft = "ft"\n', "unknown notation 'nope'"),
        ('cell = "gru9"\nnotation = "ng"\n[formulas]\ndft = "ft"\n', "unknown cell 'gru9'"),
        (HEAD + "dft = 3\n", "must be a string"),
        ('cell = "lstm"\nshape = "matrix"\n[formulas]\nd_c = "d_h"\n', 'shape is "vector" or "scalar"'),
        (HEAD + "".join(f'q{k} = "ft"\n' for k in range(300)), "the limit is 200"),
        (HEAD + 'dft = "' + "ft+" * 100_000 + 'ft"\n', "larger than"),
    ],
)
def test_unusable_files_exit_2_with_one_line(tmp_path, capsys, text, message):
    path = tmp_path / "f.toml"
    path.write_text(text)
    code, out, err = run_cli(capsys, "verify", str(path))
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1


def test_exit_codes_of_the_command(capsys):
    assert run_cli(capsys, "verify", str(EXAMPLES / "ng-correct.toml"))[0] == 0
    code, out, _ = run_cli(capsys, "verify", str(EXAMPLES / "ng-mistakes.toml"))
    assert code == 1 and "misses the term Wo[:, n_a:].T @ dot" in out
    code, out, err = run_cli(capsys, "verify", str(EXAMPLES / "gfg-seed003.toml"))
    assert code == 1 and "error" in out and not err


def test_one_unreadable_formula_or_unknown_name_is_an_error_verdict_and_exit_1(tmp_path, capsys):
    path = tmp_path / "f.toml"
    path.write_text(HEAD + 'dzz = "ft"\ndft = "ft +"\ndot = "da_next * tanh(c_next) * ot * (1 - ot)"\n')
    code, out, err = run_cli(capsys, "verify", str(path))
    assert code == 1 and not err
    verdicts = by_name(verify.check_file(path))
    assert verdicts["dzz"].verdict == "error"
    assert "'dzz' is not a quantity of notation 'ng'" in verdicts["dzz"].diagnosis
    assert verdicts["dft"].verdict == "error" and verdicts["dot"].verdict == "holds"


# -- the JSON schema is stable ---------------------------------------------------------------
def test_json_schema(capsys):
    code, out, _ = run_cli(capsys, "verify", str(EXAMPLES / "ng-mistakes.toml"), "--format", "json")
    items = json.loads(out)
    assert code == 1 and len(items) == 14
    for item in items:
        assert list(item) == ["name", "verdict", "max_rel_error", "expected", "expected_latex", "diagnosis"]
        assert item["verdict"] in verify.VERDICTS
        assert item["max_rel_error"] is None or isinstance(item["max_rel_error"], float)
        assert all(isinstance(item[k], str) for k in ("name", "expected", "expected_latex", "diagnosis"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet="ftiocnxa_ ()*+-/@.T[]:0123456789", max_size=40))
def test_any_text_gets_a_verdict(checker, text):
    verdict = verify.check_formula(checker, "dft", text)
    assert verdict.verdict in verify.VERDICTS


@pytest.fixture(scope="module")
def checker():
    c = verify.Checker(pipeline.load_cell("lstm"), "ng", False)
    c.draws  # noqa: B018 - build the draws once
    return c


# -- hand-written backward code --------------------------------------------------------------
def ng_backward(da_next, dc_next, cache, *, slip=None):
    a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters = cache
    n_a = a_next.shape[0]
    dc = dc_next + ot * (1 - np.tanh(c_next) ** 2) * da_next
    d = {"o": da_next * np.tanh(c_next) * ot * (1 - ot), "c": dc * it * (1 - cct**2),
         "i": dc * cct * it * (1 - it), "f": dc * c_prev * ft * (1 - ft)}
    if slip == "forget":
        d["f"] = dc * c_prev * ft  # forgets sigmoid's derivative
    concat = np.concatenate((a_prev, xt), axis=0)
    grads = {f"dW{g}": d[g] @ concat.T for g in "fico"}
    grads.update({f"db{g}": np.sum(d[g], axis=1, keepdims=True) for g in "fico"})
    grads["da_prev"] = sum(parameters[f"W{g}"][:, :n_a].T @ d[g] for g in "fico")
    grads["dxt"] = sum(parameters[f"W{g}"][:, n_a:].T @ d[g] for g in "fico")
    grads["dc_prev"] = dc * ft
    if slip == "missing":
        del grads["dxt"]
    return grads


def test_check_backward_accepts_a_right_function():
    report = verify.check_backward(ng_backward)
    assert report.ok and len(report.checks) == 11


def test_check_backward_names_the_gate_of_a_planted_mistake():
    report = verify.check_backward(lambda a, c, cache: ng_backward(a, c, cache, slip="forget"))
    wrong = {c.name for c in report.checks if c.status == "wrong"}
    assert wrong == {"dWf", "dbf", "da_prev", "dxt"}
    assert report["da_prev"].detail == "forget gate (ft) terms disagree"
    assert report["dWf"].detail == "forget gate (ft) terms disagree"
    assert report["dc_prev"].status == "agrees"


def test_check_backward_reports_a_missing_gradient():
    report = verify.check_backward(lambda a, c, cache: ng_backward(a, c, cache, slip="missing"))
    assert report["dxt"].status == "missing" and not report.ok


def test_check_backward_with_keyword_arguments_finds_a_forgotten_step_and_a_transpose():
    def backward(**v):
        d_c = v["d_h"] * v["o"] * (1 - np.tanh(v["c"]) ** 2)  # forgets d_c_next
        d_z_f = v["d_c_next"] * 0 + (d_c + v["d_c_next"]) * v["c_prev"] * v["f"] * (1 - v["f"])
        return {"d_c_prev": d_c * v["f"], "d_W_f": d_z_f @ v["x"].T, "d_U_f": v["h_prev"] @ d_z_f.T}

    report = verify.check_backward(backward, notation="default")
    assert report["d_c_prev"].detail == "right only when d_c_next = 0: forgets the gradient from step t+1"
    assert report["d_U_f"].detail == "is transposed"
    assert report["d_W_f"].status == "agrees"
    assert report["d_x"].status == "missing"


def test_verify_code_command(capsys):
    code, out, _ = run_cli(capsys, "verify-code", f"{EXAMPLES / 'ng_backward.py'}:lstm_cell_backward")
    assert code == 1 and "candidate (cct) terms disagree" in out
    code, _, err = run_cli(capsys, "verify-code", "nothing.py:f")
    assert code == 2 and "no such file" in err


# -- every notation profile works in verify and verify-code (one registry) -------------------
def test_a_wrong_formula_in_pytorch_names_is_wrong(tmp_path):
    text = (EXAMPLES / "pytorch.toml").read_text().replace('d_z_f = "d_c * c_prev * f * (1 - f)"',
                                                          'd_z_f = "d_c * c_prev * f"')
    verdicts = by_name(verify.check_text(text, "pytorch.toml"))
    assert verdicts["d_z_f"].verdict == "wrong"
    assert verdicts["d_z_f"].expected == "d_f*f*(1 - f)"
    assert [n for n, v in verdicts.items() if v.verdict != "holds"] == ["d_z_f"]


def test_an_unknown_notation_in_a_formula_file_lists_every_profile(tmp_path):
    path = tmp_path / "f.toml"
    path.write_text('cell = "lstm"\nnotation = "knuth"\n[formulas]\nd_c = "d_h"\n')
    with pytest.raises(notation.NotationError, match="choose one of default, ng, gfg, greff, pytorch"):
        verify.check_file(path)


def pytorch_backward(*, slip=None, **v):
    """An LSTM step's backward in the pytorch notation's names (keyword convention)."""
    d_c = v["d_c_next"] + v["d_h"] * v["o"] * (1 - np.tanh(v["c"]) ** 2)
    d = {"o": v["d_h"] * np.tanh(v["c"]) * v["o"] * (1 - v["o"]), "c": d_c * v["i"] * (1 - v["g"] ** 2),
         "i": d_c * v["g"] * v["i"] * (1 - v["i"]), "f": d_c * v["c_prev"] * v["f"] * (1 - v["f"])}
    if slip == "forget":
        d["f"] = d_c * v["c_prev"] * v["f"]
    grads = {f"d_W_{g}": d[g] @ v["input"].T for g in "fico"}
    grads.update({f"d_U_{g}": d[g] @ v["h_prev"].T for g in "fico"})
    grads.update({f"d_b_{g}": np.sum(d[g], axis=1, keepdims=True) for g in "fico"})
    grads["d_input"] = sum(v[f"W_{g}"].T @ d[g] for g in "fico")
    grads["d_h_prev"] = sum(v[f"U_{g}"].T @ d[g] for g in "fico")
    grads["d_c_prev"] = d_c * v["f"]
    return grads


def test_check_backward_in_pytorch_names():
    report = verify.check_backward(pytorch_backward, notation="pytorch")
    assert report.ok and len(report.checks) == 15
    report = verify.check_backward(lambda **v: pytorch_backward(slip="forget", **v), notation="pytorch")
    wrong = {c.name for c in report.checks if c.status == "wrong"}
    assert wrong == {"d_W_f", "d_U_f", "d_b_f", "d_input", "d_h_prev"}
    assert report["d_W_f"].detail == "forget gate (f) terms disagree"


def test_verify_code_command_with_pytorch_names(tmp_path, capsys):
    path = tmp_path / "torch_names.py"
    path.write_text("import numpy as np\n\n\n" + inspect.getsource(pytorch_backward))
    code, out, err = run_cli(capsys, "verify-code", f"{path}:pytorch_backward", "--notation", "pytorch")
    assert (code, err) == (0, "") and "15 of 15 gradients agree" in out


def _own_formulas_in(notation_name: str, cell: str) -> str:
    """A formula file of the derivation's own formulas, written in a notation's names."""
    d = derive(pipeline.load_cell(cell))
    seeds = {s: str(v) for s, v in d.seeds.items()}
    grads = tuple(str(a.name) for a in d.adjoints) + tuple(str(g.name) for g in d.param_grads)
    names = verify_names.names_for(notation_name, d.cell, seeds, grads)
    back = {sp.Symbol(i): sp.Symbol(u) for i, u in names.user().items()}
    rows = [(a.name, a.rhs) for a in d.adjoints if a.name != a.seed] + [(g.name, g.rhs) for g in d.param_grads]
    lines = [f'cell = "{cell}"', f'notation = "{notation_name}"', 'shape = "vector"', "[formulas]"]
    lines += [f"{back[name]} = {json.dumps(text(rhs.xreplace(back)))}" for name, rhs in rows]
    return "\n".join(lines)


@pytest.mark.parametrize("cell", [name for name, _ in pipeline.cell_summaries()])
@pytest.mark.parametrize("profile", [p for p in notation.PROFILES if p != "default"])
def test_every_notation_works_with_every_cell(profile, cell):
    """One registry: every profile of `derive --notation` names every cell's quantities in verify
    (the sources' own spellings aside, tested above)."""
    if profile in verify_names.SPELLINGS and cell in verify_names.SPELLINGS[profile]().cells:
        pytest.skip("the source's own spellings: tested with its example file")
    verdicts = verify.check_text(_own_formulas_in(profile, cell), cell, pipeline.load_cell)
    assert [(v.name, v.verdict, v.diagnosis) for v in verdicts if v.verdict != "holds"] == []
