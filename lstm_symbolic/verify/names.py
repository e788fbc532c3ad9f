"""The names a formula file may use, per notation (user name → the derivation's quantities).

Part of ``verify`` (formulas → parsed → compared with the derivation).  A notation maps each
of its names onto the cell's internal names (``ft`` → ``f``, ``dft`` → ``d_z_f``), onto a
stack of them (``concat`` = [h_prev; x], ``Wf`` = [U_f W_f]) or onto a size (``n_a``).

The notations are the profiles of :mod:`lstm_symbolic.notation` (one registry for ``derive``,
``jacobian``, ``verify`` and ``verify-code``): a name is the profile's code name, or the
internal name where the profile writes a slice of a stored tensor (PyTorch's ``W_i`` is
``weight_ih_l0[0*H:1*H]``).  Three sources have their own spellings for the cells they were
written for (:data:`SPELLINGS`: aliases such as ``xt`` and ``x``, the quantities their text names).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .. import naming
from ..core.cells import Cell
from ..notation import PROFILES, Notation
from ..notation import get as get_profile


@dataclass(frozen=True)
class Names:
    """One notation: ``renames`` user → internal name; ``stacked`` user → ("rows" | "cols",
    internal parts); ``sizes`` user → size name; ``quantities`` the names a formula may define."""

    notation: str
    cells: tuple[str, ...]
    renames: dict[str, str]
    quantities: tuple[str, ...]
    stacked: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    sizes: dict[str, str] = field(default_factory=dict)

    def internal(self, name: str) -> tuple[str, ...]:
        """The internal names behind a user name (several for a stack, none for a size)."""
        if name in self.renames:
            return (self.renames[name],)
        return self.stacked[name][1] if name in self.stacked else ()

    def user(self) -> dict[str, str]:
        """internal → user name (the first user name listed for it)."""
        back: dict[str, str] = {}
        for user, internal in self.renames.items():
            back.setdefault(internal, user)
        return back


GATES = {"f": "forget gate", "i": "input gate", "c": "candidate", "o": "output gate"}


def _gatewise(pattern: dict[str, str], letters: dict[str, str]) -> dict[str, str]:
    """``{"d{g}": "d_z_{g}"}`` expanded for each user gate letter → internal gate letter."""
    return {u.format(g=ug): i.format(g=ig) for ug, ig in letters.items() for u, i in pattern.items()}


def _ng() -> Names:
    gates = {"f": "f", "i": "i", "c": "c", "o": "o"}
    renames = {
        "xt": "x", "a_prev": "h_prev", "c_prev": "c_prev", "a_next": "h", "c_next": "c",
        "ft": "f", "it": "i", "cct": "c_tilde", "ot": "o", "da_next": "d_h", "dc_next": "d_c_next",
        "dft": "d_z_f", "dit": "d_z_i", "dcct": "d_z_c", "dot": "d_z_o",
        **_gatewise({"b{g}": "b_{g}", "db{g}": "d_b_{g}"}, gates),
        "da_prev": "d_h_prev", "dc_prev": "d_c_prev", "dxt": "d_x",
    }
    stacked = {"concat": ("rows", ("h_prev", "x"))}
    for g in gates:
        stacked[f"W{g}"] = ("cols", (f"U_{g}", f"W_{g}"))
        stacked[f"dW{g}"] = ("cols", (f"d_U_{g}", f"d_W_{g}"))
    quantities = ("dft", "dit", "dcct", "dot", "dWf", "dWi", "dWc", "dWo",
                  "dbf", "dbi", "dbc", "dbo", "da_prev", "dc_prev", "dxt")
    return Names("ng", ("lstm",), renames, quantities, stacked, {"n_a": "hidden", "n_x": "input"})


def _gfg() -> Names:
    gates = {"f": "f", "i": "i", "g": "c", "o": "o"}
    renames = {
        "x": "x", "xt": "x", "h_prev": "h_prev", "c_prev": "c_prev", "c": "c", "ct": "c",
        "h": "h", "ht": "h", "f": "f", "i": "i", "g": "c_tilde", "o": "o",
        **_gatewise({"wx{g}": "W_{g}", "wh{g}": "U_{g}", "b{g}": "b_{g}", "z{g}": "z_{g}"}, gates),
        "E_delta": "d_h", "dE_dc_next": "d_c_next",
        "dE_do": "d_o", "dE_dc": "d_c", "dE_di": "d_i", "dE_dg": "d_c_tilde", "dE_df": "d_f",
        **_gatewise({"dE_dz{g}": "d_z_{g}", "dE_dwx{g}": "d_W_{g}", "dE_dwh{g}": "d_U_{g}",
                     "dE_db{g}": "d_b_{g}"}, gates),
        "dE_dx": "d_x", "dE_dh_prev": "d_h_prev", "dE_dc_prev": "d_c_prev",
    }
    quantities = tuple(n for n in renames if n.startswith("dE_") and n != "dE_dc_next")
    return Names("gfg", ("lstm",), renames, quantities)


def _greff() -> Names:
    gates = {"z": "c", "i": "i", "f": "f", "o": "o"}
    renames = {
        "x": "x", "y_prev": "h_prev", "c_prev": "c_prev", "c": "c", "y": "h",
        "z": "c_tilde", "i": "i", "f": "f", "o": "o",
        **_gatewise({"{g}bar": "z_{g}", "W_{g}": "W_{g}", "R_{g}": "U_{g}", "b_{g}": "b_{g}"}, gates),
        "dy": "d_h", "dc_next": "d_c_next", "dc": "d_c", "dz": "d_c_tilde", "di": "d_i", "df": "d_f",
        **_gatewise({"d{g}bar": "d_z_{g}", "dW_{g}": "d_W_{g}", "dR_{g}": "d_U_{g}",
                     "db_{g}": "d_b_{g}"}, gates),
        "dx": "d_x", "dy_prev": "d_h_prev", "dc_prev": "d_c_prev",
        "p_i": "p_i", "p_f": "p_f", "p_o": "p_o", "dp_i": "d_p_i", "dp_f": "d_p_f", "dp_o": "d_p_o",
    }
    quantities = tuple(n for n in renames if n.startswith("d") and n not in ("dy", "dc_next"))
    return Names("greff", ("lstm", "lstm-peephole"), renames, quantities)


def _default(cell: Cell, seeds: dict[str, str], adjoints: tuple[str, ...]) -> Names:
    """The cell's own names: inputs, forward values, seeds, every adjoint and gradient."""
    renames = {q.name: q.name for q in cell.quantities}
    renames.update({s: s for s in seeds.values()})
    renames.update({a: a for a in adjoints})
    quantities = tuple(a for a in adjoints if a not in seeds.values())
    return Names("default", (), renames, quantities)


