"""Gradient checks of a generated module (any language, through the NumPy API).

The dot-product test: for a random direction v, the analytic ⟨∇L, v⟩ must equal the central
difference (L(θ + εv) − L(θ − εv)) / 2ε.  The loss is L = Σ_t ⟨G_t, h_t⟩ + Σ_s ⟨G_s, s_T⟩
with fixed random G, so every gradient path (outputs, final states) is exercised.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

FD_EPS = 1e-6
FD_RTOL = 1e-6  # float64, central differences with ε = 1e-6
EXTRA_SIZE = 3  # a size a cell declares beyond hidden and input (proj), unless given as <size>_size=


def load_module(path: str | Path, name: str | None = None) -> ModuleType:
    """Import a generated module from its file."""
    path = Path(path)
    name = name or f"_lstm_symbolic_{path.stem}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def extra_sizes(module, given: dict | None = None) -> dict[str, int]:
    """``{"proj_size": n}``: the module's sizes beyond hidden and input (as its parameters have them), each
    as ``given`` has it, else :data:`EXTRA_SIZE`."""
    names = dict.fromkeys(a for shape in module.PARAMS.values() for a in shape if a not in ("hidden", "input"))
    return {f"{s}_size": (given or {}).get(f"{s}_size", EXTRA_SIZE) for s in names}


def random_problem(module, *, T=5, B=3, input_size=4, hidden_size=6, seed=0, dtype=np.float64, **extra):
    """Parameters, inputs, initial state and loss weights for a gradient check (``extra``: the module's own
    sizes, ``proj_size=...``; :data:`EXTRA_SIZE` each by default)."""
    rng = np.random.default_rng(seed)
    extra = extra_sizes(module, extra)
    params = module.init_params(input_size, hidden_size, rng=rng, dtype=dtype, **extra)
    n = {"hidden": hidden_size, **{k.removesuffix("_size"): v for k, v in extra.items()}}
    width = {s: n[getattr(module, "STATE_SIZES", {}).get(s, "hidden")] for s in module.STATES}
    xs = rng.standard_normal((T, B, input_size)).astype(dtype)
    state0 = {s: rng.standard_normal((B, width[s])).astype(dtype) * 0.5 for s in module.STATES}
    g_hs = rng.standard_normal((T, B, width[module.STATES[0]])).astype(dtype)
    g_T = {s: rng.standard_normal((B, width[s])).astype(dtype) for s in module.STATES}
    return params, xs, state0, g_hs, g_T


def _loss(module, params, xs, state0, g_hs, g_T) -> float:
    hs, state_T, _ = module.forward(params, xs, state0)
    return float((g_hs * hs).sum() + sum((g_T[s] * state_T[s]).sum() for s in module.STATES))


def check_module(module, *, seed=0, eps=FD_EPS, **sizes) -> dict[str, float]:
    """Relative error of the dot-product test for every parameter, ``xs`` and each ``state0``."""
    params, xs, state0, g_hs, g_T = random_problem(module, seed=seed, **sizes)
    _, _, cache = module.forward(params, xs, state0)
    grads, d_xs, d_state0 = module.backward(params, cache, g_hs, g_T)
    rng = np.random.default_rng(seed + 1)
    errors = {}

    def compare(name, analytic, perturbed):
        v = rng.standard_normal(analytic.shape)
        fd = (perturbed(eps * v) - perturbed(-eps * v)) / (2 * eps)
        errors[name] = abs(fd - float((analytic * v).sum())) / max(abs(fd), 1e-12)

    for name in module.PARAMS:
        compare(name, grads[name],
                lambda dv, n=name: _loss(module, {**params, n: params[n] + dv}, xs, state0, g_hs, g_T))
    compare("xs", d_xs, lambda dv: _loss(module, params, xs + dv, state0, g_hs, g_T))
    for s in module.STATES:
        compare(f"{s}0", d_state0[s],
                lambda dv, s=s: _loss(module, params, xs, {**state0, s: state0[s] + dv}, g_hs, g_T))
    return errors


def main(argv: list[str] | None = None) -> int:
    """``python -m lstm_symbolic.gradcheck MODULE.py``: print the dot-product test per quantity."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m lstm_symbolic.gradcheck GENERATED_MODULE.py", file=sys.stderr)
        return 2
    module = load_module(args[0])
    errors = check_module(module)
    extra = "".join(f", {k.removesuffix('_size')} {v}" for k, v in extra_sizes(module).items())
    print(f"gradient check of {args[0]} (T=5, B=3, input 4, hidden 6{extra}, float64, central differences)")
    for name, err in errors.items():
        print(f"  {name:10} relative error {err:.1e}  {'ok' if err < FD_RTOL else 'FAILED'}")
    worst = max(errors.values())
    print(f"{'PASSED' if worst < FD_RTOL else 'FAILED'}: worst relative error {worst:.1e} (tolerance {FD_RTOL:.0e})")
    return 0 if worst < FD_RTOL else 1


if __name__ == "__main__":
    sys.exit(main())
