"""The built-in notation profiles: the TOML files under ``notations/`` (used through ``notation.get``).

Each file lists the internal names of the built-in cells (LSTM, peephole, CIFG, GRU); a
profile may leave a name out, and it then renders generically.  They are read by the same code
as a user's ``--notation FILE.toml`` (:mod:`lstm_symbolic.notation.profile_file`), but not checked
against one cell: they serve them all.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import MappingProxyType

from .model import Notation, NotationError
from .profile_file import load_profile

NOTATIONS = Path(__file__).resolve().parent / "builtin"
ORDER = ("default", "ng", "gfg", "greff", "pytorch")  # the documented order


def _builtin(name: str):
    return dataclasses.replace(load_profile(NOTATIONS / f"{name}.toml"), where="")


PROFILES = MappingProxyType({name: _builtin(name) for name in ORDER})


def get(name: str) -> Notation:
    """The profile called ``name``, or read from ``name`` when it ends in ``.toml``;
    NotationError lists the known ones otherwise."""
    if name.endswith(".toml"):
        return load_profile(name)
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(PROFILES)
        raise NotationError(f"unknown notation '{name}': choose one of {known}, "
                            "or the path of a .toml notation file") from None


def names() -> tuple[str, ...]:
    """The profile names in their documented order."""
    return tuple(PROFILES)
