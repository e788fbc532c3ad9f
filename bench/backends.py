"""Benchmark: the generated PyTorch and JAX modules against what a user of each framework runs instead.

Three tables (issue 18), forward + backward with every gradient (the weights, the inputs, the
initial state), on the CPU, at bench.py's sizes S1-S3 in float64 and float32:

1. ``lstm``: the generated torch module (``emit --lang torch``; also ``kernel="c"`` when the module
   takes it) against ``torch.nn.LSTM`` on the same weights.  Target <= 1.5x (kernel="c": <= 1.0x).
2. cells nn.LSTM cannot run (``lstm-peephole``, ``examples/slstm.toml``): the generated torch module
   against the straightforward PyTorch module (``plain_cells.TorchLoop``: a Python loop over time,
   autograd), eager and under ``torch.compile``.  Target <= 0.6x the eager loop.
3. JAX: the generated module's ``forward`` (custom VJP) against ``jax.grad`` of a plain ``lax.scan``
   forward, both jitted, for lstm and the two cells above.  Target <= 1.0x.

Measured as bench.py measures (interleaved rounds, medians, ``--settle`` and one untimed call before
each timed one, glibc's malloc thresholds fixed); each table's ratios are against its baseline of the
same run.  d_xs of every implementation is compared with the baseline's before timing.

    python bench/backends.py [--tables torch,custom,jax] [--sizes S1,S2,S3] [--repeats N]
                             [--cells lstm-peephole,examples/slstm.toml] [--settle S] [--threads N] [--out FILE]
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import plain_cells  # noqa: E402

import bench  # noqa: E402 - bench.py puts the project on the path
from lstm_symbolic import naming, pipeline  # noqa: E402
from lstm_symbolic.gradcheck import load_module  # noqa: E402
from lstm_symbolic.interop.conventions import from_params  # noqa: E402

TABLES = ("torch", "custom", "jax")
CUSTOM = ("lstm-peephole", "examples/slstm.toml")
TARGETS = {"generated torch": 1.5, "generated torch (kernel=c)": 1.0, "generated torch module": 0.6,
           "generated JAX (jit)": 1.0}


def emitted(cell: str, lang: str, tmp: Path):
    """The module ``emit --lang <lang>`` writes for ``cell`` (a built-in name or a spec file)."""
    loaded = pipeline.load_cell(str(bench.ROOT / cell) if cell.endswith(".toml") else cell)
    (path,) = pipeline.emit(loaded, lang, tmp / lang / loaded.name)
    return loaded.name, load_module(path, f"_bench_{naming.module_name(loaded.name)}_{lang}")


class Problem:
    """The cell's parameters (U(-1/sqrt(H), 1/sqrt(H))), inputs, initial state and output gradient."""

    def __init__(self, params: dict, cell: str, T, B, I, H, dtype):
        rng = np.random.default_rng(0)
        sizes, bound = {"hidden": H, "input": I}, H ** -0.5
        self.cell = cell
        self.params = {n: rng.uniform(-bound, bound, [sizes[s] for s in shape]).astype(dtype)
                       for n, shape in params.items()}
        self.xs = rng.standard_normal((T, B, I)).astype(dtype)
        self.state0 = {s: (0.5 * rng.standard_normal((B, H))).astype(dtype) for s in plain_cells.STATES[cell]}
        if cell == "slstm":  # a normaliser of 1 and a stabiliser of 0, as the sLSTM starts
            self.state0["n"], self.state0["m"] = np.ones((B, H), dtype), np.zeros((B, H), dtype)
        self.d_hs = rng.standard_normal((T, B, H)).astype(dtype)


def torch_run(module, p: Problem, batched_state: bool):
    """forward + backward of a torch module called as ``module(xs, state)``; returns d_xs."""
    import torch  # noqa: PLC0415

    xs = torch.from_numpy(p.xs).requires_grad_()
    states = tuple(torch.from_numpy(s[None] if batched_state else s).requires_grad_() for s in p.state0.values())
    d_hs = torch.from_numpy(p.d_hs)

    def run():
        for t in (xs, *states, *module.parameters()):
            t.grad = None
        out, _ = module(xs, states if len(states) > 1 else states[0])
        out.backward(d_hs)
        return xs.grad.numpy()
    return run


