"""verify-code runs the user's file in a child process: an exit, a crash, an exception or an endless
loop is reported in one line with exit 2, never as agreement, and nothing is left running."""

from __future__ import annotations

import os
import pickle
import textwrap
import time

import pytest

from lstm_symbolic import cli
from lstm_symbolic.verify import run as verify_run
from lstm_symbolic.verify.child import Opaque

RIGHT = """\
import numpy as np


def lstm_cell_backward(da_next, dc_next, cache):
    a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters = cache
    n_a = a_next.shape[0]
    dc = dc_next + ot * (1 - np.tanh(c_next) ** 2) * da_next
    d = {"o": da_next * np.tanh(c_next) * ot * (1 - ot), "c": dc * it * (1 - cct ** 2),
         "i": dc * cct * it * (1 - it), "f": dc * c_prev * ft * (1 - ft)}
    z = np.concatenate((a_prev, xt), axis=0)
    out = {"dW" + g: d[g] @ z.T for g in "fico"}
    out.update({"db" + g: d[g].sum(axis=1, keepdims=True) for g in "fico"})
    out["da_prev"] = sum(parameters["W" + g][:, :n_a].T @ d[g] for g in "fico")
    out["dxt"] = sum(parameters["W" + g][:, n_a:].T @ d[g] for g in "fico")
    out["dc_prev"] = dc * ft
    return out
"""


