"""What every ``verify-code`` path shares: its errors, the report (per quantity ``agrees``, ``wrong``
or ``missing``), the tolerances by dtype, the comparison, and loading the user's file in a child
process with a time limit (:mod:`verify_run`).  The one-function path is :mod:`verify_backward`,
the conventions' is :mod:`verify_calls`.

Arrays hold one example per column: vectors ``(n, batch)``, weights ``(rows, cols)``, biases
``(n, 1)``; weight and bias gradients are summed over the batch.  Unlike formula files, this
runs the user's own code: :func:`load_function` imports the file it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from .run import DEFAULT_TIMEOUT, ChildFunction, ChildProcess

RTOL = 1e-7  # float64, as strict as the exact derivation allows
# The tolerance for the least precise floating dtype the code computes in (returns) or is given:
# about 1e3 machine epsilons of that dtype; correct float32 code stays below 1.3e-6 on 300 draws.
TOLERANCES = {"float64": RTOL, "float32": 1e-4, "float16": 3e-2}
NG_CACHE = ("a_next", "c_next", "a_prev", "c_prev", "ft", "it", "cct", "ot", "xt")


class VerifyCodeError(UserError, ValueError):
    """The backward function cannot be loaded or called."""


@dataclass(frozen=True)
class QuantityCheck:
    name: str
    status: str  # "agrees" | "wrong" | "missing"
    rel_error: float | None
    detail: str


@dataclass(frozen=True)
class BackwardReport:
    checks: tuple[QuantityCheck, ...]
    dtype: str = "float64"  # the dtype the code computed in (the least precise it returned)
    rtol: float = RTOL
    seed: int = 0

    @property
    def ok(self) -> bool:
        """Every gradient is returned and agrees."""
        return all(c.status == "agrees" for c in self.checks)

    @property
    def exit_code(self) -> int:
        """0 when every returned gradient agrees (missing ones are listed, not counted), else 1."""
        return 1 if any(c.status == "wrong" for c in self.checks) else 0

    def __getitem__(self, name: str) -> QuantityCheck:
        return next(c for c in self.checks if c.name == name)

    def text(self) -> str:
        width = max([len(c.name) for c in self.checks] + [8])
        lines = [f"{'quantity':{width}}  {'status':8}  {'rel. error':10}  detail"]
        for c in self.checks:
            err = "-" if c.rel_error is None else f"{c.rel_error:.1e}"
            lines.append(f"{c.name:{width}}  {c.status:8}  {err:10}  {c.detail}".rstrip())
        agree = sum(c.status == "agrees" for c in self.checks)
        missing = sum(c.status == "missing" for c in self.checks)
        what = "values" if any(c.name.endswith("(forward)") for c in self.checks) else "gradients"
        lines.append(f"{agree} of {len(self.checks)} {what} agree"
                     + (f", {missing} not returned" if missing else "")
                     + f" ({self.dtype}, rtol {self.rtol:.0e}, seed {self.seed})")
        return "\n".join(lines) + "\n"


def split_target(target: str) -> tuple[str, str | None]:
    """``FILE.py`` or ``FILE.py:FUNCTION`` → (path, function or None); the file must exist."""
    path, sep, name = target.rpartition(":")
    if not sep or not path.endswith(".py"):
        path, name = target, None
    if not path.endswith(".py") or (name is not None and not name.isidentifier()):
        raise VerifyCodeError(f"'{target}': write FILE.py:FUNCTION, e.g. my_lstm.py:lstm_cell_backward")
    if not Path(path).is_file():
        raise VerifyCodeError(f"no such file: {path}")
    return path, name


def open_child(path: str, timeout: float = DEFAULT_TIMEOUT) -> ChildProcess:
    """A child process that will import ``path`` (use with ``with``)."""
    return ChildProcess(path, timeout)


def load_function(target: str, timeout: float = DEFAULT_TIMEOUT) -> ChildFunction:
    """``path/to/file.py:function`` → that function, imported and run in a child process.

    Importing the file runs its code: that happens in the child, which gets ``timeout`` seconds in
    all.  An exception, ``sys.exit``, a crash or the time limit is a :class:`VerifyCodeError`; the
    result is a :class:`ChildFunction` (close it, or use ``with``, to end the child)."""
    path, name = split_target(target)
    if name is None:
        raise VerifyCodeError(f"'{target}': write FILE.py:FUNCTION, e.g. my_lstm.py:lstm_cell_backward "
                              "(or give a --convention that names the functions)")
    child = ChildProcess(path, timeout)
    try:
        if name not in child.load([name]):
            raise VerifyCodeError(f"{path} has no function '{name}'")
    except BaseException:
        child.close()
        raise
    return ChildFunction(child, name)


def computed_dtype(arrays, given: str) -> str:
    """The least precise of ``given`` and the floating dtypes among ``arrays``."""
    found = {np.asarray(a).dtype.name for a in arrays if isinstance(a, np.ndarray) and a.dtype.kind in "fc"}
    found = {{"complex128": "float64", "complex64": "float32"}.get(d, d) for d in found} | {given}
    return max((d for d in found if d in TOLERANCES), key=TOLERANCES.get)


def rel_error(got, want) -> float | None:
    if got is None:
        return None
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        if got.size != want.size or np.squeeze(got).shape != np.squeeze(want).shape:
            return None
        got = got.reshape(want.shape)
    with np.errstate(all="ignore"):
        err = float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-300))
    return err if np.isfinite(err) else float("inf")
