"""The Python side of every generated C kernel, shipped next to it: what each cell's `<cell>_c.py` shares.

Written once, for every cell: a cell's binding is a ``Binding(its file, its C prefix, PARAMS, STATES, blocks)``
(see the cell's `<cell>_c.py`, which loads this file by path from its own folder).  Standalone: NumPy,
ctypes, the standard library, the system C compiler, and lsym_checks.py (the argument checks, the same text
as the NumPy module's) from this folder.

Building: a cell's C (its kernel and the runtime beside it) is compiled into a cache folder keyed by the
hash of the sources and the flags: $LSTM_SYMBOLIC_CACHE, else $XDG_CACHE_HOME/lstm_symbolic, else
~/.cache/lstm_symbolic.  The compiler is $CC, else cc, gcc or clang.  $LSTM_SYMBOLIC_BLAS chooses the matrix
products of calls too small to pack the weights: "auto" (default: the system's OpenBLAS, else the
scipy-openblas32 wheel's when it is installed, else another CBLAS, else the portable loops), "none",
"scipy-openblas32", or linker flags for a CBLAS (e.g. "-lmkl_rt"); $LSTM_SYMBOLIC_CFLAGS adds compiler flags;
$LSTM_SYMBOLIC_OPENMP: "auto" (default: -fopenmp where the compiler has it) or "none".

Memory: a call given ``workspace=Workspace()`` writes its outputs into that workspace's buffers (reused by
its next call of the same pass and sizes, which overwrites them) and its scratch there; a call without one
returns fresh arrays and uses a scratch buffer of the calling thread.  See docs/generated.md.
"""

import ctypes
import hashlib
import importlib.util
import operator
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np


def load_sibling(path):
    """The module at ``path``, loaded once per (resolved path, contents) under a name made of both: two folders
    with different copies never meet in sys.modules, and sys.path is left alone."""
    path = Path(path).resolve()
    digest = hashlib.sha256(str(path).encode() + b"\0" + path.read_bytes()).hexdigest()
    key = f"_{path.stem}_{digest[:16]}"
    module = sys.modules.get(key)
    if module is None:
        spec = importlib.util.spec_from_file_location(key, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module = sys.modules.setdefault(key, module)
    return module


_checks = load_sibling(Path(__file__).with_name("lsym_checks.py"))
ArgumentError = _checks.ArgumentError

# -ffast-math lets GCC call glibc's vector tanh/exp (libmvec) in the element-wise loops; the object is
# linked in a second step without it, so the library does not switch the process to flush-to-zero.
# -march=native, then -fopenmp, are dropped where the compiler refuses them (see _variants).
_FLAGS = ["-O3", "-std=c99", "-fPIC", "-ffast-math"]
_BLAS = [["-DLSTM_USE_CBLAS", "-DLSTM_OPENBLAS", "-lopenblas"], ["-DLSTM_USE_CBLAS", "-lcblas"],
         ["-DLSTM_USE_CBLAS", "-lblas"]]
_P = ctypes.c_void_p


class BuildError(RuntimeError):
    """The C sources do not compile here, or there is no C compiler."""


def _cache_root():
    root = os.environ.get("LSTM_SYMBOLIC_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "lstm_symbolic"


def _compiler():
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc.split()[0]):
            return cc.split()
    raise BuildError("no C compiler found: install gcc (apt-get install gcc) or set CC")


def _scipy_openblas():
    """Flags for the OpenBLAS of the scipy-openblas32 wheel (its symbols are prefixed scipy_), or []."""
    try:
        import scipy_openblas32 as wheel  # noqa: PLC0415 - optional
    except ImportError:
        return []
    lib_dir = wheel.get_lib_dir()
    return [["-DLSTM_USE_CBLAS", "-DLSTM_OPENBLAS", "-DLSTM_SCIPY_OPENBLAS", f"-I{wheel.get_include_dir()}",
             f"-L{lib_dir}", f"-l{wheel.get_library()}", f"-Wl,-rpath,{lib_dir}"]]


def _variants():
    extra = os.environ.get("LSTM_SYMBOLIC_CFLAGS", "").split()
    choice = os.environ.get("LSTM_SYMBOLIC_BLAS", "auto").strip()
    if choice == "none":
        blas = [[]]
    elif choice == "scipy-openblas32":
        blas = _scipy_openblas()
        if not blas:
            raise BuildError("LSTM_SYMBOLIC_BLAS=scipy-openblas32, but that wheel is not installed "
                             "(pip install scipy-openblas32)")
    elif choice != "auto":
        blas = [["-DLSTM_USE_CBLAS"] + (["-DLSTM_OPENBLAS"] if "-lopenblas" in choice.split() else []) + choice.split()]
    else:
        blas = _BLAS[:1] + _scipy_openblas() + _BLAS[1:] + [[]]
    omp = [[]] if os.environ.get("LSTM_SYMBOLIC_OPENMP", "auto").strip() == "none" else [["-fopenmp"], []]
    return [native + threads + flags + extra for flags in blas for threads in omp
            for native in (["-march=native"], [])]


def _compile(cc, flags, folder, sources, lib):
    """Compile ``sources`` (in ``folder``) into ``lib``; return None, or the compiler's last line of complaint."""
    lib.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=lib.parent, suffix=".so")
    os.close(fd)
    objs = [f"{tmp[:-3]}.{k}.o" for k in range(len(sources))]
    links = [f for f in flags if f.startswith(("-l", "-L", "-Wl,")) or f == "-fopenmp"]
    defines = [f for f in flags if f not in links or f == "-fopenmp"]
    # -iquote: the cell's headers are found by #include "...", and cannot hide a system header (a cell named math)
    steps = [cc + _FLAGS + defines + ["-iquote", str(folder), "-c", str(folder / src), "-o", obj]
             for src, obj in zip(sources, objs, strict=True)]
    steps.append(cc + ["-shared", *objs, "-o", tmp] + links + ["-lm"])
    try:
        for cmd in steps:
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                lines = (done.stderr or done.stdout).strip().splitlines()
                errors = [line for line in lines if "error" in line] or lines
                return errors[0].strip() if errors else f"{cc[0]} exited with {done.returncode}"
        os.replace(tmp, lib)
        return None
    finally:
        for leftover in (*objs, tmp):
            if os.path.exists(leftover):
                os.unlink(leftover)


