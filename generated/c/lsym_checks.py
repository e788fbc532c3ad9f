"""The argument checks of the generated NumPy module and of the C binding (lsym_binding.py): one text, so
that both check the same things, in the same order, with the same messages.

Cell-independent: a cell's checks are a ``_Checks(PARAMS, STATES, blocks)``.  The NumPy emitter copies this
file into every NumPy module from the comment line that opens the checks on (the module imports what the
lines above it import); the C binding's lsym_binding.py, shipped in the same folder, loads it by path.
Standalone: NumPy and the standard library.
"""

import operator
from collections.abc import Mapping

import numpy as np

# -- argument checks: the same code in the NumPy module and in the C binding -----------------------


class ArgumentError(ValueError):
    """An argument that does not fit the call.  The message, one line, names the function and the
    argument and says what was found and what was expected."""


class _Cache:
    """What forward hands to backward: the sizes and dtype of the call that made it, and its arrays.
    backward refuses a cache of another module, and parameters or gradients of other sizes."""

    __slots__ = ("T", "B", "I", "H", "extra", "dtype", "arrays", "owner")

    def __init__(self, sizes, dtype, arrays, owner):
        self.T, self.B, self.I, self.H = sizes[:4]
        self.extra = tuple(sizes[4:])  # the cell's sizes beyond hidden and input, in owner.extra's order
        self.dtype, self.arrays, self.owner = dtype, arrays, owner

    def __repr__(self):
        extra = "".join(f", {k} {n}" for k, n in zip(self.owner.extra, self.extra, strict=True))
        return (f"<cache of a forward call: T={self.T}, B={self.B}, input {self.I}, hidden {self.H}{extra}, "
                f"{self.dtype}>")


_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_REAL = {_F32: _F32, _F64: _F64}  # the dtypes a call runs in
_C_INT = 2**31 - 1  # the C counts the rows (T * B) and columns of its products in C ints
_FROM_CACHE = "the forward call that made the cache"


def _fail(where, what):
    raise ArgumentError(f"{where}: {what}")


