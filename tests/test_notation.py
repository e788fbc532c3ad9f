"""Notation profiles: names, code names, layouts - and the same mathematics in each."""

import re

import numpy as np
import pytest
import sympy as sp

from lstm_symbolic import cli, notation
from lstm_symbolic.core.derive import derive
from lstm_symbolic.naming import FORMULA_NAME
from lstm_symbolic.notation import NotationError
from lstm_symbolic.spec.builtins import BUILTIN_CELLS
from lstm_symbolic.verify.names import names_for

PROFILES = notation.names()


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)
CELLS = sorted(BUILTIN_CELLS)


def all_names(cell):
    d = derive(cell)
    names = [q.name for q in cell.quantities]
    names += [a.name.name for a in d.adjoints] + [g.name.name for g in d.param_grads]
    return list(dict.fromkeys(names + [s.name for s in d.seeds.values()]))


def balanced(tex: str) -> bool:
    depth = 0
    for ch in tex:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def test_the_five_profiles_of_the_design():
    assert PROFILES == ("default", "ng", "gfg", "greff", "pytorch")


def test_unknown_notation_is_a_clear_error():
    with pytest.raises(NotationError, match="unknown notation 'knuth': choose one of default, ng"):
        notation.get("knuth")


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("cell", CELLS)
def test_every_name_renders_and_round_trips(profile, cell):
    """Each name's LaTeX is balanced and its code name leads back to it.  A code name that is a slice of a
    stored tensor (pytorch's ``weight_ih_l0[1*H:2*H]``) is a layout, not a name a user's code writes: a cell
    without that layout (sLSTM: rows H:2H are nn.LSTM's W_f and nn.GRU's W_z) writes its own names there,
    which verify and verify-code read (``names_for``), and those lead back."""
    p, loaded = notation.get(profile), BUILTIN_CELLS[cell]()
    names = all_names(loaded)
    for name in names:
        assert balanced(p.latex(name)), name
    codes = [p.code(n) for n in names]
    if len(set(codes)) == len(codes):
        for name in names:
            assert p.internal(p.code(name), names) == name
        return
    clashes = {c for c in codes if codes.count(c) > 1}
    assert not any(FORMULA_NAME.fullmatch(c) for c in clashes), "two names share an identifier"
    written = _written(profile, loaded).user()
    assert len(set(written.values())) == len(written) and set(names) <= set(written)
    assert all(written[n] == n for n in names if p.code(n) in clashes)


def _written(profile, cell):
    """The names verify and verify-code read for ``cell`` in ``profile``."""
    d = derive(cell)
    adjoints = tuple(a.name.name for a in d.adjoints) + tuple(g.name.name for g in d.param_grads)
    return names_for(profile, cell, {s: v.name for s, v in d.seeds.items()}, adjoints)


