"""The Python side of every generated C kernel, shipped next to it: what each cell's `<cell>_c.py` shares.

Written once, for every cell: a cell's binding is a ``Binding(its file, its C prefix, PARAMS, STATES, blocks)``
(see the cell's `<cell>_c.py`, which loads this file by path from its own folder).  Standalone: NumPy,
ctypes, the standard library, the system C compiler, and two files of this folder, loaded by path:
lsym_build.py (the build, and the variables that choose its compiler, BLAS and threads) and lsym_checks.py
(the argument checks, the same text as the NumPy module's).  The memory the caller sees: Workspace.
"""

import ctypes
import hashlib
import importlib.util
import operator
import sys
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
_build = load_sibling(Path(__file__).with_name("lsym_build.py"))
ArgumentError, BuildError = _checks.ArgumentError, _build.BuildError
_P = ctypes.c_void_p


def _addr(a):
    """The address of a C-contiguous array's first element: asking a writable buffer is three times
    cheaper than building ``__array_interface__`` (the fallback: read-only or empty arrays)."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(a))
    except (TypeError, ValueError, BufferError):
        return a.__array_interface__["data"][0]


def _readable(a, dtype, out):
    """``a`` as the C reads it in a call that writes ``out``: C-contiguous, of dtype, and copied when it lies in
    the buffer the call writes (the last state of a forward as the next one's state0): (array, address)."""
    if not (a.dtype is dtype and a.flags.c_contiguous):
        a = np.ascontiguousarray(a, dtype=dtype)
    addr = _addr(a)
    if out.lo <= addr < out.hi:
        a = a.copy()
        addr = _addr(a)
    return a, addr


class _Layout:
    """Per (cell, dtype, sizes): where each output lies in the output buffer of a forward (hs | states |
    cache) and of a backward (gradients | d_xs | d_state0), and the scratch the C asks for (n_work reals)."""

    def __init__(self, dtype, checks, n_work, n_cache, T, B, D, H, *extra):
        self.dtype, self.n_work = dtype, n_work
        n = {"hidden": H, "input": D, **dict(zip(checks.extra, extra, strict=True))}
        self.state_shapes = [(B, n[checks.state_size[s]]) for s in checks.states]  # the output first
        TBH, ends = T * B * n[checks.output_size], np.cumsum([0] + [B * w for _, w in self.state_shapes])
        self.hs_shape, self.xs_shape, self.n_hs, self.n_xs = (T, *self.state_shapes[0]), (T, B, D), TBH, T * B * D
        self.state_offs = [TBH + int(e) for e in ends[:-1]]
        self.saved_off = TBH + int(ends[-1])
        self.n_fwd = self.saved_off + n_cache
        self.grad_offs, o, runs = [], 0, []  # runs: consecutive parameters of one shape, one view split along axis 0
        for shape in (tuple(n[s] for s in names) for names in checks.params.values()):
            self.grad_offs.append(o)
            if runs and runs[-1][2] == shape:
                runs[-1][0] += 1
            else:
                runs.append([1, o, shape])
            o += int(np.prod(shape))
        self.grad_runs = [(start, start + n * int(np.prod(shape)), (n,) + shape) for n, start, shape in runs]
        self.dxs_off, self.dstate_offs = o, [o + T * B * D + int(e) for e in ends[:-1]]
        self.n_bwd = o + T * B * D + int(ends[-1])


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
        at = lambda o, shape: buf[o:o + shape[0] * shape[1]].reshape(shape)  # noqa: E731
        if forward:
            self.hs = buf[:lay.n_hs].reshape(lay.hs_shape)
            self.states = tuple(map(at, lay.state_offs, lay.state_shapes))
            self.saved, self.saved_addr = buf[lay.saved_off:], base + lay.saved_off * item
            self.states_out = (_P * n_states)(*(base + o * item for o in lay.state_offs))
        else:
            self.grads = tuple(g for start, stop, shape in lay.grad_runs for g in buf[start:stop].reshape(shape))
            self.d_xs = buf[lay.dxs_off:lay.dxs_off + lay.n_xs].reshape(lay.xs_shape)
            self.d_state0 = tuple(map(at, lay.dstate_offs, lay.state_shapes))
            self.ptrs = (_P * (n_params + n_states))(*(base + o * item for o in lay.grad_offs + lay.dstate_offs))
            self.grads_addr = ctypes.addressof(self.ptrs)
            self.dstate_addr = self.grads_addr + n_params * ctypes.sizeof(_P)
            self.dxs_addr = base + lay.dxs_off * item


class Workspace:
    """Memory reused by the calls it is passed to (``forward(..., workspace=ws)``): the C's scratch, and the
    outputs of its last forward and of its last backward, which its next call of the same pass and sizes
    overwrites (backward refuses a cache so overwritten; inputs lying in the buffer a call writes are copied
    first).  One call at a time: give each thread its own.  See docs/generated.md.
    """

    __slots__ = ("_scratch", "_tables", "_last")

    def __init__(self):
        self.clear()

    def clear(self):
        self._scratch, self._tables, self._last = {}, {}, [None, None]  # _last: the outputs of (backward, forward)

    @property
    def nbytes(self):
        """The bytes it holds (scratch and outputs)."""
        held = [w for w, _ in self._scratch.values()] + [out.buf for out in self._last if out is not None]
        return sum(a.nbytes for a in held)

    def _work(self, dtype, n):
        """The address of a scratch buffer of at least n reals of dtype (grown when needed)."""
        entry = self._scratch.get(dtype)
        if entry is None or entry[0].size < n:
            work = np.empty(max(n, 1), dtype=dtype)
            entry = self._scratch[dtype] = (work, _addr(work))
        return entry[1]

    def _outputs(self, lay, n_params, n_states, forward):
        out = self._last[forward]
        if out is not None and out.lay is lay:
            out.stamp += 1
        else:
            out = self._last[forward] = _Outputs(lay, n_params, n_states, forward)
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


class Binding:
    """One cell's C, built and loaded, and the calls of its Python API (see the cell's `<cell>_c.py`)."""

    def __init__(self, file, prefix, params, states, blocks, sources=None, state_sizes=None):
        self.params, self.states, self.names = dict(params), tuple(states), tuple(params)
        self.checks = checks = _checks._Checks(params, states, blocks, state_sizes)
        self._forward_args, self._backward_args, self._cache = checks.forward_args, checks.backward_args, checks.cache
        folder = Path(file).resolve().parent
        self.lib = lib = ctypes.CDLL(str(_build.build(folder, prefix, tuple(sources or (f"{prefix}.c",)))))
        fn = lambda name: getattr(lib, f"{prefix}_{name}")  # noqa: E731
        ints = [ctypes.c_int] * (4 + len(checks.extra))  # T, B, D, H and the cell's own sizes
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
            for f, n_ints, n_ptrs in zip(fns, (len(ints),) * 2 + (len(ints) - 1,) * 2, (7, 9, 6, 8), strict=True):
                f.argtypes, f.restype = ints[:n_ints] + [_P] * n_ptrs, None
            self._funcs[dtype] = fns
        self._layouts, self._np, self._ns = {}, len(self.names), len(self.states)

    def _setup(self, where, ws, dtype, sizes, forward):
        """(the outputs the call writes, the workspace whose scratch and parameter table it uses, its layout)."""
        lay = self._layouts.get((dtype, *sizes))
        if lay is None:
            n_work, n_cache = self._work_size(*sizes), self._cache_size(*sizes)
            lay = self._layouts[(dtype, *sizes)] = _Layout(dtype, self.checks, n_work, n_cache, *sizes)
        if ws is None:
            return _Outputs(lay, self._np, self._ns, forward), _own(), lay
        if type(ws) is not Workspace:
            other = type(ws).__name__ == "Workspace"
            what = "the Workspace of another folder's binding" if other else _checks._kind(ws)
            raise ArgumentError(f"{where}: workspace is {what}; expected a Workspace of this module, or None")
        return ws._outputs(lay, self._np, self._ns, forward), ws, lay

    def _states(self, states, out, dtype):
        """(address of the state table, arrays kept alive for the call); missing entries are NULL = zeros."""
        if not states:
            return None, None
        table, keep = out.states_in, []
        for k, s in enumerate(self.states):
            a = states.get(s)
            if a is None:
                table[k] = None
            else:
                a, table[k] = _readable(a, dtype, out)
                keep.append(a)
        return table, keep

    def init_params(self, input_size, hidden_size, *, rng=None, dtype=np.float64, **extra):
        """Every parameter drawn from U(-1/sqrt(hidden), 1/sqrt(hidden)), as torch.nn.LSTM does (the same
        draws as the NumPy module's).  The arrays are views of one buffer, in the order of PARAMS, so the
        weights applied to one operand lie one after the other: the C then runs one product per operand."""
        rng = np.random.default_rng() if rng is None else rng
        bound, sizes = 1.0 / np.sqrt(hidden_size), self.checks.init_sizes(input_size, hidden_size, extra)
        shapes = [tuple(sizes[s] for s in axes) for axes in self.params.values()]
        flat = np.empty(sum(int(np.prod(shape)) for shape in shapes), dtype=dtype)
        params, start = {}, 0
        for name, shape in zip(self.names, shapes, strict=True):
            view = params[name] = flat[start:start + int(np.prod(shape))].reshape(shape)
            view[...] = rng.uniform(-bound, bound, size=shape).astype(dtype)
            start += view.size
        return params

    def forward(self, params, xs, state0=None, *, workspace=None):
        """Run the cell over xs (T, B, input); returns hs (T, B, hidden), the last state and a cache."""
        return self._forward("forward", *self._forward_args("forward", params, xs, state0), workspace)

    def _forward(self, where, arrays, xs, states, sizes, dtype, ws):
        out, mine, lay = self._setup(where, ws, dtype, sizes, True)
        table, copies = mine._table(arrays, dtype)
        xs, x_addr = _readable(xs, dtype, out)
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
        out, mine, lay = self._setup(where, ws, dtype, sizes, False)
        table, copies = mine._table(arrays, dtype)
        d_hs, d_addr = (None, None) if d_hs is None else _readable(d_hs, dtype, out)
        dT, keep = self._states(states, out, dtype)
        self._funcs[dtype][1](*sizes, table, x_addr, saved_addr, d_addr, dT, out.grads_addr, out.dxs_addr,
                              out.dstate_addr, mine._work(dtype, lay.n_work))
        del keep, copies, d_hs
        return (dict(zip(self.names, out.grads, strict=True)), out.d_xs,
                dict(zip(self.states, out.d_state0, strict=True)))

    def step_forward(self, params, x, state, *, workspace=None):
        """One step: x (B, input), state {name: (B, hidden)} -> (new_state, cache)."""
        args = self._forward_args("step_forward", params, x, state, step=True)
        return self._forward("step_forward", *args, workspace)[1:]

    def step_backward(self, params, cache, d_new_state, *, workspace=None):
        """One step back: d_new_state {name: (B, hidden)} -> (grads, d_x, d_state)."""
        args = self._backward_args("step_backward", params, cache, None, d_new_state, step=True)
        grads, d_xs, d_state = self._backward("step_backward", cache, *args, workspace)
        return grads, d_xs[0], d_state
