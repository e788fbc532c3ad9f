"""A TOML file a user wrote (a cell spec, a notation file), with the source position of every key, so
each refusal can be one ``<file>:<line>:<column>: <reason>`` line."""

from __future__ import annotations

import re
import tomllib

from ..errors import LocatedError


class TomlText:
    """One TOML text and its table; errors are ``error_class`` (a :class:`LocatedError`) at the key's place.
    A key given twice in one table is refused here, with both lines."""

    def __init__(self, text: str, where: str, error_class: type[LocatedError]):
        self.text, self.where, self.error_class = text, where, error_class
        self.keys = self._key_positions()
        try:
            self.data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise self._toml_error(exc) from None

    def _key_positions(self) -> dict[tuple[str, str], tuple[int, int, int]]:
        """``{(table, key): (line, column of the key, column of the value)}``."""
        found: dict[tuple[str, str], tuple[int, int, int]] = {}
        table = ""
        for n, line in enumerate(self.text.splitlines(), 1):
            if header := re.match(r"\s*\[\s*([A-Za-z0-9_.\-]+)\s*\]\s*(#.*)?$", line):
                table = header.group(1)
                found.setdefault(("", table), (n, header.start(1), header.start(1)))
            elif key := re.match(r"\s*([\"']?)([A-Za-z0-9_\-]+)\1\s*=\s*", line):
                if (table, key.group(2)) in found:
                    first = found[(table, key.group(2))][0]
                    raise self.error_class(f"'{key.group(2)}' is assigned twice (first on line {first}); "
                                           "give each value its own name", n, key.start(2) + 1, self.where)
                found[(table, key.group(2))] = (n, key.start(2) + 1, key.end() + 1)
        return found

    def at(self, table: str, key: str = "") -> tuple[int, int]:
        """(line, column) of a key, or of a table's header."""
        return self.keys.get((table, key) if key else ("", table), (1, 1, 1))[:2]

    def error(self, reason: str, table: str, key: str = "") -> LocatedError:
        return self.error_class(reason, *self.at(table, key), self.where)

    def _toml_error(self, exc: tomllib.TOMLDecodeError) -> LocatedError:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        line, column = (int(m.group(1)), int(m.group(2))) if m else (1, 1)
        reason = re.sub(r"\s*\(at .*\)$", "", msg)
        return self.error_class(f"TOML syntax: {reason}", line, column, self.where)