def build(folder, prefix, sources):
    """The shared library of the C files ``sources`` in ``folder``: from the cache, or compiled now (the first
    variant that builds).  The key hashes them, the cell's header and every runtime file (lsym_*) beside them."""
    folder = Path(folder)
    cc = _compiler()
    runtime = sorted(p.name for p in folder.glob("lsym_*") if p.suffix in (".c", ".h", ".inc"))
    names = list(dict.fromkeys([*sources, f"{prefix}.h", *runtime]))
    text = b"".join(name.encode() + b"\0" + (folder / name).read_bytes() for name in names if (folder / name).exists())
    error = None
    for flags in _variants():
        key = hashlib.sha256(text + repr((cc, _FLAGS, flags, sources)).encode()).hexdigest()[:20]
        lib = _cache_root() / key / f"lib{prefix}.so"
        if lib.exists():
            return lib
        if (lib.parent / "failed").exists():
            error = (lib.parent / "failed").read_text().strip()
            continue
        try:
            error = _compile(cc, flags, folder, sources, lib)
            if error is None:
                return lib
            (lib.parent / "failed").write_text(error + "\n")
        except OSError as exc:
            raise BuildError(f"cannot write the build cache {lib.parent}: {exc.strerror or exc}; "
                             "set LSTM_SYMBOLIC_CACHE to a writable folder") from None
    raise BuildError(f"cannot build {sources[0]} with {' '.join(cc)}: {error}")


