"""Run a user's file in a child process with a time limit (the parent side of :mod:`verify_child`).

:class:`ChildProcess` starts the child in its own session and sends it requests; every wait for an
answer counts against one budget (``timeout`` seconds in all).  When the budget runs out the whole
session is killed, so nothing the user's code started is left behind.  Whatever goes wrong on the
child's side becomes one :class:`ChildError` that says what happened: an exception (with its line),
``sys.exit``, a crash (a signal or ``os._exit``), or the time limit.  Nothing the child sends is
trusted: answers are unpickled with a loader that builds only plain data and NumPy arrays.
"""

from __future__ import annotations

import io
import os
import pickle
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..errors import UserError
from .child import HEADER, Opaque, Ref, write_message

DEFAULT_TIMEOUT = 60.0
MAX_ANSWER = 1 << 30  # bytes

__all__ = ["DEFAULT_TIMEOUT", "ChildError", "ChildFunction", "ChildProcess", "Opaque", "Ref"]

_BOOT = """\
import sys
added = {folder!r} not in sys.path
if added:
    sys.path.insert(0, {folder!r})
from lstm_symbolic.verify.child import main
if added:
    sys.path.remove({folder!r})
if sys.path and sys.path[0] == "":
    del sys.path[0]
main()
"""

_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("lstm_symbolic.verify.child", "Opaque"), ("builtins", "complex"),
}


class ChildError(UserError, ValueError):
    """The user's code could not be loaded or run to the end: one line saying what happened.
    ``kind`` is the child's (``exception``, ``signature``, ``exit``, ``syntax``) or ``process``."""

    def __init__(self, message: str, kind: str = "process"):
        super().__init__(message)
        self.kind = kind


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not plain data")
        return super().find_class(module, name)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class ChildProcess:
    """One child running one user file; use as a context manager (it is killed on exit)."""

    def __init__(self, path: str, timeout: float = DEFAULT_TIMEOUT):
        if not timeout > 0:
            raise ChildError(f"--timeout must be a positive number of seconds, not {timeout}")
        self.path = path
        self.budget = float(timeout)
        self.timeout = float(timeout)
        self._closed = False
        folder = str(Path(__file__).resolve().parents[2])
        self.process = subprocess.Popen(
            [sys.executable, "-c", _BOOT.format(folder=folder)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Kill the child's whole session (anything the user's code started), then reap it."""
        if self._closed:
            return
        self._closed = True
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.process.wait()

    def __del__(self):
        if getattr(self, "process", None) is not None:
            self.close()

    def load(self, functions: list[str]) -> list[str]:
        """Import the file in the child; the names among ``functions`` that it defines as callables."""
        return self.answer({"op": "load", "path": self.path, "functions": functions}, f"importing {self.path}")["found"]

    def call(self, function: str, *args, keep: str | None = None, **kwargs):
        """Call one of the file's functions; its result as plain data (see :mod:`verify_child`)."""
        message = {"op": "call", "function": function, "args": list(args), "kwargs": kwargs, "keep": keep}
        return self.answer(message, f"calling {function}")["value"]

    def answer(self, message: dict, doing: str) -> dict:
        reply = self.request(message, doing)
        if not reply.get("ok"):
            raise ChildError(failure_message(self.path, reply, doing), reply["kind"])
        return reply

    def request(self, message: dict, doing: str) -> dict:
        """Send one request and wait for its answer; ``doing`` names it in errors ("calling f")."""
        try:
            write_message(self.process.stdin, message)
        except (BrokenPipeError, OSError):
            raise self._died(doing) from None
        except (pickle.PicklingError, TypeError) as exc:
            raise ChildError(f"cannot send the arguments for {doing}: {exc}") from None
        header = self._read(HEADER.size, doing)
        size = HEADER.unpack(header)[0]
        if size > MAX_ANSWER:
            self.close()
            raise ChildError(f"{self.path}: {doing} returned more than {MAX_ANSWER >> 20} MB")
        try:
            return _PlainUnpickler(io.BytesIO(self._read(size, doing))).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError) as exc:
            raise ChildError(f"{self.path}: {doing} returned something that is not plain data ({exc})") from None

    def _read(self, size: int, doing: str) -> bytes:
        fd = self.process.stdout.fileno()
        chunks, got = [], 0
        while got < size:
            start = time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(self.budget, 0))
            self.budget -= time.monotonic() - start
            if not ready:
                self.close()
                raise ChildError(f"{self.path}: stopped after {self.timeout:g} s (--timeout) while {doing}: "
                                 "the code did not finish (an endless loop, or too slow)")
            chunk = os.read(fd, min(size - got, 1 << 20))
            if not chunk:
                raise self._died(doing)
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _died(self, doing: str) -> ChildError:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        self.close()
        if code is not None and code < 0:
            how = f"crashed ({_signal_name(-code)})"
        elif code is not None:
            how = f"ended the process with status {code} (os._exit or a crash in compiled code)"
        else:
            how = "closed its pipe"
        return ChildError(f"{self.path}: the process running it {how} while {doing}: nothing was checked")


class ChildFunction:
    """One function of the user's file, called in its child: ``fn(*args, **kwargs)`` gives the result
    as plain data.  Owns the child: close it (or use ``with``) when done."""

    def __init__(self, child: ChildProcess, name: str):
        self.child, self.name = child, name

    def __call__(self, *args, **kwargs):
        return self.child.call(self.name, *args, **kwargs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.child.close()


_PYTHON2 = ("Missing parentheses in call to", "multiple exception types must be parenthesized",
            "leading zeros in decimal integer literals", "invalid hexadecimal literal")


def failure_message(path: str, reply: dict, doing: str) -> str:
    """One line for a failure the child reported (see :mod:`verify_child`)."""
    line = f" (line {reply['line']})" if reply.get("line") else ""
    if reply["kind"] == "exit":
        return (f"{path}: the code called sys.exit({reply['message']}) while {doing}: "
                "nothing was checked (verify-code never counts an exit as agreement)")
    if reply["kind"] == "syntax" and any(reply["message"].startswith(m) for m in _PYTHON2):
        return (f"{path}{line} looks like Python 2 ({reply['message']}); verify-code runs Python 3: "
                "port the file first (e.g. with 2to3)")
    if reply["kind"] == "signature":
        return f"{path}: {reply['signature']} cannot take the call ({reply['message']})"
    if reply["kind"] == "syntax":
        return f"{path}{line}: {reply['type']}: {reply['message']}"
    if reply["where"] == "import":
        return f"{doing} raised {reply['type']}{line}: {reply['message']}"
    return f"{path}: {doing} raised {reply['type']}{line}: {reply['message']}"
