"""A bounded fuzz of the whole pipeline: spec → derive → print → emit → import/compile → run.

Hypothesis builds specs that look valid: names from a pool that mixes ordinary, reserved and
clashing ones (``t``, ``np``, ``h_seq``, ``proj_x``, ``NULL``, ...), element-wise formulas over
``sigmoid tanh exp log`` with ``W @ v`` terms and constants, and cancellations (``z - z``,
``0*z``, ``z/0``).  Each spec is either refused at load in one line, or derives, prints in every
format, emits NumPy that imports and runs forward and backward on small random data (finite,
and agreeing with central differences, where the formulas cannot overflow), and C that passes
the strict flags; the first few C emissions are built and run against the NumPy module.  The
default budget (100 specs) takes seconds; the ``slow`` variant runs ten times as many.  Below
the fuzz, each cell it found broken is a directed case.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstm_symbolic import pipeline
from lstm_symbolic.errors import UserError
from lstm_symbolic.gradcheck import check_module, load_module, random_problem
from lstm_symbolic.spec.load import SpecError, parse_spec

COMPILED_AT_MOST = 3  # C builds per session (about 2 s each at -O0)
RTOL_C = 1e-9  # the C (double) against the NumPy module, on the fuzzed cells' small values
RTOL_FD_FUZZ = 1e-5  # central differences on a fuzzed cell (its values are not as tame as an LSTM's)
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
ORDINARY = ["h", "c", "a", "g", "k", "m", "n", "r", "s", "u", "v", "q", "y", "z_a", "z_b", "gate", "cand", "mem"]
HOSTILE = ["t", "T", "B", "H", "I", "np", "xs", "hs", "stacked", "sigmoid", "zeros", "range", "lambda", "NULL",
           "tanhf", "INFINITY", "sigmoid_f64", "row_", "exp", "d_q", "q_prev", "h_seq", "proj_x", "back_x", "S_ht",
           "tmp_h", "P_W0", "W0_x", "M_PI", "cache", "grads", "params", "state0", "fz_threads", "x_r_"]
CELL_NAMES = ["fz", "fz-cell", "fz_2", "../../escaped", "x$\\input{/etc/passwd}$", "numpy", "math", "lambda", "a/b",
              "\x1b[31mred", "-x", "a" * 65, "features"]
DESCRIPTIONS = ['x """ + __import__("os").getcwd() + """', "*/ int main(void) { return 0; } /*", "<b>$x$</b> &amp;",
                "\x1b[2J", "two\nlines", "plain words"]
FUNCTIONS = ["sigmoid", "tanh", "exp", "log"]
text = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30)  # TOML has no lone surrogates
hostile_names = st.one_of(st.sampled_from(ORDINARY), st.sampled_from(HOSTILE),
                          st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,6}", fullmatch=True))


class _Spec:
    """A spec under construction: the parameters its formulas declare as they are drawn."""

    def __init__(self, draw, hidden):
        self.draw, self.hidden, self.params = draw, hidden, {}

    def param(self, shape):
        name = f"{self.draw(st.sampled_from(['W', 'U', 'b', 'p', 'C', 'P', 'range', 'W_f']))}{len(self.params)}"
        self.params[name] = shape
        return name

    def term(self, depth):
        """An element-wise formula of hidden size over the values drawn so far."""
        kinds = ["name", "product", "product", "bias"] + ["unary", "unary", "binary", "binary", "cancel"] * (depth > 0)
        kind = self.draw(st.sampled_from(kinds))
        if kind == "name":
            return self.draw(st.sampled_from(self.hidden))
        if kind == "product":
            operand = self.draw(st.sampled_from(["x", *self.hidden]))
            return f"({self.param(['hidden', 'input' if operand == 'x' else 'hidden'])} @ {operand})"
        if kind == "bias":
            return self.param("hidden") if self.draw(st.integers(0, 2)) else self.draw(st.sampled_from(["1", "0.5"]))
        if kind == "unary":
            return f"{self.draw(st.sampled_from(FUNCTIONS))}({self.term(depth - 1)})"
        if kind == "binary":
            op = self.draw(st.sampled_from(["+", "-", "*", "*", "/"]))
            return f"({self.term(depth - 1)} {op} {self.term(depth - 1)})"
        inner = self.term(depth - 1)
        return self.draw(st.sampled_from([f"({inner} - {inner})", f"0*{inner}", f"{inner}/0",
                                          f"({inner} + {self.term(depth - 1)} - {inner})"]))


@st.composite
def specs(draw):
    """The text of a spec that looks valid, and whether its formulas cannot overflow.  Half the specs
    take their names and texts from the hostile pools, half are ordinary (and mostly reach the emitters)."""
    hostile = draw(st.booleans())
    names = hostile_names if hostile else st.sampled_from(ORDINARY)
    states = draw(st.lists(names, min_size=1, max_size=2, unique=True))
    middle = draw(st.lists(names, max_size=3, unique=True))
    spec = _Spec(draw, [f"{s}_prev" for s in states])
    equations = []
    for name in [m for m in middle if m not in states and m != "x"] + states[::-1]:
        equations.append((name, spec.term(draw(st.integers(0, 3)))))
        spec.hidden.append(name)
    if not any(re.search(r"@ x\b", f) for _, f in equations) and (not hostile or draw(st.booleans())):
        name, formula = equations[0]  # read the input (an unread one is refused)
        equations[0] = (name, f"{formula} + {spec.param(['hidden', 'input'])} @ x")
    name = draw(st.sampled_from(CELL_NAMES) | text) if hostile else "fz"
    description = draw(st.sampled_from(DESCRIPTIONS) | text) if hostile else "a fuzzed cell"
    lines = [f"name = {json.dumps(name, ensure_ascii=False)}",  # (ASCII escapes would split astral characters)
             f"description = {json.dumps(description, ensure_ascii=False)}",
             f"states = {json.dumps(states)}", "", "[inputs]", 'x = "input"', "", "[params]"]
    lines += [f"{p} = {json.dumps(shape)}" for p, shape in spec.params.items()]
    lines += ["", "[equations]"] + [f"{n} = {json.dumps(f)}" for n, f in equations]
    tame = not any(re.search(r"exp\(|log\(|/", f) for _, f in equations)
    return "\n".join(lines) + "\n", tame


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


_count = itertools.count()
_compiled = []


def _strict_syntax(folder, module):
    """The C passes the strict flags that every generated C file must pass (DESIGN.md)."""
    done = subprocess.run(["gcc", *STRICT, "-fsyntax-only", str(folder / f"{module}.c")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def _run_numpy(module, tame):
    params, xs, state0, g_hs, g_T = random_problem(module, T=2, B=2, input_size=3, hidden_size=3, seed=7)
    with np.errstate(all="ignore"):
        hs, state_T, cache = module.forward(params, xs, state0)
        grads, d_xs, d_state0 = module.backward(params, cache, g_hs, g_T)
    values = [hs, *state_T.values(), *grads.values(), d_xs, *d_state0.values()]
    assert [v.shape for v in values[:1]] == [(2, 2, 3)] and set(grads) == set(module.PARAMS)
    if tame:
        assert all(np.isfinite(v).all() for v in values)
    return (params, xs, state0, g_hs, g_T), values


def _run_c(folder, cell, problem, expected):
    module = pipeline.naming.module_name(cell.name)
    binding = load_module(folder / f"{module}_c.py")
    params, xs, state0, g_hs, g_T = problem
    with np.errstate(all="ignore"):
        hs, state_T, cache = binding.forward(params, xs, state0)
        grads, d_xs, d_state0 = binding.backward(params, cache, g_hs, g_T)
    got = [hs, *state_T.values(), *grads.values(), d_xs, *d_state0.values()]
    for a, b in zip(got, expected, strict=True):
        finite = np.isfinite(b)
        assert (np.isfinite(a) == finite).all()
        assert np.allclose(a[finite], b[finite], rtol=RTOL_C, atol=RTOL_C * max(1.0, np.abs(b[finite]).max(
            initial=0.0)))


def check_pipeline(text, tame, workdir, monkeypatch):
    try:
        cell = parse_spec(text, "fuzz.toml")
    except SpecError as err:
        assert "\n" not in str(err) and str(err).startswith("fuzz.toml:")
        return "refused"
    for fmt in pipeline.FORMATS:
        assert pipeline.derivation_output(cell, fmt)
    folder = workdir / f"spec{next(_count)}"
    folder.mkdir()
    (path,) = pipeline.emit(cell, "numpy", folder)
    module = load_module(path)
    problem, values = _run_numpy(module, tame)
    if tame:  # the gradients themselves, against central differences
        errors = check_module(module, T=2, B=2, input_size=3, hidden_size=3, seed=3)
        assert max(errors.values()) < RTOL_FD_FUZZ, errors
    try:
        files = pipeline.code_files(cell, "c")
    except UserError as err:  # the C API's limits (one hidden-sized cache), said in one line
        assert "\n" not in str(err)
        return "numpy only"
    if not shutil.which("gcc"):
        return "emitted"
    for rel, body in files.items():
        (folder / rel).write_text(body)
    _strict_syntax(folder, pipeline.naming.module_name(cell.name))
    if len(_compiled) < COMPILED_AT_MOST:
        _compiled.append(cell.name)
        for var, value in (("LSTM_SYMBOLIC_CACHE", str(workdir / "cache")), ("LSTM_SYMBOLIC_CFLAGS", "-O0"),
                           ("LSTM_SYMBOLIC_BLAS", "none"), ("LSTM_SYMBOLIC_OPENMP", "none")):
            monkeypatch.setenv(var, value)
        _run_c(folder, cell, problem, values)
    return "emitted"


EXAMPLES = int(os.environ.get("LSTM_SYMBOLIC_FUZZ", "100"))
FUZZ = settings(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])


def fuzz(examples, workdir, monkeypatch) -> Counter:
    """Run ``examples`` specs through the pipeline: {outcome: count}."""
    seen = Counter()

    @settings(FUZZ, max_examples=examples)
    @given(case=specs())
    def one(case):
        seen[check_pipeline(*case, workdir, monkeypatch)] += 1

    one()
    return seen


def test_every_fuzzed_spec_is_refused_in_one_line_or_emits_working_code(workdir, monkeypatch):
    seen = fuzz(EXAMPLES, workdir, monkeypatch)
    # the budget is spent on both paths: a generator that only made refused specs would test nothing downstream
    assert seen["refused"] >= EXAMPLES // 6 and seen["emitted"] >= EXAMPLES // 6, seen


@pytest.mark.slow
def test_many_more_fuzzed_specs(workdir, monkeypatch):
    seen = fuzz(10 * EXAMPLES, workdir, monkeypatch)
    assert seen["refused"] >= EXAMPLES and seen["emitted"] >= EXAMPLES, seen


# -- the fuzz's findings, each a directed case ------------------------------------------------

CELL = """\
name = "found"
states = {states}

