"""A folder the tool owns: ``generate --dir X`` and its manifest ``X/.lstm-symbolic-manifest``.

The manifest lists, one per line, the relative paths the last ``generate`` wrote into X.
A folder is the tool's when every file in it is listed there or about to be written (a new
folder, an empty one, or one ``generate`` wrote before); any other file (``.git/config``, a
note, a link, a FIFO) makes ``generate`` refuse the whole folder in one line, before anything
is written.  The files and the new manifest are then written all or nothing
(:func:`lstm_symbolic.files.write_files`), and only listed files that are no longer made are
removed: nothing the tool did not write is ever deleted.  Staged files of another run
writing into the same folder at the same time are neither counted nor touched.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from . import Data, OutputError, ReadError, is_staged, kind, read_text, relative_parts, write_files

MANIFEST = ".lstm-symbolic-manifest"
MAX_MANIFEST_BYTES = 1024 * 1024
_HEADER = ("# Written by `lstm-symbolic generate`: the files it wrote into this folder. It removes\n"
           "# only these (when it no longer makes them) and refuses a folder holding any other file.\n")


def with_manifest(files: Mapping[str, Data]) -> dict[str, Data]:
    """``files`` and the manifest that lists them: what a synced folder holds."""
    return {**files, MANIFEST: _HEADER + "".join(f"{rel}\n" for rel in sorted(files))}


def listed(root: Path) -> set[str]:
    """The relative paths the manifest in ``root`` lists (none when there is no manifest)."""
    path = root / MANIFEST
    if not os.path.lexists(path):
        return set()
    try:
        text = read_text(path, MAX_MANIFEST_BYTES, "manifest")
    except ReadError as exc:
        raise OutputError(str(exc)) from None
    paths = set()
    for number, line in enumerate(text.splitlines(), 1):
        if line and not line.startswith("#"):
            try:
                relative_parts(line)
            except OutputError:
                raise OutputError(f"{path}:{number}: not a path inside the folder: {line!r}") from None
            paths.add(line)
    return paths


def owned(root: str | Path, files: Mapping[str, Data]) -> tuple[set[str], dict[str, Path]]:
    """(the listed paths, {relative path: path} of every file under ``root``), or an
    :class:`OutputError` when ``root`` holds a file that is neither listed nor in ``files``."""
    root = Path(root)
    if not os.path.lexists(root):
        return set(), {}
    if not root.is_dir():
        raise OutputError(f"{root} is not a folder: --dir names the folder that generate owns")
    old = listed(root)
    allowed = old | set(files) | {MANIFEST}
    present = _entries(root)
    foreign = sorted(rel for rel, mode in present.items() if rel not in allowed or not stat.S_ISREG(mode))
    if foreign:
        first = foreign[0]
        what = "" if stat.S_ISREG(present[first]) else f", {kind(present[first])}"
        raise OutputError(f"refused: {root} holds {len(foreign)} file(s) lstm-symbolic did not write "
                          f"there (e.g. {first}{what}); generate writes only into a new or empty "
                          f"folder or one it wrote before (listed in {MANIFEST}): choose another --dir")
    return old, {rel: root / rel for rel in present}


def _entries(root: Path) -> dict[str, int]:
    """{relative path: lstat mode} of everything under ``root`` but folders (links not followed)."""
    found = {}

    def refuse(exc: OSError):
        raise OutputError(f"cannot read the folder {exc.filename}: {exc.strerror}")

    for folder, dirs, names in os.walk(root, onerror=refuse):
        for name in (*dirs, *names):
            path = Path(folder, name)
            try:
                mode = None if is_staged(name) else os.lstat(path).st_mode
            except FileNotFoundError:  # removed meanwhile by a run writing here too
                mode = None
            if mode is not None and not stat.S_ISDIR(mode):
                found[path.relative_to(root).as_posix()] = mode
    return found


def sync(root: str | Path, files: Mapping[str, Data]) -> list[Path]:
    """Make ``root`` hold ``files`` and their manifest; remove the listed files no longer made."""
    root = Path(root)
    old, _ = owned(root, files)
    written = write_files(with_manifest(files), root)
    for rel in sorted(old - set(files)):
        _remove(root, rel)
    return written


def _remove(root: Path, rel: str) -> None:
    """Delete a file this tool wrote, then the folders above it that it leaves empty."""
    path = root.joinpath(*relative_parts(rel))
    try:
        if stat.S_ISREG(os.lstat(path).st_mode):
            path.unlink()
        for folder in path.parents[:len(relative_parts(rel)) - 1]:
            if any(folder.iterdir()):
                break
            folder.rmdir()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise OutputError(f"cannot remove {path}, which generate no longer makes: {exc.strerror}") from None
