"""The build of a generated C kernel, shipped next to it (with lsym_binding.py, which calls it): the kernel
and the runtime beside it compiled into a cache folder keyed by the hash of the sources and the flags.

Cache: $LSTM_SYMBOLIC_CACHE, else $XDG_CACHE_HOME/lstm_symbolic, else ~/.cache/lstm_symbolic.  The compiler
is $CC, else cc, gcc or clang.  $LSTM_SYMBOLIC_BLAS chooses the matrix products of calls too small to pack
the weights (the others run on the C's own tiles): "auto" (default: link the system's OpenBLAS, else the
scipy-openblas32 wheel's when it is installed, else another CBLAS, else the portable loops), "none"
(portable loops), "scipy-openblas32" (that wheel's OpenBLAS), or linker flags for a CBLAS (e.g. "-lmkl_rt");
$LSTM_SYMBOLIC_CFLAGS adds compiler flags (e.g. -DLSTM_CBLAS_MIN=0: CBLAS for every product, however small).
$LSTM_SYMBOLIC_OPENMP: "auto" (default: compile with -fopenmp where the compiler can, so that the time loop
runs on several threads; OMP_NUM_THREADS caps them) or "none".  Standalone: the standard library.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

# -ffast-math lets GCC call glibc's vector tanh/exp (libmvec) in the element-wise loops; the object is
# linked in a second step without it, so the library does not switch the process to flush-to-zero.
# -march=native, then -fopenmp, are dropped where the compiler refuses them (see _variants).
_FLAGS = ["-O3", "-std=c99", "-fPIC", "-ffast-math"]
_BLAS = [["-DLSTM_USE_CBLAS", "-DLSTM_OPENBLAS", "-lopenblas"], ["-DLSTM_USE_CBLAS", "-lcblas"],
         ["-DLSTM_USE_CBLAS", "-lblas"]]


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
