"""The user-facing error types: the CLI prints any of them as one line and exits 2.

Every error the package raises to its user derives from :class:`UserError`; one that points at a
place in a text (a formula, a cell spec, a notation file) is a :class:`LocatedError`.
"""


class UserError(Exception):
    """Something the user can fix; the message says what and how."""


class LocatedError(UserError, ValueError):
    """A user error at a place in a text: ``str()`` is ``"<where>:<line>:<column>: <reason>"``
    (``where`` defaults to the class's :attr:`WHERE`)."""

    WHERE = "input"

    def __init__(self, reason: str, line: int = 1, column: int = 1, where: str | None = None):
        self.reason = " ".join(reason.split())
        self.line, self.column = line, column
        self.where = self.WHERE if where is None else where
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.where}:{self.line}:{self.column}: {self.reason}"