def _addr(a):
    """The address of a C-contiguous array's first element: asking a writable buffer is three times
    cheaper than building ``__array_interface__`` (the fallback: read-only or empty arrays)."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(a))
    except (TypeError, ValueError, BufferError):
        return a.__array_interface__["data"][0]


class _Layout:
    """Per (cell, dtype, sizes): where each output lies in the output buffer of a forward (hs | states |
    cache) and of a backward (gradients | d_xs | d_state0), and the scratch the C asks for (n_work reals)."""

    def __init__(self, dtype, axes, n_states, n_work, n_cache, T, B, D, H):
        self.dtype, self.n_work = dtype, n_work
        BH, TBH = B * H, T * B * H
        self.state_shape, self.hs_shape, self.xs_shape = (B, H), (T, B, H), (T, B, D)
        self.n_state, self.n_hs, self.n_xs = BH, TBH, T * B * D
        self.state_offs = [TBH + k * BH for k in range(n_states)]
        self.saved_off = TBH + n_states * BH
        self.n_fwd = self.saved_off + n_cache
        self.grad_offs, o, runs = [], 0, []  # runs: consecutive parameters of one shape, one view split along axis 0
        for shape in (tuple(H if s == "hidden" else D for s in names) for names in axes):
            self.grad_offs.append(o)
            if runs and runs[-1][2] == shape:
                runs[-1][0] += 1
            else:
                runs.append([1, o, shape])
            o += int(np.prod(shape))
        self.grad_runs = [(start, start + n * int(np.prod(shape)), (n,) + shape) for n, start, shape in runs]
        self.dxs_off, self.dstate_offs = o, [o + T * B * D + k * BH for k in range(n_states)]
        self.n_bwd = o + T * B * D + n_states * BH


class _Outputs:
    """The output buffer of a call and the arrays the call returns, all views of it, with the address tables
    the C reads and writes through.  A workspace keeps one per pass and hands it to its next call of the same
    sizes (``stamp`` counts the calls that wrote it); a call without a workspace makes its own."""

    def __init__(self, lay, n_params, n_states, forward):
        self.lay, self.stamp = lay, 0
        self.buf = buf = np.empty(lay.n_fwd if forward else lay.n_bwd, dtype=lay.dtype)
        item, base = lay.dtype.itemsize, _addr(buf)
        self.lo, self.hi = base, base + buf.nbytes
        self.states_in = (_P * n_states)()  # the addresses of state0 / d_state_T during a call
        at = lambda o: buf[o:o + lay.n_state].reshape(lay.state_shape)  # noqa: E731
        if forward:
            self.hs, self.states = buf[:lay.n_hs].reshape(lay.hs_shape), tuple(map(at, lay.state_offs))
            self.saved, self.saved_addr = buf[lay.saved_off:], base + lay.saved_off * item
            self.states_out = (_P * n_states)(*(base + o * item for o in lay.state_offs))
        else:
            self.grads = tuple(g for start, stop, shape in lay.grad_runs for g in buf[start:stop].reshape(shape))
            self.d_xs = buf[lay.dxs_off:lay.dxs_off + lay.n_xs].reshape(lay.xs_shape)
            self.d_state0 = tuple(map(at, lay.dstate_offs))
            self.ptrs = (_P * (n_params + n_states))(*(base + o * item for o in lay.grad_offs + lay.dstate_offs))
            self.grads_addr = ctypes.addressof(self.ptrs)
            self.dstate_addr = self.grads_addr + n_params * ctypes.sizeof(_P)
            self.dxs_addr = base + lay.dxs_off * item


class Workspace:
    """Memory reused by the calls it is passed to (``forward(..., workspace=ws)``): the C's scratch, and the
    outputs of the last forward and of the last backward.  A call given a workspace returns views of its
    buffers: the next forward (backward) with it, of the same sizes, overwrites what the last one returned;
    backward refuses a cache whose arrays a later forward has overwritten.  Inputs that lie in the buffer a
    call writes (a state or d_state from the last call) are copied first.  One workspace serves one call
    at a time: give each thread its own.  clear() lets go of everything it holds."""

    __slots__ = ("_scratch", "_fwd", "_bwd", "_tables")

    def __init__(self):
        self.clear()

    def clear(self):
        self._scratch, self._tables, self._fwd, self._bwd = {}, {}, None, None

    @property
    def nbytes(self):
        """The bytes it holds (scratch and outputs)."""
        held = [w for w, _ in self._scratch.values()] + [o.buf for o in (self._fwd, self._bwd) if o is not None]
        return sum(a.nbytes for a in held)

    def _work(self, dtype, n):
        """The address of a scratch buffer of at least n reals of dtype (grown when needed)."""
        entry = self._scratch.get(dtype)
        if entry is None or entry[0].size < n:
            work = np.empty(max(n, 1), dtype=dtype)
            entry = self._scratch[dtype] = (work, _addr(work))
        return entry[1]

    def _outputs(self, lay, n_params, n_states, forward):
        out = self._fwd if forward else self._bwd
        if out is not None and out.lay is lay:
            out.stamp += 1
            return out
        out = _Outputs(lay, n_params, n_states, forward)
        if forward:
            self._fwd = out
        else:
            self._bwd = out
        return out

    def _table(self, given, dtype):
        """The address of the table of the addresses of ``given``, the checked parameters.  Kept while the
        same contiguous arrays of the right dtype come back (a training loop updating them in place);
        converted copies never are: (address, what the caller keeps alive for the call)."""
        hit = self._tables.get(dtype)
        if hit is not None and all(map(operator.is_, given, hit[0])):
            return hit[2], None
        arrays = [np.ascontiguousarray(a, dtype=dtype) for a in given]
        table = np.asarray([_addr(a) for a in arrays], dtype=np.uintp)
        if all(a is b for a, b in zip(arrays, given, strict=True)):
            self._tables[dtype] = (given, table, _addr(table))
            return _addr(table), None
        self._tables.pop(dtype, None)
        return _addr(table), (table, arrays)


_THREAD = threading.local()  # .ws: the scratch of the calling thread's calls without a workspace


def _own():
    ws = getattr(_THREAD, "ws", None)
    if ws is None:
        ws = _THREAD.ws = Workspace()
    return ws


def release_buffers():
    """Let go of the scratch kept for the calling thread's calls without a workspace."""
    _THREAD.ws = None


