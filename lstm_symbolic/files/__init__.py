"""Every file the tool reads from a user or writes for one passes through here.

Reading (:func:`read_text`): a spec, a formula file, a document.  Only a regular file is
opened (a device, a FIFO or a folder is refused before it is opened, and checked again on the
open descriptor), at most ``limit + 1`` bytes are read, and the text must be UTF-8.

Writing (:func:`write_groups`, :func:`write_files`): all or nothing.  Every target is checked
first (a name inside its folder; not a symbolic link, a folder, a device or a FIFO), every file
is then staged under a name unique to this process in its own folder, and only when all of
them were written are they renamed over their targets.  Files get the user's umask, as any
file the user creates.  On any failure the staged files and the folders this call created
are removed, and the error is one :class:`OutputError` line.

A folder the tool owns (``generate --dir``) is :mod:`lstm_symbolic.files.manifest`'s.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from ..errors import UserError

Data = str | bytes
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_READ = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
_STAGED = re.compile(r"\..+\.\d+\.[0-9a-f]{8}\.tmp")


class OutputError(UserError, OSError):
    """An output file cannot be written; nothing of the call was written."""


class ReadError(UserError, OSError):
    """A user's file cannot be read: ``reason`` says why, ``str()`` adds the path."""

    def __init__(self, path: Path | str, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def kind(mode: int) -> str:
    """What a file of ``mode`` is, in words."""
    for test, name in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a folder"),
                       (stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def size_text(limit: int) -> str:
    return f"{limit // 1024} kB" if limit % 1024 == 0 else f"{limit} bytes"


# -- reading ----------------------------------------------------------------------------------
def read_bytes(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The bytes of the regular file at ``path`` (at most ``limit``), or one :class:`ReadError`."""
    def regular(mode: int) -> None:
        if not stat.S_ISREG(mode):
            raise ReadError(path, f"the {what} is not a regular file ({kind(mode)})")

    try:
        regular(os.stat(path).st_mode)  # before opening: opening a device can act
        fd = os.open(path, _READ)  # non-blocking: a FIFO put there meanwhile opens at once
        with os.fdopen(fd, "rb") as fh:
            regular(os.fstat(fd).st_mode)
            data = fh.read(limit + 1)
    except OSError as exc:
        if isinstance(exc, ReadError):
            raise
        raise ReadError(path, f"cannot read the {what}: {exc.strerror or exc}") from None
    except ValueError:  # a NUL byte in the path
        raise ReadError(repr(str(path)), f"cannot read the {what}: the path holds a NUL byte") from None
    if len(data) > limit:
        raise ReadError(path, f"the {what} is larger than {size_text(limit)}")
    return data


def read_text(path: str | Path, limit: int, what: str = "file") -> str:
    """:func:`read_bytes` decoded as UTF-8 (at most ``limit`` bytes)."""
    data = read_bytes(path, limit, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReadError(path, f"the {what} is not UTF-8 text (byte {exc.start})") from None


# -- writing ----------------------------------------------------------------------------------
def is_staged(name: str) -> bool:
    """Whether ``name`` has the form of a staged file (of this or another running process)."""
    return _STAGED.fullmatch(name) is not None


def write_files(files: Mapping[str, Data], out_dir: str | Path) -> list[Path]:
    """Write ``{relative path: text or bytes}`` under ``out_dir``, all or nothing."""
    return write_groups([(out_dir, files)])


class _Target(NamedTuple):
    folder: Path  # the folder the user named
    path: Path
    data: bytes


def write_groups(groups: Sequence[tuple[str | Path, Mapping[str, Data]]]) -> list[Path]:
    """Write several folders' files as one all-or-nothing set; returns the paths written."""
    targets = _targets(groups)
    created: list[Path] = []
    staged: list[Path] = []
    current = None
    try:
        for current in targets:
            _make_folders(current.path.parent, created)
            staged.append(_stage(current.path, current.data))
        for tmp, current in zip(list(staged), targets, strict=True):
            os.replace(tmp, current.path)
            staged.remove(tmp)
    except BaseException as exc:
        _undo(staged, created)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(f"cannot write to {current.folder}: {exc.strerror or exc} "
                              f"({current.path.relative_to(current.folder)})") from None
        raise
    return [target.path for target in targets]


def _targets(groups) -> list[_Target]:
    """Every target, checked before anything is written."""
    out, seen = [], set()
    for folder, files in groups:
        folder = Path(folder)
        _check_folder(folder)
        for rel, data in files.items():
            parts = relative_parts(rel)
            target = folder.joinpath(*parts)
            _check_target(folder, parts)
            if target in seen:
                raise OutputError(f"{target} would be written twice: give the outputs different names")
            seen.add(target)
            out.append(_Target(folder, target, data.encode("utf-8") if isinstance(data, str) else data))
    return out


def relative_parts(rel: str) -> tuple[str, ...]:
    """The components of a relative path that stays inside its folder, or an OutputError."""
    path = PurePosixPath(rel)
    if "\0" in rel or "\\" in rel or path.is_absolute() or ".." in path.parts \
            or path.parts in ((), (".",)):
        raise OutputError(f"refused to write {rel!r}: an output name must stay inside its folder "
                          "(no absolute path, no '..')")
    return path.parts


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}") from None


def _check_folder(folder: Path) -> None:
    """The output folder is a folder (a link to one is fine: the user named it) or can be made."""
    for path in (folder, *folder.parents):
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise OutputError(f"cannot write to {folder}: {exc.strerror}") from None
        if not stat.S_ISDIR(mode):
            raise OutputError(f"cannot write to {folder}: {path} is {kind(mode)}, not a folder")
        return


def _check_target(folder: Path, parts: tuple[str, ...]) -> None:
    """Inside ``folder`` no link is followed, no folder replaced, no device or FIFO touched."""
    path = folder
    for k, part in enumerate(parts):
        path = path / part
        info = _lstat(path)
        if info is None:
            return
        if k < len(parts) - 1 and not stat.S_ISDIR(info.st_mode):
            raise OutputError(f"refused to write {folder.joinpath(*parts)}: {path} is "
                              f"{kind(info.st_mode)}, not a folder")
    if not stat.S_ISREG(info.st_mode):
        hint = "write to a file name instead" if stat.S_ISDIR(info.st_mode) else \
            "remove it or choose another name"
        raise OutputError(f"refused to write {path}: it is {kind(info.st_mode)} ({hint})")


def _make_folders(folder: Path, created: list[Path]) -> None:
    missing = [p for p in (folder, *folder.parents) if _lstat(p) is None]
    for path in reversed(missing):
        os.mkdir(path)
        created.append(path)


def _stage(target: Path, data: bytes) -> Path:
    """``data`` in a new file beside ``target``, named for this process; mode 0666 & ~umask."""
    while True:
        tmp = target.with_name(f".{target.name[:180]}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, _CREATE, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _undo(staged: list[Path], created: list[Path]) -> None:
    """Remove this call's staged files and the folders it made (those still empty)."""
    for tmp in staged:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            pass
