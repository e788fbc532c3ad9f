"""Notations: how a document names each quantity (:mod:`.model`), the one registry of profiles
(:mod:`.profiles`: the built-in TOML files under ``builtin/`` and a user's ``.toml``), and the
reader of notation files (:mod:`.profile_file`)."""

from .model import (
    ADJOINT_STYLES,
    GREEK,
    ORDERS,
    TIME_STYLES,
    VECTOR_STYLES,
    Name,
    Notation,
    NotationError,
    Note,
    Stack,
    attach,
    bold,
    generic_latex,
    top_level,
)
from .profiles import PROFILES, get, names

__all__ = [
    "ADJOINT_STYLES", "GREEK", "ORDERS", "PROFILES", "TIME_STYLES", "VECTOR_STYLES", "Name", "Notation",
    "NotationError", "Note", "Stack", "attach", "bold", "generic_latex", "get", "names", "top_level",
]
