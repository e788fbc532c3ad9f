"""Notation profiles: names, code names, layouts - and the same mathematics in each."""

import re

import numpy as np
import pytest
import sympy as sp

from lstm_symbolic import notation
from lstm_symbolic.core.derive import derive
from lstm_symbolic.notation import NotationError
from lstm_symbolic.spec.builtins import BUILTIN_CELLS

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
    if (cell, profile) == ("slstm", "pytorch"):
        pytest.skip("PyTorch has no sLSTM: the pytorch notation's code names are nn.LSTM's and nn.GRU's row "
                    "slices, W_f and W_z both rows H:2H of weight_ih_l0")
    p = notation.get(profile)
    names = all_names(BUILTIN_CELLS[cell]())
    codes = [p.code(n) for n in names]
    assert len(set(codes)) == len(codes), "two names share a code name"
    for name in names:
        assert balanced(p.latex(name)), name
        assert p.internal(p.code(name), names) == name


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