SPELLINGS = {"ng": _ng, "gfg": _gfg, "greff": _greff}  # a source's own spellings, by profile name


def scalar_by_default(notation: object) -> bool:
    """A built-in notation written for one unit (gfg): shape = "scalar" unless the file says otherwise."""
    return isinstance(notation, str) and notation in PROFILES and PROFILES[notation].scalar


def names_for(notation: str, cell: Cell, seeds: dict[str, str], adjoints: tuple[str, ...]) -> Names:
    """The notation's names for ``cell`` (``adjoints``: every d_* the derivation defines);
    :class:`~lstm_symbolic.notation.NotationError` for a notation no profile has."""
    if notation == "default":
        return _default(cell, seeds, adjoints)
    profile = get_profile(notation)
    names = SPELLINGS[notation]() if notation in SPELLINGS else None
    if names is None or cell.name not in names.cells:
        return _from_profile(notation, profile, cell, seeds, adjoints)
    known = {q.name for q in cell.quantities} | set(seeds.values()) | set(adjoints)
    renames = {u: i for u, i in names.renames.items() if i in known}  # p_f only with peepholes
    return replace(names, renames=renames, quantities=tuple(q for q in names.quantities if q not in
                                                            names.renames or q in renames))


def _from_profile(notation: str, profile: Notation, cell: Cell, seeds: dict[str, str],
                  adjoints: tuple[str, ...]) -> Names:
    """The code names of a profile; a user's file (``--notation FILE.toml``) is checked against
    ``cell``.  A code name that is not an identifier (a slice of a stored tensor) gives way to the
    internal name; a stack of matrices along rows (PyTorch's ``weight_ih_l0``) is not a name here."""
    from ..notation.profile_file import check_profile  # noqa: PLC0415 - a file only here

    if profile.where:
        check_profile(profile, cell)
    internal = [q.name for q in cell.quantities] + list(seeds.values()) + list(adjoints)
    readable = {name: profile.code(name) for name in internal}
    code = {name: c if naming.FORMULA_NAME.fullmatch(c) else name for name, c in readable.items()}
    renames = {code[name]: name for name in reversed(internal)}
    shapes = {q.name: q.shape for q in cell.quantities}
    stacked: dict[str, tuple[str, tuple[str, ...]]] = {}
    for stack in profile.stacks:
        if not set(stack.parts) <= set(internal):
            continue
        if stack.axis == "rows" and any(len(shapes.get(p, ())) == 2 for p in stack.parts):
            continue
        axis = "cols" if stack.axis == "columns" else "rows"
        stacked[stack.code] = (axis, stack.parts)
        stacked[profile.adjoint_code + stack.code] = (axis, tuple(naming.adjoint(p) for p in stack.parts))
        if stack.operand_code:
            stacked[stack.operand_code] = ("rows", stack.operands)
    quantities = tuple(code[a] for a in adjoints if a not in seeds.values())
    return Names(notation, (cell.name,), renames, quantities, stacked)


def is_next_seed(name: str) -> bool:
    """A seed that comes from step t+1 only (d_c_next): zero at the last step."""
    return name.endswith("_next") and naming.is_adjoint(name)
