"""The child process that runs a user's code for ``verify-code`` (the only place user code runs).

:mod:`verify_run` starts it as ``python -c`` with this module's folder's parent on the path, in its
own session, and speaks to it over its standard input and output: each message is a pickle preceded
by its length (8 bytes, big-endian).  Requests are dicts:

* ``{"op": "load", "path": FILE, "functions": [NAME, ...]}`` imports FILE (its folder first on
  ``sys.path``, as ``python FILE`` would) and answers which of the names are callables;
* ``{"op": "call", "function": NAME, "args": [...], "kwargs": {...}, "keep": KEY or None}`` calls one,
  answers its result as plain data (arrays, numbers, lists, dicts; anything else as :class:`Opaque`)
  and, with ``keep``, holds the real result so that later arguments can name it with :class:`Ref`.

Every answer is ``{"ok": True, ...}`` or ``{"ok": False, "kind": "exception" | "exit" | "syntax",
"where": "import" | "call", "type": ..., "message": ..., "line": ...}``.  The user's own prints go to
standard error, so they cannot break the protocol; its standard input reads as empty.

Imports nothing from the package: the child starts fast and knows nothing of derivations.
"""

from __future__ import annotations

import inspect
import os
import pickle
import struct
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

HEADER = struct.Struct(">Q")


@dataclass(frozen=True)
class Ref:
    """An argument standing for a result the child kept: ``kept[key]``, then each index of ``path``."""

    key: str
    path: tuple = ()


@dataclass(frozen=True)
class Opaque:
    """A returned value that is not plain data: only its type's name travels."""

    type_name: str


def write_message(stream, message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(data)) + data)
    stream.flush()


def _read_exact(stream, size: int) -> bytes | None:
    data = stream.read(size)
    return data if data is not None and len(data) == size else None


def read_request(stream):
    header = _read_exact(stream, HEADER.size)
    if header is None:
        return None
    body = _read_exact(stream, HEADER.unpack(header)[0])
    return None if body is None else pickle.loads(body)  # noqa: S301 - from the parent process


def plain(value, depth: int = 0):
    """The value as data the parent can read without running anything: arrays, numbers, strings,
    lists, dicts with string keys; anything else (or nested too deep) becomes :class:`Opaque`."""
    if depth > 20:
        return Opaque(type(value).__name__)
    if value is None or isinstance(value, (bool, int, float, complex, str)):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, depth + 1) for v in value]
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, (numpy.ndarray, numpy.generic)):
        array = numpy.asarray(value)
        if array.dtype.kind in "biufc":
            return numpy.array(array, copy=True)
        return Opaque(f"array of {array.dtype}")
    return Opaque(type(value).__name__)


class Child:
    def __init__(self):
        self.module = None
        self.kept = {}

    def load(self, path: str, functions: list[str]) -> dict:
        folder = str(Path(path).resolve().parent)
        sys.path.insert(0, folder)
        sys.argv = [path]
        import importlib.util  # noqa: PLC0415 - only the child needs it

        spec = importlib.util.spec_from_file_location(f"_lstm_symbolic_user_{Path(path).stem}", path)
        self.module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = self.module
        spec.loader.exec_module(self.module)
        found = [name for name in functions if callable(getattr(self.module, name, None))]
        return {"ok": True, "found": found}

    def resolve(self, value):
        if isinstance(value, Ref):
            kept = self.kept[value.key]
            for index in value.path:
                kept = kept[index]
            return kept
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.resolve(v) for v in value)
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        return value

    def call(self, function: str, args, kwargs, keep) -> dict:
        fn = getattr(self.module, function)
        args, kwargs = self.resolve(args), self.resolve(kwargs)
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):  # no signature to read (a builtin): just call it
            signature = None
        if signature is not None:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as exc:
                return {"ok": False, "kind": "signature", "where": "call", "type": "TypeError",
                        "message": str(exc), "signature": f"{function}{signature}"}
        result = fn(*args, **kwargs)
        if keep:
            self.kept[keep] = result
        return {"ok": True, "value": plain(result)}


def _failure(exc: BaseException, where: str, path: str | None) -> dict:
    if isinstance(exc, SystemExit):
        return {"ok": False, "kind": "exit", "where": where, "type": "SystemExit", "message": repr(exc.code)}
    line = None
    if isinstance(exc, SyntaxError):
        return {"ok": False, "kind": "syntax", "where": where, "type": type(exc).__name__,
                "message": str(exc.msg), "line": exc.lineno}
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if path and Path(f.filename) == Path(path)]
    if mine or frames:
        line = (mine or frames)[-1].lineno
    return {"ok": False, "kind": "exception", "where": where, "type": type(exc).__name__,
            "message": str(exc)[:2000], "line": line}


def serve(requests, replies) -> None:
    child, path = Child(), None
    while (request := read_request(requests)) is not None:
        where = "import" if request["op"] == "load" else "call"
        try:
            if request["op"] == "load":
                path = request["path"]
                reply = child.load(request["path"], request["functions"])
            else:
                reply = child.call(request["function"], request.get("args", []), request.get("kwargs", {}),
                                   request.get("keep"))
        except BaseException as exc:  # noqa: BLE001 - the user's code: report whatever it raises
            reply = _failure(exc, where, path)
        try:
            write_message(replies, reply)
        except (pickle.PicklingError, TypeError, ValueError, RecursionError) as exc:
            write_message(replies, {"ok": False, "kind": "exception", "where": where, "type": type(exc).__name__,
                                    "message": f"the result cannot be sent back: {exc}"})


def main() -> None:
    """Keep the protocol's pipes to ourselves: fd 1 becomes stderr, fd 0 reads as empty."""
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdout = os.fdopen(1, "w", closefd=False)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    serve(requests, replies)
