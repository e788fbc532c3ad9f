"""The built-in notation profiles: the TOML files under ``notations/`` (used through ``notation.get``).

Each file lists the internal names of the built-in cells (LSTM, peephole, CIFG, GRU); a
profile may leave a name out, and it then renders generically.  They are read by the same code
as a user's ``--notation FILE.toml`` (:mod:`lstm_symbolic.profile_file`), but not checked
against one cell: they serve them all.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import MappingProxyType

from .profile_file import load_profile

NOTATIONS = Path(__file__).resolve().parent / "notations"
ORDER = ("default", "ng", "gfg", "greff", "pytorch")  # the documented order


def _builtin(name: str):
    return dataclasses.replace(load_profile(NOTATIONS / f"{name}.toml"), where="")


PROFILES = MappingProxyType({name: _builtin(name) for name in ORDER})
