"""Check a hand-written backward function against the derivation (part of ``verify``).

:func:`check_backward` calls the user's function with random inputs named as in a notation,
computes the right gradients by evaluating the derived formulas in NumPy on the same values,
and reports per quantity: ``agrees``, ``wrong`` (relative error, and which gate's terms
disagree) or ``missing``.  Conventions:

* ``ng`` (the Sequence Models assignment): ``fn(da_next, dc_next, cache)`` with
  ``cache = (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)`` and
  ``parameters = {"Wf", "bf", "Wi", "bi", "Wc", "bc", "Wo", "bo", "Wy", "by"}``; it returns
  a dict with ``dxt, da_prev, dc_prev, dWf, dbf, ...``;
* every notation (and ``convention="kwargs"``): ``fn(**values)`` with every input name of the
  notation as a keyword, returning a dict keyed by the notation's quantity names.

Arrays hold one example per column: vectors ``(n, batch)``, weights ``(rows, cols)``, biases
``(n, 1)``; weight and bias gradients are summed over the batch.  Unlike formula files, this
runs the user's own code: :func:`load_function` imports the file it is given, in a child
process with a time limit (:mod:`verify_run`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy as sp

from .. import naming
from ..core.cells import Cell
from ..core.derive import Derivation, derive, stored_values
from ..core.functions import MatTVec
from ..errors import UserError
from ..spec.builtins import load_cell
from .eval import random_leaves, state_values, user_env
from .names import GATES, Names, is_next_seed, names_for, scalar_by_default
from .run import DEFAULT_TIMEOUT, ChildError, ChildFunction, ChildProcess, Opaque

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


def check_backward(fn, cell: str | Cell = "lstm", notation: str = "ng", *, convention: str | None = None,
                   hidden: int | None = None, input_size: int | None = None, batch: int = 2,
                   seed: int = 0, rtol: float | None = None, dtype: str = "float64") -> BackwardReport:
    """Compare every gradient ``fn`` returns with the derived one (see the module docstring).

    Sizes default to hidden 3, input 4 (1 and 1 for a one-unit notation such as ``gfg``).  The
    inputs are random (``seed``) arrays of ``dtype``; the right values are computed in float64
    from exactly those inputs.  ``rtol`` defaults to :data:`TOLERANCES` of the least precise
    of ``dtype`` and the dtypes of the returned arrays.
    """
    if dtype not in TOLERANCES:
        raise VerifyCodeError(f"dtype '{dtype}': use one of {', '.join(TOLERANCES)}")
    cell = cell if isinstance(cell, Cell) else load_cell(cell, specs=False)
    derivation = derive(cell)
    seeds = {s: str(v) for s, v in derivation.seeds.items()}
    grads = tuple(str(a.name) for a in derivation.adjoints) + tuple(str(g.name) for g in derivation.param_grads)
    names = names_for(notation, cell, seeds, grads)
    convention = convention or ("ng" if notation == "ng" else "kwargs")
    if convention not in ("ng", "kwargs") or (convention == "ng" and notation != "ng"):
        raise VerifyCodeError(f"convention '{convention}': use 'ng' (notation ng) or 'kwargs'")
    one = scalar_by_default(notation)
    sizes = {"hidden": hidden or (1 if one else 3), "input": input_size or (1 if one else 4)}
    leaves = random_leaves(derivation, sizes, np.random.default_rng(seed), exact=False, batch=batch)
    leaves = {k: v.astype(dtype).astype(np.float64) for k, v in leaves.items()}
    values = state_values(derivation, leaves, exact=False)
    run = _Run(fn, names, convention, sizes, derivation, leaves, values, seed, dtype)
    got = run.call(values)
    computed = computed_dtype(got.values(), dtype)
    rtol = TOLERANCES[computed] if rtol is None else rtol
    right = run.right(values)
    checks = [run.check(q, got, right, rtol) for q in run.outputs(got)]
    return BackwardReport(tuple(checks), computed, rtol, seed)


def computed_dtype(arrays, given: str) -> str:
    """The least precise of ``given`` and the floating dtypes among ``arrays``."""
    found = {np.asarray(a).dtype.name for a in arrays if isinstance(a, np.ndarray) and a.dtype.kind in "fc"}
    found = {{"complex128": "float64", "complex64": "float32"}.get(d, d) for d in found} | {given}
    return max((d for d in found if d in TOLERANCES), key=TOLERANCES.get)


@dataclass
class _Run:
    fn: object
    names: Names
    convention: str
    sizes: dict
    derivation: Derivation
    leaves: dict
    values: dict
    seed: int
    dtype: str = "float64"

    def env(self, values: dict) -> dict:
        return user_env(self.names, values, self.sizes, exact=False)

    def call(self, values: dict) -> dict:
        """The user's gradients; it gets copies, so that changing its arguments changes nothing here."""
        env = {str(k): np.array(v, dtype=self.dtype) if isinstance(v, np.ndarray) else v
               for k, v in self.env(values).items()}
        inputs = {k: v for k, v in env.items() if k not in self.names.quantities}
        try:
            if self.convention == "ng":
                got = self.fn(env["da_next"], env["dc_next"], self._ng_cache(env))
            else:
                got = self.fn(**inputs)
        except ChildError as exc:
            if exc.kind not in ("signature", "exception"):
                raise
            raise VerifyCodeError(f"{exc}; {self.expected(inputs)}") from None
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's code: report whatever it raises
            raise VerifyCodeError(f"calling the backward function raised {type(exc).__name__}: {exc}; "
                                  f"{self.expected(inputs)}") from None
        if not isinstance(got, dict):
            kind = got.type_name if isinstance(got, Opaque) else type(got).__name__
            raise VerifyCodeError(f"the backward function returned {kind}, not a dict of gradients; "
                                  f"{self.expected(inputs)}")
        if not set(got) & set(self.names.quantities):
            keys = ", ".join(sorted(got)[:12]) or "nothing"
            raise VerifyCodeError(f"the backward function returned none of the gradients this convention "
                                  f"names (it returned {keys}); {self.expected(inputs)}")
        return got

    def expected(self, inputs: dict) -> str:
        """How the convention calls the function, for a message."""
        outputs = ", ".join(self.outputs({}))
        if self.convention == "ng":
            return (f"convention ng calls fn(da_next, dc_next, cache) with cache = ({', '.join(NG_CACHE)}, "
                    f"parameters) and expects a dict with {outputs}")
        return (f"convention kwargs calls fn(**inputs) with the keywords {', '.join(inputs)} "
                f"and expects a dict with {outputs}")

    def _ng_cache(self, env: dict) -> tuple:
        rng = np.random.default_rng(self.seed + 1)
        params = {k: env[k] for k in ("Wf", "bf", "Wi", "bi", "Wc", "bc", "Wo", "bo")}
        params["Wy"] = rng.normal(size=(2, self.sizes["hidden"])).astype(self.dtype)
        params["by"] = rng.normal(size=(2, 1)).astype(self.dtype)
        return tuple(env[k] for k in NG_CACHE) + (params,)

    def right(self, values: dict) -> dict:
        return {str(k): v for k, v in self.env(values).items()}

    def outputs(self, got: dict) -> list[str]:
        """The notation's quantities the function returns, plus every input and weight gradient."""
        needed = {str(a.name) for a in self.derivation.input_adjoints}
        needed |= {str(g.name) for g in self.derivation.param_grads}
        return [q for q in self.names.quantities
                if q in got or set(self.names.internal(q)) & needed]

    def check(self, name: str, got: dict, right: dict, rtol: float) -> QuantityCheck:
        if name not in got:
            return QuantityCheck(name, "missing", None, "not returned")
        err = rel_error(got[name], right[name])
        if err is None:
            return QuantityCheck(name, "wrong", None, f"shape {np.shape(got[name])}, expected "
                                 f"{np.shape(right[name])}")
        if err <= rtol:
            return QuantityCheck(name, "agrees", err, "")
        return QuantityCheck(name, "wrong", err, self._rounding(err) or self._detail(name, got[name], rtol))

    def _rounding(self, err: float) -> str:
        """A hint when the error is the size of float32 rounding, in a float64 check."""
        if self.dtype == "float64" and err <= TOLERANCES["float32"]:
            return "within float32 rounding: if the code computes in float32, pass --dtype float32"
        return ""

    def _detail(self, name: str, value, rtol: float) -> str:
        """What the wrong gradient matches instead, or which gate's terms disagree."""
        right = self.right(self.values)[name]
        if np.ndim(right) == 2 and _close(np.transpose(value), right, rtol):
            return "is transposed"
        nexts = [k for k in self.leaves if is_next_seed(k)]
        last = state_values(self.derivation, {**self.leaves, **{k: self.leaves[k] * 0 for k in nexts}},
                            exact=False)
        if nexts and _close(value, self.right(last)[name], rtol):
            seeds = ", ".join(self.names.user().get(k, k) for k in nexts)
            return f"right only when {seeds} = 0: forgets the gradient from step t+1"
        return self._gates(name, rtol)

    def _gates(self, name: str, rtol: float) -> str:
        """The gate in the name, or the gates whose terms disagree when one gate's weights are
        kept at a time (the cached forward values stay as they are)."""
        parts = self.names.internal(name)
        own = sorted({_gate(p) for p in parts} - {None})
        if own:
            described = ", ".join(_describe_gate(self.derivation.cell, self.names, g) for g in own)
            return f"{described} terms disagree"
        if not any(self._table[p].has(MatTVec) for p in parts if p in self._table):
            return ""
        bad = []
        for g in _gates_of(self.derivation.cell):
            values = self._only_gate(g)
            if (err := rel_error(self.call(values).get(name), self.right(values)[name])) is None or err > rtol:
                bad.append(g)
        if not bad:
            return "no single gate: the error is in the part shared by every gate"
        described = ", ".join(_describe_gate(self.derivation.cell, self.names, g) for g in bad)
        return f"{described} terms disagree"

    @property
    def _table(self) -> dict:
        return {str(a.name): a.rhs for a in self.derivation.adjoints}

    def _only_gate(self, gate: str) -> dict:
        weights = [q.name for q in self.derivation.cell.params if len(q.shape) == 2]
        zeroed = {w: self.leaves[w] * 0 for w in weights if _gate(w) != gate}
        forward = {eq.lhs.name: self.values[eq.lhs.name] for eq in self.derivation.cell.equations}
        return state_values(self.derivation, {**self.leaves, **zeroed, **forward}, exact=False)


def _gate(name: str) -> str | None:
    """``W_f``, ``d_U_f``, ``d_z_f``, ``d_b_f`` → ``f``."""
    base = naming.primal(name)
    head, _, gate = base.partition("_")
    return gate if head in ("W", "U", "b", "z") and gate else None


def _gates_of(cell: Cell) -> list[str]:
    return list(dict.fromkeys(g for q in cell.params if (g := _gate(q.name))))


def _describe_gate(cell: Cell, names: Names, gate: str) -> str:
    back = names.user()
    out = next((v.name for f, v in stored_values(cell).items() if f.args[0] == sp.Symbol(f"z_{gate}")), None)
    label = GATES.get(gate, f"gate {gate}")
    return f"{label} ({back.get(out, out)})" if out else label


def _close(got, want, rtol: float) -> bool:
    err = rel_error(got, want)
    return err is not None and err <= rtol


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