[inputs]
x = "input"

[params]
{params}

[equations]
{equations}
"""
WORKING = {  # accepted cells whose code was wrong or did not build, and why
    "a state read by a product in its own step (NumPy took its T + 1 rows, C never stored it)":
        ('["y", "s"]', 'U0 = ["hidden", "input"]\nU1 = ["hidden", "hidden"]', 's = "U0 @ x"\ny = "U1 @ s"'),
    "a state's gradient that is a product's adjoint as it is (C left the product's slot unwritten)":
        ('["h"]', 'W = ["hidden", "input"]\nU = ["hidden", "hidden"]', 'h = "tanh(W @ x) + U @ h_prev"'),
    "a value times a product, g * (W @ x) (the derivation lost g's gradient)":
        ('["s"]', 'R = ["hidden", "hidden"]\nU = ["hidden", "input"]\nW = ["hidden", "input"]',
         'g = "sigmoid(W @ x)"\ns = "R @ s_prev + g * (U @ x)"'),
    "a value of the parameters alone (the derivation gave it no adjoint)":
        ('["s"]', 'p = "hidden"\nR = ["hidden", "hidden"]\nU = ["hidden", "input"]',
         'g = "sigmoid(p)"\ns = "R @ s_prev + g * (U @ x)"'),
    "e and sqrt(2) (C printed M_E and M_SQRT2, which C99 does not have)":
        ('["h"]', 'W = ["hidden", "input"]\nU = ["hidden", "hidden"]',
         'h = "tanh(W @ x + U @ h_prev) + exp(1) + 2**(1/2)"'),
    "a gate that cancels to a constant (the C kept an unused variable: -Werror)":
        ('["h"]', 'W = ["hidden", "input"]\nU = ["hidden", "hidden"]',
         'z = "W @ x + U @ h_prev"\nf = "sigmoid(z - z)"\nh = "f*h_prev + tanh(z)"'),
    "a linear cell whose backward pass reads nothing of the forward (C: unused cache)":
        ('["h"]', 'W = ["hidden", "input"]', 'h = "1 + W @ x"'),
}


@pytest.mark.parametrize("states, params, equations", WORKING.values(), ids=list(WORKING))
def test_what_the_fuzz_found_now_emits_working_code(tmp_path, monkeypatch, states, params, equations):
    cell = parse_spec(CELL.format(states=states, params=params, equations=equations), "found.toml")
    (path,) = pipeline.emit(cell, "numpy", tmp_path)
    errors = check_module(load_module(path), T=3, B=2, input_size=3, hidden_size=4)
    assert max(errors.values()) < RTOL_FD_FUZZ / 10, errors
    pipeline.emit(cell, "c", tmp_path)
    if not shutil.which("gcc"):
        return
    _strict_syntax(tmp_path, "found")
    for var, value in (("LSTM_SYMBOLIC_CACHE", str(tmp_path / "cache")), ("LSTM_SYMBOLIC_CFLAGS", "-O0"),
                       ("LSTM_SYMBOLIC_BLAS", "none"), ("LSTM_SYMBOLIC_OPENMP", "none")):
        monkeypatch.setenv(var, value)
    errors = check_module(load_module(tmp_path / "found_c.py"), T=3, B=2, input_size=3, hidden_size=4)
    assert max(errors.values()) < RTOL_FD_FUZZ / 10, errors


REFUSED = [  # (params, equations, the message): specs no code can compute, refused where they are written
    ('W = ["hidden", "input"]\nU = ["hidden", "hidden"]', 'z = "W @ x + U @ h_prev"\nh = "z*0 + h_prev"',
     "equation 'z' is not a state and nothing reads it ('h' names it, but in terms that cancel"),
    ('W = ["hidden", "input"]\nU = ["hidden", "hidden"]', 'z = "W @ x + U @ h_prev"\ng = "tanh(z)"\nh = "z"',
     "equation 'g' is not a state and nothing reads it: remove it, or use it"),
    ('W = ["hidden", "input"]', 'h = "tanh(W @ x / 0)"', "divides by zero or takes the log of zero (a term is zoo)"),
    ('W = ["hidden", "input"]', 'h = "tanh(W @ x) + log(0*h_prev)"', "divides by zero or takes the log of zero"),
    ('W = ["hidden", "input"]', 'h = "log(log(0.5)) * h_prev + W @ x"',  # found by the slow fuzz in CI
     "takes the log of a negative constant (a term is log(log(2)) + I*pi)"),
    ('W = ["hidden", "input"]', 'h = "tanh(W @ x) * log(0.5 - 1)"', "takes the log of a negative constant"),
    ('W = ["hidden", "input"]\nb = "hidden"\nU = ["hidden", "hidden"]',  # found by the slow fuzz
     'n = "b"\nh = "W @ x + U @ n + h_prev"', "'U @ n' multiplies a value that reads no input and no state (n = b)"),
    ('W = ["hidden", "input"]\nU = ["hidden", "hidden"]', 'h = "tanh(W @ x - W @ x + U @ h_prev)"',
     "input 'x' is declared but no equation uses it ('h' names it, but in terms that cancel"),
    ('W = ["hidden", "input"]\nU = ["hidden", "hidden"]', 'h = "tanh(W @ x + 0*(U @ h_prev))"',
     "parameter 'U' is declared but no equation uses it ('h' names it, but in terms that cancel"),
    ('W = ["hidden", "input"]\nU = ["hidden", "hidden"]', 'c = "tanh(W @ x)"\nh = "U @ c + U @ h_prev"',
     "parameter 'U' multiplies c and h_prev; the generated code gives each vector its own weights"),
    ('W = ["input", "input"]', 'u = "W @ x"\nh = "h_prev * 2"',
     "equation 'u' is not a state and nothing reads it"),
]


@pytest.mark.parametrize("params, equations, reason", REFUSED, ids=[r[2][:40] for r in REFUSED])
def test_specs_no_code_can_compute_are_refused_where_they_are_written(params, equations, reason):
    text = CELL.format(states='["h"]', params=params, equations=equations)
    with pytest.raises(SpecError) as info:
        parse_spec(text, "found.toml")
    assert reason in info.value.reason and "\n" not in str(info.value), str(info.value)