def generated_torch(module_file, **options):
    import torch  # noqa: PLC0415

    def prepare(p: Problem):
        T, B, I = p.xs.shape
        net = getattr(module_file, module_file.MODULE)(I, p.d_hs.shape[2], dtype=torch.from_numpy(p.xs).dtype,
                                                       **options)
        with torch.no_grad():
            for name, value in p.params.items():
                getattr(net, f"{name}_l0").copy_(torch.from_numpy(value))
        return torch_run(net, p, batched_state=True)
    return prepare


def nn_lstm(p: Problem):
    import torch  # noqa: PLC0415

    net = torch.nn.LSTM(p.xs.shape[2], p.d_hs.shape[2], dtype=torch.from_numpy(p.xs).dtype)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in from_params("pytorch", p.params, "lstm").items()})
    return torch_run(net, p, batched_state=True)


def loop(compiled: bool):
    def prepare(p: Problem):
        import torch  # noqa: PLC0415

        module = plain_cells.torch_loop(p.cell, p.params)
        if compiled:
            module.forward = torch.compile(module.forward)
        return torch_run(module, p, batched_state=False)
    return prepare


def jax_generated(module_file):
    import jax  # noqa: PLC0415

    def loss(params, xs, state0, d_hs):
        return (module_file.forward(params, xs, state0)[0] * d_hs).sum()
    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    return lambda p: jax_run(grad, p)


def jax_plain(p: Problem):
    return jax_run(plain_cells.jax_plain_grad(p.cell), p)


def jax_run(grad, p: Problem):
    import jax.numpy as jnp  # noqa: PLC0415

    args = ({n: jnp.asarray(v) for n, v in p.params.items()}, jnp.asarray(p.xs),
            {s: jnp.asarray(v) for s, v in p.state0.items()}, jnp.asarray(p.d_hs))

    def run():
        d_params, d_xs, _ = grad(*args)
        d_xs.block_until_ready()
        return np.asarray(d_xs)
    return run


def tables(args, tmp: Path) -> tuple[list[tuple], list[str]]:
    """[(table, cell, its PARAMS, {implementation: prepare(problem) -> run}, the baseline's name)], notes."""
    out, notes = [], []
    if "torch" in args.tables:
        cell, module = emitted("lstm", "torch", tmp)
        impls = {"torch nn.LSTM": nn_lstm, "generated torch": generated_torch(module)}
        if "kernel" in inspect.signature(getattr(module, module.MODULE)).parameters:
            files = pipeline.emit(cell, "c", tmp / "c" / cell)
            binding = next(f for f in files if f.name == f"{naming.module_name(cell)}_c.py")
            impls["generated torch (kernel=c)"] = generated_torch(module, kernel="c", c_binding=str(binding))
        else:
            notes.append("generated torch (kernel=c): skipped (the emitted module takes no kernel= yet)")
        out.append(("torch", cell, module.PARAMS, impls, "torch nn.LSTM"))
    if "custom" in args.tables:
        for spec in args.cells:
            cell, module = emitted(spec, "torch", tmp)
            impls = {"torch loop (eager)": loop(False), "torch loop (compiled)": loop(True),
                     "generated torch module": generated_torch(module)}
            out.append(("custom", cell, module.PARAMS, impls, "torch loop (eager)"))
    if "jax" in args.tables:
        import jax  # noqa: PLC0415

        jax.config.update("jax_enable_x64", True)  # float64 runs in float64; float32 stays float32
        for spec in ("lstm", *args.cells):
            cell, module = emitted(spec, "jax", tmp)
            impls = {"jax.grad of lax.scan (jit)": jax_plain, "generated JAX (jit)": jax_generated(module)}
            out.append(("jax", cell, module.PARAMS, impls, "jax.grad of lax.scan (jit)"))
    return out, notes