def _shown(value):
    """A key as a message shows it: its repr, at most 40 characters (escaped: one printable line)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _word(text):
    """A name (of a type, of a dtype) as a message shows it: as it is when it is a word, else its repr."""
    return text if text.isidentifier() and len(text) <= 40 else _shown(text)


def _kind(value):
    name = _word(type(value).__name__)
    return f"{'an' if name[0] in 'aeiouAEIOU' else 'a'} {name}"


def _both(words):
    return " and ".join(words) if len(words) < 3 else f"{', '.join(words[:-1])} and {words[-1]}"


def _named(arg, key):
    return arg if key is None else f"{arg}[{key!r}]"


def _array(where, arg, a):
    """``a`` as an array of real floating point (float32 or float64, either byte order); not converted."""
    if type(a) is not np.ndarray:
        try:
            a = np.asarray(a)
        except (TypeError, ValueError, OverflowError):
            _fail(where, f"{arg} is {_kind(a)} that NumPy cannot read as an array; expected float32 or float64 numbers")
    dtype = a.dtype
    if dtype not in _REAL and not (dtype.kind == "f" and dtype.itemsize in (4, 8)):
        _fail(where, f"{arg} has dtype {_word(str(dtype))}; expected float32 or float64 "
                     "(convert with .astype(np.float64))")
    return a


def _keys(where, arg, given, allowed, all_needed):
    """Fails on a key of ``given`` that is not one of ``allowed`` (or, all_needed, a missing one)."""
    missing = [k for k in allowed if k not in given] if all_needed else []
    if missing:
        _fail(where, f"{arg} lacks {', '.join(missing)}; expected the keys {', '.join(allowed)}")
    for key in given:
        if key not in allowed:
            _fail(where, f"{arg} has the key {_shown(key)}; expected {'the keys' if all_needed else 'keys among'} "
                         f"{', '.join(allowed)}")


class _Checks:
    """The checks of one cell's calls: its parameters {name: axes}, its states, and ``blocks``, the most
    weights stacked on one operand (the C's products have up to blocks * hidden columns).  forward_args
    and backward_args check a call's arguments; cache(...) makes the cache that backward_args accepts."""

    def __init__(self, params, states, blocks, state_sizes=None):
        self.params, self.states, self.blocks = dict(params), tuple(states), blocks
        self.state_size = {s: (state_sizes or {}).get(s, "hidden") for s in self.states}
        self.output_size = self.state_size[self.states[0]]
        names = self.names = tuple(self.params)
        self.state_names = frozenset(self.states)
        self.param_arrays = operator.itemgetter(*names) if len(names) > 1 else lambda d: (d[names[0]],)
        # The first parameter with a hidden (an input) axis: it gives the call its size.
        axes = list(self.params.values())
        hidden_at = min(k for k, s in enumerate(axes) if "hidden" in s)
        input_at = min((k for k, s in enumerate(axes) if "input" in s), default=None)
        self.has_input = input_at is not None
        self.size_from = {"hidden": names[hidden_at], "input": names[input_at] if self.has_input else None}
        # The sizes beyond hidden and input (proj), each taken from the first parameter that has it.
        self.extra = tuple(dict.fromkeys(a for s in axes for a in s if a not in ("hidden", "input")))
        self.size_from.update({a: next(n for n, s in self.params.items() if a in s) for a in self.extra})
        # The parameters last found right (float32 or float64 ndarrays) and the sizes they give, as one
        # tuple (read at once, also by another thread): a training loop passes the same arrays again and again.
        # Reading their shapes again would cost more than the rest of the checks; an array cannot change its
        # size in place (reassigning .shape or .dtype keeps its bytes).
        self.last = ((None,) * len(names), None)

    def init_sizes(self, input_size, hidden_size, extra):
        """{size: n} of an init_params call; ``extra``: its keyword arguments ``<size>_size`` (proj_size=...)."""
        want = sorted(f"{s}_size" for s in self.extra)
        if sorted(extra) != want:
            raise TypeError(f"init_params() takes the keyword arguments {', '.join(want) or 'rng and dtype'}")
        return {"hidden": hidden_size, "input": input_size, **{s: extra[f"{s}_size"] for s in self.extra}}

    def cache(self, sizes, dtype, arrays):
        """The cache of a forward call: (T, B, input, hidden), its dtype, and what its backward reads."""
        return _Cache(sizes, dtype, arrays, self)

    def _want(self, labels, sizes, x_arg):
        """The shape expected of an array with these axes, and where the sizes come from (x_arg: the forward
        call's xs or x, else the cache): "(hidden, input) = (4, 3), hidden and input as in W_f"."""
        axes = f"({', '.join(labels)}{',' if len(labels) == 1 else ''})"
        known = [label for label in labels if label in sizes]
        if not known:
            return f"{axes}, every size at least 1"
        values = ", ".join(str(sizes.get(label, label)) for label in labels)
        sources = {}
        for label in dict.fromkeys(known):
            source = self.size_from.get(label) or x_arg if x_arg else _FROM_CACHE
            sources.setdefault(source, []).append(label)
        told = "; ".join(f"{_both(ls)} as in {source}" for source, ls in sources.items())
        rest = ", every other size at least 1" if len(known) < len(labels) else ""
        return f"{axes} = ({values}{',' if len(labels) == 1 else ''}), {told}{rest}"

    def _checked(self, where, arg, key, a, labels, sizes, x_arg):
        """``a`` (the argument ``arg``, or its entry ``key``) as an array when its shape has these axes
        (labels) with the sizes already known; the sizes not yet known are taken from it, into ``sizes``."""
        if type(a) is not np.ndarray or a.dtype not in _REAL:
            a = _array(where, _named(arg, key), a)
        shape = a.shape
        if len(shape) != len(labels) or 0 in shape or tuple(map(sizes.get, labels, shape)) != shape:
            _fail(where, f"{_named(arg, key)} has shape {shape}; expected {self._want(labels, sizes, x_arg)}")
        sizes.update(zip(labels, shape, strict=True))
        return a

    def _params(self, where, params, sizes, x_arg):
        """The arrays of ``params`` in the order of the cell's parameters, each of the shape they give it with
        the sizes already in ``sizes``; hidden (and input) are taken, when not known, from the first
        parameter that has them."""
        if type(params) is dict and len(params) == len(self.names):  # the fast path: the last call's arrays
            try:
                arrays = self.param_arrays(params)
            except KeyError:
                arrays = ()
            last, last_sizes = self.last
            if arrays and all(map(operator.is_, arrays, last)):
                if all(sizes.get(label, n) == n for label, n in last_sizes):
                    sizes.update(last_sizes)
                    return arrays
        if not isinstance(params, Mapping):
            _fail(where, f"params is {_kind(params)}; expected a dict with the keys {', '.join(self.names)}")
        _keys(where, "params", params, self.names, True)
        arrays = tuple(self._checked(where, "params", name, params[name], labels, sizes, x_arg)
                       for name, labels in self.params.items())
        if all(a.dtype is _F32 or a.dtype is _F64 for a in arrays):
            self.last = arrays, tuple((label, sizes[label]) for label in self.size_from if label in sizes)
        return arrays

    def _states(self, where, arg, states, sizes, x_arg):
        """{name: array} of the states given (None, or a missing or None entry: zeros), each (B, hidden)."""
        if states is None:
            return {}
        if type(states) is not dict and not isinstance(states, Mapping):
            _fail(where, f"{arg} is {_kind(states)}; expected a dict of (B, hidden) arrays with keys among "
                         f"{', '.join(self.states)}")
        if not self.state_names.issuperset(states):
            _keys(where, arg, states, self.states, False)
        out = {}
        for name in self.states:
            a = states.get(name)
            if a is None:
                continue
            size = self.state_size[name]
            if type(a) is not np.ndarray or a.shape != (sizes["B"], sizes[size]) \
                    or not (a.dtype is _F32 or a.dtype is _F64):
                a = self._checked(where, arg, name, a, ("B", size), sizes, x_arg)
            out[name] = a
        return out

    def forward_args(self, where, params, xs, states, step=False):
        """The checked arguments of a forward call (step: of step_forward, x (B, input)): (the arrays of
        params in the order of the cell's parameters, xs (T, B, input) in the call's dtype, the states given
        {name: (B, hidden) array}, (T, B, input, hidden), the call's dtype: float32 or float64, as xs)."""
        x_arg, s_arg = ("x", "state") if step else ("xs", "state0")
        sizes = {"T": 1} if step else {}
        arrays = self._params(where, params, sizes, x_arg)
        shape = xs.shape if type(xs) is np.ndarray and not step else ()
        if len(shape) == 3 and shape[0] and shape[1] and shape[2] == sizes.get("input", shape[2]) \
                and (xs.dtype is _F32 or xs.dtype is _F64):  # the fast path
            sizes["T"], sizes["B"], sizes["input"] = shape
        else:
            xs = self._checked(where, x_arg, None, xs, ("B", "input") if step else ("T", "B", "input"), sizes,
                               x_arg)
        T, B, H, I = sizes["T"], sizes["B"], sizes["hidden"], sizes["input"]
        extra = tuple(sizes[a] for a in self.extra)
        if T * B * self.blocks * max(I, H, *extra) > _C_INT:
            _fail(where, f"{x_arg} has shape {xs.shape} with hidden size {H}: too large; expected "
                         f"T * B * {self.blocks} * max(input, hidden) at most {_C_INT} (the C's sizes are C ints)")
        states = self._states(where, s_arg, states, sizes, x_arg)
        dtype = _REAL.get(xs.dtype) or (_F32 if xs.dtype.itemsize == 4 else _F64)
        if step:
            xs = xs[None]
        if xs.dtype is not dtype:
            xs = xs.astype(dtype)
        return arrays, xs, states, (T, B, I, H, *extra), dtype

    def backward_args(self, where, params, cache, d_hs, d_states, step=False):
        """The checked arguments of a backward call (step: of step_backward, without d_hs): (the arrays of
        params in the order of the cell's parameters, d_hs (T, B, hidden) in the cache's dtype or None:
        zeros, the gradients of the last states given {name: (B, hidden) array}, (T, B, input, hidden),
        dtype)."""
        if type(cache) is not _Cache or cache.owner is not self:
            what = "the cache of another module" if type(cache).__name__ == "_Cache" else _kind(cache)
            _fail(where, f"cache is {what}; expected the cache that this module's "
                         f"{'step_forward' if step else 'forward'} returned")
        if step and cache.T != 1:
            _fail(where, f"cache was made by a forward call over {cache.T} steps; expected the cache of "
                         "step_forward (one step)")
        sizes = {"T": cache.T, "B": cache.B, "input": cache.I, "hidden": cache.H}
        sizes.update(zip(self.extra, cache.extra, strict=True))
        arrays = self._params(where, params, sizes, None)
        if d_hs is not None:
            if type(d_hs) is not np.ndarray or d_hs.shape != (cache.T, cache.B, sizes[self.output_size]) \
                    or not (d_hs.dtype is _F32 or d_hs.dtype is _F64):
                d_hs = self._checked(where, "d_hs", None, d_hs, ("T", "B", self.output_size), sizes, None)
            if d_hs.dtype is not cache.dtype:
                d_hs = d_hs.astype(cache.dtype)
        d_states = self._states(where, "d_new_state" if step else "d_state_T", d_states, sizes, None)
        return arrays, d_hs, d_states, (cache.T, cache.B, cache.I, cache.H, *cache.extra), cache.dtype
