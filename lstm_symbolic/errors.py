"""The user-facing error types: the CLI prints any of them as one line and exits 2."""


class UserError(Exception):
    """Something the user can fix; the message says what and how."""