def run_all(args, tmp: Path) -> tuple[list[dict], list[str]]:
    rows = []
    planned, notes = tables(args, tmp)
    for table, cell, params, impls, baseline in planned:
        for size in args.sizes:
            for dtype in bench.DTYPES:
                problem = Problem(params, cell, *bench.SIZES[size], dtype)
                runs = {name: prepare(problem) for name, prepare in impls.items()}
                got = {name: np.asarray(run(), dtype=np.float64) for name, run in runs.items()}
                ref = got[baseline]
                medians = bench.measure(runs, args.repeats, args.settle)
                for name, ms in medians.items():
                    rows.append({"table": table, "cell": cell, "size": size, "shape": list(bench.SIZES[size]),
                                 "dtype": np.dtype(dtype).name, "impl": name, "median_ms": ms,
                                 "ratio": ms / medians[baseline], "baseline": baseline,
                                 "rel_diff_d_xs": float(np.max(np.abs(got[name] - ref)) / np.max(np.abs(ref)))})
                print(f"done: {table} {cell} {size} {np.dtype(dtype).name}", file=sys.stderr)
    return rows, notes


def table_text(rows: list[dict], repeats: int, info: dict) -> str:
    lines = [f"machine: {info['nproc']} cores, {info['cpu']}, Python {info['python']}, torch {info['torch']}, "
             f"jax {info.get('jax', '-')}, threads {info['threads']}, malloc {info['malloc']}",
             f"median of {repeats} interleaved rounds (settle {info['settle_s']} s + one untimed call before each "
             "timed one), ms per forward+backward (all gradients); x base: against the table's baseline", "",
             "| table | cell | size | dtype | implementation | ms | x base | target | max rel diff d_xs |",
             "|---|---|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        target = "base" if r["impl"] == r["baseline"] else f"<= {TARGETS[r['impl']]}" if r["impl"] in TARGETS else ""
        lines.append(f"| {r['table']} | {r['cell']} | {r['size']} | {r['dtype']} | {r['impl']} | "
                     f"{r['median_ms']:.3f} | {r['ratio']:.2f} | {target} | {r['rel_diff_d_xs']:.0e} |")
    return "\n".join(lines)


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tables", default=",".join(TABLES), help="comma-separated subset of " + ",".join(TABLES))
    p.add_argument("--sizes", default=",".join(bench.SIZES), help="comma-separated subset of " + ",".join(bench.SIZES))
    p.add_argument("--cells", default=",".join(CUSTOM), help="the cells nn.LSTM cannot run (tables custom, jax)")
    p.add_argument("--repeats", type=int, default=9, help="rounds per table, cell, size and dtype (default 9)")
    p.add_argument("--settle", type=float, default=0.2, help="as bench.py's --settle (default 0.2 s)")
    p.add_argument("--threads", type=int, help="as bench.py's --threads: OpenMP, OpenBLAS and torch (not JAX)")
    p.add_argument("--out", help="also write the rows as JSON here (not bench/results.json: that is bench.py's)")
    args = p.parse_args(argv)
    args.tables, args.sizes, args.cells = args.tables.split(","), args.sizes.split(","), args.cells.split(",")
    for given, known, what in ((args.tables, TABLES, "table"), (args.sizes, bench.SIZES, "size")):
        unknown = [g for g in given if g not in known]
        if unknown:
            p.error(f"unknown {what} {unknown[0]}: use {', '.join(known)}")
    return args


def main(argv=None) -> int:
    args = parse(argv)
    if args.threads:
        bench.limit_threads(args.threads)
    malloc = bench.fix_malloc()
    with tempfile.TemporaryDirectory() as tmp:
        rows, notes = run_all(args, Path(tmp))
    info = {**bench.machine(), "settle_s": args.settle, "malloc": malloc}
    if "jax" in args.tables:
        import jax  # noqa: PLC0415

        info["jax"] = jax.__version__
    print(table_text(rows, args.repeats, info))
    for note in notes:
        print(f"note: {note}")
    if args.out:
        Path(args.out).write_text(json.dumps({"machine": info, "repeats": args.repeats, "rows": rows,
                                              "notes": notes}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