def test_a_cell_pytorch_lacks_keeps_its_names_in_pytorch_notation(capsys):
    """sLSTM in the notation of the PyTorch documentation: the LaTeX of its weights in PyTorch's style (W_{iz},
    W_{if}, ... distinct), its code names its own; a PyTorch weight layout for it is refused in one line."""
    assert notation.get("pytorch").code("W_f") == notation.get("pytorch").code("W_z")  # nn.LSTM's, nn.GRU's rows
    assert {_written("pytorch", BUILTIN_CELLS["slstm"]()).user()[n] for n in ("W_f", "W_z", "U_f", "U_z")} == \
        {"W_f", "W_z", "U_f", "U_z"}
    assert cli.main(["derive", "slstm", "--notation", "pytorch", "--format", "latex"]) == 0
    tex = capsys.readouterr().out
    assert all(w in tex for w in (r"W_{iz}", r"W_{if}", r"W_{hz}", r"W_{hf}")) and "weight_ih_l0" not in tex
    assert cli.main(["derive", "slstm", "--notation", "pytorch"]) == 2  # text has no notation, as for every cell
    assert capsys.readouterr().err.count("\n") == 1
    assert cli.main(["verify-code", "x.py", "--cell", "slstm", "--notation", "pytorch", "--convention", "pytorch"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no pytorch layout for cell 'slstm'" in err


def test_articles_names():
    ng, greff, gfg = notation.get("ng"), notation.get("greff"), notation.get("gfg")
    assert ng.latex("h") == r"a^{\langle t \rangle}"
    assert ng.latex("h_prev") == r"a^{\langle t-1 \rangle}"
    assert ng.latex("f") == r"\Gamma_f^{\langle t \rangle}"
    assert ng.latex("i") == r"\Gamma_u^{\langle t \rangle}"
    assert greff.latex("z_c") == r"\bar{z}^{t}" and greff.latex("U_o", None) == "R_o"
    assert gfg.latex("U_f", None) == r"w_{hf}"
    assert notation.get("pytorch").latex("W_c", None) == r"W_{ig}"
    assert notation.get("default").latex("c_tilde") == r"\tilde{c}_{t}"


def test_ng_code_names_are_the_assignments():
    ng = notation.get("ng")
    expected = {"x": "xt", "h_prev": "a_prev", "c_prev": "c_prev", "h": "a_next", "c": "c_next",
                "f": "ft", "i": "it", "c_tilde": "cct", "o": "ot", "W_f": "Wf[:, n_a:]",
                "U_f": "Wf[:, :n_a]", "b_f": "bf", "d_z_f": "dft", "d_z_c": "dcct",
                "d_h": "da_next", "d_c_next": "dc_next", "d_h_prev": "da_prev",
                "d_c_prev": "dc_prev", "d_x": "dxt", "d_b_o": "dbo"}
    assert {k: ng.code(k) for k in expected} == expected


def test_unknown_names_fall_back_to_a_generic_rendering():
    p = notation.get("default")
    assert p.latex("gate_q") == r"\mathrm{gate}_{q,t}"
    assert p.latex("alpha", None) == r"\alpha"
    assert notation.get("ng").latex("m") == r"m^{\langle t \rangle}"
    assert notation.get("greff").adjoint_latex("m_prev") == r"\delta m^{t-1}"


def _stack_value(stack, parts):
    return np.hstack(parts) if stack.axis == "columns" else np.vstack(parts)


def _slice(code: str, value: np.ndarray, H: int, n_a: int) -> np.ndarray:
    """Apply a code name's slice (``Wf[:, n_a:]``, ``weight_ih_l0[1*H:2*H]``) without eval."""
    cols = re.search(r"\[:, (:?)n_a(:?)\]", code)
    if cols:
        return value[:, :n_a] if cols.group(1) else value[:, n_a:]
    k, k1 = map(int, re.search(r"\[(\d)\*H:(\d)\*H\]", code).groups())
    return value[k * H:k1 * H]


@pytest.mark.parametrize("profile", ["ng", "pytorch"])
def test_stacked_layouts_hold_the_per_gate_weights(profile, rng):
    p, H, n_in = notation.get(profile), 3, 2
    shapes = {"W": (H, n_in), "U": (H, H)}
    for stack in p.stacks:
        parts = [rng.standard_normal(shapes[name[0]]) for name in stack.parts]
        value = _stack_value(stack, parts)
        for name, part in zip(stack.parts, parts, strict=True):
            np.testing.assert_array_equal(_slice(p.code(name), value, H, H), part)
        if stack.operands:  # W_f [a; x] = U_f a + W_f x
            a, x = rng.standard_normal(H), rng.standard_normal(n_in)
            np.testing.assert_allclose(value @ np.concatenate([a, x]),
                                       parts[0] @ a + parts[1] @ x, rtol=1e-12, atol=1e-14)


def _evaluate(expr, values):
    """A derivation expression with linear atoms as plain products (scalar components)."""
    expr = expr.replace(lambda e: type(e).__name__ in ("MatVec", "MatTVec", "Outer"),
                        lambda e: e.args[0] * e.args[1])
    return float(expr.subs(values).rewrite(sp.exp).evalf())


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_states_the_same_equations(profile, rng):
    """Rename every adjoint formula into the profile's code names, map the names back,
    and evaluate: the profile changes names, never the mathematics."""
    cell = BUILTIN_CELLS["lstm"]()
    p, d = notation.get(profile), derive(cell)
    names = all_names(cell)
    values = {sp.Symbol(n): sp.Float(v) for n, v in zip(names, rng.uniform(0.1, 0.9, len(names)),
                                                        strict=True)}
    to_code = {sp.Symbol(n): sp.Symbol(p.code(n)) for n in names}
    for adj in d.adjoints + d.param_grads:
        in_profile = adj.rhs.xreplace(to_code)
        back = in_profile.xreplace({s: sp.Symbol(p.internal(s.name, names))
                                    for s in in_profile.free_symbols})
        assert back == adj.rhs  # exactly the same expression, so exactly the same value
        assert _evaluate(back, values) == _evaluate(adj.rhs, values)
