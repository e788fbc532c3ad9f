"""The two grammars of the formula language (plain and LaTeX) and LaTeX name reading.

Part of the front end (formula text → lark tree → SymPy, see :mod:`lstm_symbolic.formula.parse`).
Both grammars are LALR(1), so parsing is linear in the input and never backtracks; sums
and products are flat lists, so a long chain of terms is one tree node, not a deep nest.
"""

from __future__ import annotations

import re
from functools import cache

from lark import Lark

_COMMON = r"""
NUMBER: /(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/
MULOP: /\*(?!\*)|\/|@/
POW: "**"
%ignore /[ \t\r\n]+/
"""

# Python-like: `W_f @ x + b`, `sigmoid(z)`, `W.T @ d`, `Wf[:, :n_a]`, `np.sum(X, axis=1)`.
PLAIN = (
    r"""
?start: sum
sum: product (ADDOP product)*
product: unary (MULOP unary)*
?unary: power | ADDOP unary -> signed
?power: postfix | postfix POW unary -> pow
?postfix: atom
    | postfix ATTR -> attr
    | postfix "[" ":" "," [sum] ":" [sum] "]" -> slice
?atom: NAME -> name
    | NUMBER -> number
    | "(" sum ")"
    | (NAME | NPSUM | NPCALL) "(" arg ("," arg)* ")" -> call
?arg: sum | NAME "=" (NAME | NUMBER) -> kwarg
ADDOP: /[+-]/
NAME: /[A-Za-z_][A-Za-z0-9_]*/
NPSUM.2: /np\s*\.\s*sum(?![A-Za-z0-9_])/
NPCALL.2: /np\s*\.\s*(tanh|exp|log|dot|matmul|multiply|square)(?![A-Za-z0-9_])/
ATTR: /\.\s*[A-Za-z_][A-Za-z0-9_]*/
"""
    + _COMMON
)

# The base of a LaTeX name: `\tilde{c}`, `\mathbf{W}`, `\Gamma`, `W`, `concat`.
_BASE = (
    r"\\tilde\s*\{[A-Za-z]+\}|\\(?:mathbf|boldsymbol|bm|mathrm)\s*\{[A-Za-z]+\}"
    r"|\\Gamma(?![A-Za-z])|[A-Za-z][A-Za-z0-9]*"
)

# LaTeX: `\sigma(W_f x_t + U_f h_{t-1} + b_f)`, `\delta z_f \odot f_t`, `W^\top \cdot d`.
# A product with no operator between its factors (juxtaposition) reads like `\cdot`; both
# bind tighter than `\odot * / @`, so `a \odot W x` is `a ⊙ (W x)`.
LATEX = (
    r"""
?start: sum
sum: product (ADDOP product)*
product: jprod ((MULOP | EWISE) jprod)*
?jprod: unary (CDOT unary | power)*
?unary: power | ADDOP unary -> signed
?power: atom | atom CARET sup -> lpow | atom POW unary -> pow
sup: NUMBER | TOP | "{" TOP "}" | "{" sum "}"
?atom: LNAME -> lname
    | NUMBER -> number
    | "(" sum ")"
    | "[" sum "]"
    | "{" sum "}"
    | FRAC "{" sum "}" "{" sum "}" -> frac
    | FUNC [CARET sup] atom -> lcall
ADDOP: /[+-]|\\oplus(?![A-Za-z])/
EWISE: /\\(odot|circ|otimes)(?![A-Za-z])|⊙|∘/
CDOT: /\\cdot(?![A-Za-z])|·/
CARET: "^"
TOP.3: /\\top(?![A-Za-z])|⊤|T(?![A-Za-z0-9_])/
FRAC.2: /\\frac(?![A-Za-z])/
FUNC.2: /(\\(sigma|tanh|exp|log)(?![A-Za-z])|σ|(sigmoid|tanh|exp|log)(?![A-Za-z0-9_])"""
    + r"|\\operatorname\s*\{\s*(sum|mean)\s*\})"  # \operatorname{mean}: across the units
    + r"(\s*\^\s*(\\prime(?![A-Za-z])|\{\s*\\prime\s*\}))?/"  # f′: \sigma^\prime, \tanh^{\prime}
    + """
"""
    + rf"LNAME: /(\\delta\s*)?({_BASE})(\s*_\s*(\{{[^{{}}]*\}}|[A-Za-z0-9]+))*/"
    + "\n"
    + _COMMON
)

# LaTeX commands the front end understands; any other `\command` is refused by name.
LATEX_COMMANDS = frozenset(
    "odot circ otimes oplus cdot top sigma tanh exp log frac tilde delta mathbf boldsymbol prime operatorname "
    "bm mathrm Gamma left right big Big bigl bigr Bigl Bigr quad qquad , ; ! :".split()
)
# Layout-only commands, blanked out (same length, so columns stay right) before parsing.
LATEX_BLANKS = re.compile(r"\\(left|right|[bB]ig[lr]?|quad|qquad)(?![A-Za-z])|\\[,;!:]")

# Non-ASCII characters accepted as LaTeX symbols: ⊙ ∘ · σ ⊤.
UNICODE_SYMBOLS = frozenset("⊙∘·σ⊤")


@cache
def parser(latex: bool) -> Lark:
    """The LALR parser of one of the two grammars (built once)."""
    return Lark(LATEX if latex else PLAIN, parser="lalr", propagate_positions=True)


_SUBSCRIPT = re.compile(r"_\s*(\{[^{}]*\}|[A-Za-z0-9]+)")
_TIME = {"t": None, "t-1": "prev", "t+1": "next"}


def latex_name(text: str) -> str | None:
    """The code name of a LaTeX name, or None when a subscript cannot be read.

    ``W_{f}`` → ``W_f``; ``h_{t-1}`` → ``h_prev``; ``x_t`` → ``x``; ``\\tilde{c}_t`` →
    ``c_tilde``; ``\\delta z_f`` → ``d_z_f``; ``\\mathbf{W}_f`` → ``W_f``.
    """
    delta = text.startswith("\\delta")
    if delta:
        text = text[len("\\delta") :].lstrip()
    base = re.match(_BASE, text).group()
    parts = [_latex_base(base)]
    for sub in _SUBSCRIPT.findall(text[len(base) :]):
        for piece in sub.strip("{}").replace(" ", "").split(","):
            if piece in _TIME:
                parts += [_TIME[piece]] if _TIME[piece] else []
            elif re.fullmatch(r"[A-Za-z0-9]+", piece):
                parts.append(piece)
            else:
                return None
    name = "_".join(parts)
    return f"d_{name}" if delta else name


def _latex_base(base: str) -> str:
    inner = re.search(r"\{\s*([A-Za-z]+)\s*\}", base)
    if base.startswith("\\tilde"):
        return f"{inner.group(1)}_tilde"
    if inner:
        return inner.group(1)
    return base.lstrip("\\")
