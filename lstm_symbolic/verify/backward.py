"""The one-function path of ``verify-code``: :func:`check_backward` calls one backward function
with every input of a notation (part of ``verify``).

Conventions: ``ng`` (the Sequence Models assignment): ``fn(da_next, dc_next, cache)`` with
``cache = (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)`` and
``parameters = {"Wf", "bf", "Wi", "bi", "Wc", "bc", "Wo", "bo", "Wy", "by"}``, returning a dict
with ``dxt, da_prev, dc_prev, dWf, dbf, ...``; every notation (and ``convention="kwargs"``):
``fn(**values)`` with every input name of the notation as a keyword, returning a dict keyed by
the notation's quantity names.  A wrong gradient is explained by the same diagnoses as the
convention path (:class:`verify_explain.StepDiagnosis`: planted-mistake variants, a transpose,
a forgotten or early-taken carried gradient), then by the gates whose terms disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from .. import naming
from ..core.cells import Cell
from ..core.derive import Derivation, derive, stored_values
from ..core.functions import MatTVec
from ..errors import UserError
from ..spec.builtins import load_cell
from .code import NG_CACHE, TOLERANCES, BackwardReport, QuantityCheck, VerifyCodeError, computed_dtype, rel_error
from .convention import Convention
from .eval import random_leaves, state_values, user_env
from .explain import StepDiagnosis
from .layout import Setup
from .names import GATES, Names, names_for, scalar_by_default
from .run import ChildError, Opaque


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
        """What the wrong gradient matches instead (the convention path's diagnoses), or which
        gate's terms disagree."""
        setup = Setup(Convention(self.convention, self.derivation.cell.name, "columns", ()), self.derivation,
                      self.sizes, self.dtype, self.seed)
        diagnosis = StepDiagnosis(setup, self.leaves, self.values, items=self.right, names=self.names)
        return diagnosis.explain(name, value, rtol) or self._gates(name, rtol)

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