def _refuse_workspace(where, ws):
    what = "the Workspace of another folder's binding" if type(ws).__name__ == "Workspace" else _checks._kind(ws)
    raise ArgumentError(f"{where}: workspace is {what}; expected a Workspace of this module, or None")


class Binding:
    """One cell's C, built and loaded, and the calls of its Python API (see the cell's `<cell>_c.py`)."""

    def __init__(self, file, prefix, params, states, blocks, sources=None):
        self.params, self.states, self.names = dict(params), tuple(states), tuple(params)
        self.checks = checks = _checks._Checks(params, states, blocks)
        self._forward_args, self._backward_args, self._cache = checks.forward_args, checks.backward_args, checks.cache
        folder = Path(file).resolve().parent
        self.lib = lib = ctypes.CDLL(str(build(folder, prefix, tuple(sources or (f"{prefix}.c",)))))
        fn = lambda name: getattr(lib, f"{prefix}_{name}")  # noqa: E731
        ints = [ctypes.c_int] * 4
        self._work_size, self._cache_size = fn("workspace_size"), fn("cache_size")
        for size in (self._work_size, self._cache_size):
            size.argtypes, size.restype = ints, ctypes.c_size_t
        fn("uses_cblas").restype = ctypes.c_int
        self.uses_cblas = bool(fn("uses_cblas")())
        self.threads = fn("threads")  # threads(B, H): the threads of the time loop at batch B, hidden size H
        self.threads.argtypes, self.threads.restype = [ctypes.c_int] * 2, ctypes.c_int
        self._funcs = {}  # dtype: (forward, backward, step_forward, step_backward), addresses as Python ints
        for dtype, sfx in ((np.dtype(np.float64), "f64"), (np.dtype(np.float32), "f32")):
            fns = tuple(fn(f"{name}_{sfx}") for name in ("forward", "backward", "step_forward", "step_backward"))
            for f, n_ints, n_ptrs in zip(fns, (4, 4, 3, 3), (7, 9, 6, 8), strict=True):
                f.argtypes, f.restype = ints[:n_ints] + [_P] * n_ptrs, None
            self._funcs[dtype] = fns
        self._layouts, self._np, self._ns = {}, len(self.names), len(self.states)

    def _layout(self, dtype, sizes):
        lay = self._layouts.get((dtype, *sizes))
        if lay is None:
            lay = _Layout(dtype, self.params.values(), self._ns, self._work_size(*sizes), self._cache_size(*sizes),
                          *sizes)
            self._layouts[(dtype, *sizes)] = lay
        return lay

    def _outputs(self, lay, ws, forward):
        if ws is None:
            return _Outputs(lay, self._np, self._ns, forward)
        return ws._outputs(lay, self._np, self._ns, forward)

    def _states(self, states, out, dtype):
        """(address of the state table, arrays kept alive for the call); missing entries are NULL = zeros.
        Used as they are when C-contiguous arrays of dtype outside the buffer the call writes, else copied."""
        if not states:
            return None, None
        table, keep = out.states_in, []
        for k, s in enumerate(self.states):
            a = states.get(s)
            if a is None:
                table[k] = None
                continue
            if not (a.dtype is dtype and a.flags.c_contiguous):
                a = np.ascontiguousarray(a, dtype=dtype)
            addr = _addr(a)
            if out.lo <= addr < out.hi:
                a = a.copy()
                addr = _addr(a)
            keep.append(a)
            table[k] = addr
        return table, keep

    def init_params(self, input_size, hidden_size, *, rng=None, dtype=np.float64):
        """Every parameter drawn from U(-1/sqrt(hidden), 1/sqrt(hidden)), as torch.nn.LSTM does (the same
        draws as the NumPy module's).  The arrays are views of one buffer, in the order of PARAMS, so the
        weights applied to one operand lie one after the other: the C then runs one product per operand."""
        rng = np.random.default_rng() if rng is None else rng
        sizes = {"hidden": hidden_size, "input": input_size}
        bound = 1.0 / np.sqrt(hidden_size)
        shapes = {name: tuple(sizes[s] for s in shape) for name, shape in self.params.items()}
        flat = np.empty(sum(int(np.prod(shape)) for shape in shapes.values()), dtype=dtype)
        params, start = {}, 0
        for name, shape in shapes.items():
            stop = start + int(np.prod(shape))
            params[name] = flat[start:stop].reshape(shape)
            params[name][...] = rng.uniform(-bound, bound, size=shape).astype(dtype)
            start = stop
        return params

    def forward(self, params, xs, state0=None, *, workspace=None):
        """Run the cell over xs (T, B, input); returns hs (T, B, hidden), the last state and a cache."""
        return self._forward("forward", *self._forward_args("forward", params, xs, state0), workspace)

    def _forward(self, where, arrays, xs, states, sizes, dtype, ws):
        if ws is not None and type(ws) is not Workspace:
            _refuse_workspace(where, ws)
        if not xs.flags.c_contiguous:
            xs = np.ascontiguousarray(xs)
        lay = self._layouts.get((dtype, *sizes)) or self._layout(dtype, sizes)
        out = self._outputs(lay, ws, True)
        mine = _own() if ws is None else ws
        table, copies = mine._table(arrays, dtype)
        x_addr = _addr(xs)
        if out.lo <= x_addr < out.hi:
            xs = xs.copy()
            x_addr = _addr(xs)
        s0, keep = self._states(states, out, dtype)
        self._funcs[dtype][0](*sizes, table, x_addr, s0, out.lo, out.states_out, out.saved_addr,
                              mine._work(dtype, lay.n_work))
        del keep, copies
        made_in = out if ws is not None else None  # a workspace's outputs: overwritten by its next forward
        cache = self._cache(sizes, dtype, (xs, out.saved, x_addr, out.saved_addr, made_in, out.stamp))
        return out.hs, dict(zip(self.states, out.states, strict=True)), cache

    def backward(self, params, cache, d_hs, d_state_T=None, *, workspace=None):
        """BPTT: gradients of the loss given d_hs (T, B, hidden), the gradient reaching each h_t
        from outside the recurrence, and d_state_T, the gradient reaching the last state.
        Returns (grads with the keys of PARAMS, d_xs (T, B, input), d_state0)."""
        return self._backward("backward", cache, *self._backward_args("backward", params, cache, d_hs, d_state_T),
                              workspace)

    def _backward(self, where, cache, arrays, d_hs, states, sizes, dtype, ws):
        _, _, x_addr, saved_addr, made_in, stamp = cache.arrays
        if made_in is not None and made_in.stamp != stamp:
            raise ArgumentError(f"{where}: cache holds arrays that a later forward call with the same workspace "
                                "overwrote; expected the cache of that workspace's last forward call")
        if ws is not None and type(ws) is not Workspace:
            _refuse_workspace(where, ws)
        lay = self._layouts.get((dtype, *sizes)) or self._layout(dtype, sizes)
        out = self._outputs(lay, ws, False)
        mine = _own() if ws is None else ws
        table, copies = mine._table(arrays, dtype)
        d_addr = None
        if d_hs is not None:
            if not d_hs.flags.c_contiguous:
                d_hs = np.ascontiguousarray(d_hs)
            d_addr = _addr(d_hs)
            if out.lo <= d_addr < out.hi:
                d_hs = d_hs.copy()
                d_addr = _addr(d_hs)
        dT, keep = self._states(states, out, dtype)
        self._funcs[dtype][1](*sizes, table, x_addr, saved_addr, d_addr, dT, out.grads_addr, out.dxs_addr,
                              out.dstate_addr, mine._work(dtype, lay.n_work))
        del keep, copies, d_hs
        return (dict(zip(self.names, out.grads, strict=True)), out.d_xs,
                dict(zip(self.states, out.d_state0, strict=True)))

    def step_forward(self, params, x, state, *, workspace=None):
        """One step: x (B, input), state {name: (B, hidden)} -> (new_state, cache)."""
        args = self._forward_args("step_forward", params, x, state, step=True)
        _, new_state, cache = self._forward("step_forward", *args, workspace)
        return new_state, cache

    def step_backward(self, params, cache, d_new_state, *, workspace=None):
        """One step back: d_new_state {name: (B, hidden)} -> (grads, d_x, d_state)."""
        args = self._backward_args("step_backward", params, cache, None, d_new_state, step=True)
        grads, d_xs, d_state = self._backward("step_backward", cache, *args, workspace)
        return grads, d_xs[0], d_state
