"""User text at the boundary of every output: one function per output language.

A cell's name and description come from a spec file, and a spec is data: whatever it holds,
pasting it into an output must not make that output do anything but show it.  Each function
here turns arbitrary text into text that means itself in one language; the templates and
renderers apply them where they receive user text (see ``emit.environment`` for the Jinja
filters).  Validation at load (``spec/load.py``, ``naming/``) narrows what reaches them, but they
hold for any string.

Characters that do not print (control characters, escape sequences, bidirectional overrides,
zero-width marks) are made visible as ``\\x1b``, ``\\u202e``, ... everywhere: a terminal would
act on them, and a compiler or a reader would be misled by them.
"""

from __future__ import annotations

import re


def _code(ch: str) -> str:
    n = ord(ch)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def visible(text: str, keep: str = "") -> str:
    """``text`` with every character that does not print (other than those in ``keep``) written
    as its escape code: ESC becomes the four characters ``\\x1b``."""
    return "".join(ch if ch.isprintable() or ch in keep else _code(ch) for ch in text)


def python_string(text: str) -> str:
    """The body of a Python string literal, plain or triple-quoted (not raw): ``"`` and ``\\``
    escaped, so no quote can end the literal, and nothing unprintable left in the source."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(_code(ch))
    return "".join(out)


def c_comment(text: str) -> str:
    """Text inside a C ``/* ... */`` comment: it can neither close the comment (``*/``), nor
    open a nested one (``/*``, a warning), nor form a trigraph (``??/``)."""
    text = visible(text)
    text = re.sub(r"\*(?=/)|/(?=\*)", lambda m: m.group() + " ", text)
    return re.sub(r"\?(?=\?)", "? ", text)


_LATEX = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
    "%": r"\%", "_": r"\_", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}",
}


def latex_text(text: str) -> str:
    """Text in LaTeX text mode, shown as it is: every special character escaped, so it can start
    no command (``\\input``), no math (``$``) and no group."""
    return "".join(_LATEX.get(ch, ch) for ch in visible(text))


def markdown_text(text: str) -> str:
    """Text in Markdown (CommonMark, GitHub, Jupyter): every ASCII punctuation character
    backslash-escaped, so it forms no emphasis, link, HTML tag, entity or ``$`` math."""
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", visible(text))


def terminal(text: str) -> str:
    """Text for a terminal (or a plain text file): lines and tabs kept, every other control
    character or escape sequence made visible, so it cannot move the cursor, recolour, retitle
    or clear the screen."""
    return visible(text, keep="\n\t")


# The Jinja filters of the templates, by the name a template uses.
FILTERS = {"python_string": python_string, "c_comment": c_comment, "terminal": terminal}