def write(tmp_path, body: str, name: str = "user.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def run(capsys, target: str, *options: str) -> tuple[int, str, str]:
    code = cli.main(["verify-code", target, *options])
    out, err = capsys.readouterr()
    return code, out, err


def gone(pid: int, within: float = 5.0) -> bool:
    """True once no process has this id (a killed orphan is reaped by init shortly after)."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_right_code_agrees_through_the_child(tmp_path, capsys):
    code, out, err = run(capsys, write(tmp_path, RIGHT) + ":lstm_cell_backward")
    assert code == 0 and "11 of 11 gradients agree" in out and not err


@pytest.mark.parametrize("where", ["call", "import"])
def test_sys_exit_zero_is_never_agreement(tmp_path, capsys, where):
    body = RIGHT + ("\nimport sys\nsys.exit(0)\n" if where == "import" else
                    "\n\ndef quits(da_next, dc_next, cache):\n    import sys\n    sys.exit(0)\n")
    function = "lstm_cell_backward" if where == "import" else "quits"
    code, out, err = run(capsys, write(tmp_path, body) + f":{function}")
    assert code == 2 and not out
    assert "sys.exit(0)" in err and "nothing was checked" in err and err.count("\n") == 1


def test_an_exception_at_import_is_one_line_with_its_line(tmp_path, capsys):
    code, out, err = run(capsys, write(tmp_path, "x = 1\ny = 1 / 0\n") + ":f")
    assert code == 2 and not out
    assert "raised ZeroDivisionError (line 2): division by zero" in err and err.count("\n") == 1


def test_an_exception_in_the_call_names_the_function(tmp_path, capsys):
    body = "def f(da_next, dc_next, cache):\n    return {}['dWf']\n"
    code, _, err = run(capsys, write(tmp_path, body) + ":f")
    assert code == 2 and "calling f raised KeyError (line 2)" in err and err.count("\n") == 1


@pytest.mark.parametrize("how, expected", [
    ("import ctypes\n    ctypes.string_at(0)", "crashed (SIGSEGV)"),
    ("import os\n    os._exit(3)", "ended the process with status 3"),
    ("import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)", "crashed (SIGKILL)"),
])
def test_a_crash_is_reported_as_a_crash(tmp_path, capsys, how, expected):
    body = f"def f(da_next, dc_next, cache):\n    {how}\n"
    code, out, err = run(capsys, write(tmp_path, body) + ":f")
    assert code == 2 and not out
    assert expected in err and "while calling f" in err and err.count("\n") == 1


@pytest.mark.parametrize("where", ["call", "import"])
def test_an_endless_loop_is_stopped_and_nothing_is_left_running(tmp_path, capsys, where):
    """The loop also starts a grandchild: killing the child's session ends it too."""
    pids = tmp_path / "pids"
    spin = textwrap.dedent(f"""\
        import os, subprocess, sys
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{sleeper.pid}}")
        while True:
            pass
    """)
    if where == "import":
        body = spin
    else:
        body = "def f(da_next, dc_next, cache):\n" + textwrap.indent(spin, "    ")
    start = time.monotonic()  # 4 s: a loaded machine takes seconds to start the child and its sleeper
    code, out, err = run(capsys, write(tmp_path, body) + ":f", "--timeout", "4")
    assert time.monotonic() - start < 20
    assert code == 2 and not out
    assert "stopped after 4 s (--timeout)" in err and err.count("\n") == 1
    child, sleeper = map(int, pids.read_text().split())
    assert gone(child) and gone(sleeper)


def test_the_timeout_counts_every_call(tmp_path, capsys):
    """Each call is fast, but together they pass the limit (the gate search calls again)."""
    body = RIGHT.replace("    a_next, c_next", "    import time\n    time.sleep(0.4)\n    a_next, c_next")
    body = body.replace('out["dc_prev"] = dc * ft', 'out["dc_prev"] = dc * ft\n    out["dxt"] = 0 * out["dxt"]')
    code, _, err = run(capsys, write(tmp_path, body) + ":lstm_cell_backward", "--timeout", "1")
    assert code == 2 and "stopped after 1 s" in err


def test_the_user_code_prints_do_not_reach_the_report(tmp_path, capfd):
    body = RIGHT + "\nprint('hello from import')\nimport sys\nsys.stdout.flush()\n"
    assert cli.main(["verify-code", write(tmp_path, body) + ":lstm_cell_backward"]) == 0
    out, err = capfd.readouterr()
    assert "hello from import" in err and "hello" not in out


def test_input_reads_as_empty(tmp_path, capsys):
    code, _, err = run(capsys, write(tmp_path, "x = input()\n") + ":f")
    assert code == 2 and "raised EOFError" in err


def test_a_returned_object_travels_as_its_type_name_only(tmp_path, capsys):
    body = "class Grads(dict):\n    pass\n\n\ndef f(da_next, dc_next, cache):\n    return object()\n"
    code, _, err = run(capsys, write(tmp_path, body) + ":f")
    assert code == 2 and "returned object, not a dict of gradients" in err


def test_the_parent_unpickles_plain_data_only():
    evil = pickle.dumps(os.system)
    with pytest.raises(pickle.UnpicklingError, match="not plain data"):
        verify_run._PlainUnpickler(__import__("io").BytesIO(evil)).load()
    assert isinstance(pickle.loads(pickle.dumps(Opaque("x"))), Opaque)


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan", "inf"])
def test_a_bad_timeout_is_one_line(capsys, value):
    with pytest.raises(SystemExit) as stop:
        cli.main(["verify-code", "x.py:f", "--timeout", value])
    _, err = capsys.readouterr()
    assert stop.value.code == 2 and "--timeout" in err and err.count("\n") == 1


def test_help_says_the_file_is_imported_and_run(capsys):
    with pytest.raises(SystemExit):
        cli.main(["verify-code", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "IMPORTS FILE.py, which RUNS its code" in out and "child process" in out and "--timeout" in out


def test_a_missing_function_and_a_missing_file(tmp_path, capsys):
    code, _, err = run(capsys, write(tmp_path, "x = 1\n") + ":f")
    assert code == 2 and "has no function 'f'" in err
    code, _, err = run(capsys, str(tmp_path / "none.py") + ":f")
    assert code == 2 and "no such file" in err


def test_no_child_outlives_the_check(tmp_path):
    child = verify_run.ChildProcess(write(tmp_path, RIGHT))
    child.load(["lstm_cell_backward"])
    pid = child.process.pid
    child.close()
    assert gone(pid)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


# -- loading and exit statuses (issue 19 item 5) ---------------------------------------------
def test_a_sibling_module_of_the_file_can_be_imported(tmp_path, capsys):
    (tmp_path / "lstm_utils.py").write_text("import numpy as np\n\n\ndef dtanh(y):\n    return 1 - y ** 2\n")
    body = "from lstm_utils import *\n" + RIGHT.replace("(1 - cct ** 2)", "dtanh(cct)")
    code, out, _ = run(capsys, write(tmp_path, body) + ":lstm_cell_backward")
    assert code == 0 and "11 of 11 gradients agree" in out


@pytest.mark.parametrize("line, number", [
    ('print "dWf", dWf', 2), ("try:\n    pass\nexcept ValueError, e:\n    pass", 4), ("mode = 0755", 2)])
def test_a_python_2_file_gets_one_line_saying_so(tmp_path, capsys, line, number):
    code, out, err = run(capsys, write(tmp_path, "import numpy as np\n" + line + "\n") + ":f")
    assert code == 2 and not out
    assert "looks like Python 2" in err and f"(line {number})" in err
    assert err.count("\n") == 1


def test_a_signature_that_does_not_fit_says_what_was_expected(tmp_path, capsys):
    code, _, err = run(capsys, write(tmp_path, "def f(dh, cache):\n    return {}\n") + ":f")
    assert code == 2 and err.count("\n") == 1
    assert "f(dh, cache) cannot take the call (too many positional arguments)" in err
    assert "convention ng calls fn(da_next, dc_next, cache) with cache = (a_next, c_next" in err


def test_an_exception_from_a_misread_argument_says_what_was_expected(tmp_path, capsys):
    """The function takes three arguments, but reads the cache as a dict (another convention)."""
    body = "import numpy as np\n\n\ndef f(dh, dc, cache):\n    return {'dWf': np.tanh(cache['Wf'])}\n"
    code, _, err = run(capsys, write(tmp_path, body) + ":f")
    assert code == 2 and "raised TypeError (line 5)" in err and "convention ng calls fn(" in err


def test_exit_0_when_what_is_returned_agrees_and_missing_ones_are_listed(tmp_path, capsys):
    body = RIGHT.replace("    return out", "    del out['dxt'], out['dWo']\n    return out")
    code, out, _ = run(capsys, write(tmp_path, body) + ":lstm_cell_backward")
    assert code == 0 and "9 of 11 gradients agree, 2 not returned" in out
    assert [line.split()[:2] for line in out.splitlines() if "not returned" in line][0] == ["dWo", "missing"]


def test_exit_1_when_one_returned_gradient_is_wrong(tmp_path, capsys):
    body = RIGHT.replace("    return out", "    out['dbf'] = 2 * out['dbf']\n    del out['dxt']\n    return out")
    code, out, _ = run(capsys, write(tmp_path, body) + ":lstm_cell_backward")
    assert code == 1 and "9 of 11 gradients agree, 1 not returned" in out


def test_returning_none_of_the_names_is_a_convention_mismatch(tmp_path, capsys):
    body = "def f(da_next, dc_next, cache):\n    return {'dW': 0, 'db': 0}\n"
    code, out, err = run(capsys, write(tmp_path, body) + ":f")
    assert code == 2 and not out
    assert "returned none of the gradients this convention names (it returned dW, db)" in err
