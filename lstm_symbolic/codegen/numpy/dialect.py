"""What the whole-sequence emitters (NumPy's, PyTorch's) print differently, as hooks of
:func:`.emit.module_data`: a :class:`Dialect` decides on the plan's data (which slot is a row of a
sequence array at step t, which addend is folded into a product, which values a sum reads), never on
text it has printed.  NumPy's decisions are the defaults; the PyTorch emitter passes its own dialect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import sympy as sp

from ...printing.numpy import numpy_code, numpy_code_into


class Row(NamedTuple):
    """A row of a sequence array at step t, ``array[t + shift]`` (``cols``: a block of its columns,
    ``, :, H:2 * H``)."""

    array: str
    shift: int = 0
    cols: str = ""

    @property
    def step(self) -> str:
        return "t + 1" if self.shift else "t"

    @property
    def at_t(self) -> str:
        """``c_seq[t + 1]``, ``d_lin_x[t, :, H:2 * H]``."""
        return f"{self.array}[{self.step}{self.cols}]"

    @property
    def every_step(self) -> str:
        """The rows of every step: ``c_seq[1:]``, ``d_lin_x[:T, :, H:2 * H]``."""
        return f"{self.array}[{'1:' if self.shift else ':T'}{self.cols}]"

    @property
    def rows(self) -> str:
        """The array whose rows these are: ``d_lin_x``, ``d_lin_x[:, :, H:2 * H]``."""
        return f"{self.array}[:{self.cols}]" if self.cols else self.array


class Dialect:
    """What the whole-sequence emitters print differently, each a decision on the plan's data (NumPy's
    here; the PyTorch emitter passes its own): how an expression prints, how a loop reads a row of a
    sequence array (and the lines before the loop that needs), a step's product with the addend folded
    into it, zeros of a state's shape, and whether a vector gradient summed from rows of sequence
    arrays and parameters alone is summed once after the loop instead of at each step."""

    code = staticmethod(numpy_code)
    code_into = staticmethod(numpy_code_into)
    sums_after_loop = False

    def loop(self, build):
        """A loop's lines (``build()``: a :class:`Loop`) and the lines before the loop they need."""
        return build(), []

    def read(self, row: Row) -> str:
        """A row of a sequence array as the loop reads it (a row it writes by index is ``row.at_t``)."""
        return row.at_t

    def weight(self, group: str, back: bool) -> str:
        """The stacked weights of ``group`` as a step's product multiplies them (transposed but in ``back``)."""
        return f'stacked["{group}"]' + ("" if back else ".T")

    def product(self, target: str, source: Row | str, weight: str, addend: Row | None = None) -> list[str]:
        """``target = source @ weight``, ``addend`` (an input's projection at step t) added."""
        lines = [f"{target} = {self.read(source) if isinstance(source, Row) else source} @ {weight}"]
        return lines + ([f"{target} += {self.read(addend)}"] if addend else [])

    def zeros(self, size: str) -> str:
        """Zeros of a state's shape that is not the hidden size (``size``: as the code names it)."""
        return f"np.zeros((B, {size}), dtype=dtype)"

    def summed(self, grad: str, every_step: sp.Expr) -> str:
        """The line after the loop adding up a vector gradient's summand over every step (where
        ``sums_after_loop``)."""
        return f"{grad} += ({self.code(every_step)}).sum(axis=(0, 1))"


@dataclass
class Loop:
    """A loop's lines, the lines after it, and what they know: values of the step held in a local, and
    which of them are a row of a sequence array (read from it or computed into it)."""

    lines: list = field(default_factory=list)
    after: list = field(default_factory=list)
    local: set = field(default_factory=set)
    rows: dict = field(default_factory=dict)
