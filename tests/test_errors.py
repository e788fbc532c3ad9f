"""One error base: every error the package raises to its user is a UserError (the CLI prints it as
one line and exits 2), and every error that points into a text is the one located variant."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import lstm_symbolic
from lstm_symbolic.errors import LocatedError, UserError
from lstm_symbolic.formula.parse import FormulaError
from lstm_symbolic.notation.profile_file import ProfileError
from lstm_symbolic.spec.load import SpecError

# Raised and caught inside the package, never seen by its user (the reason says where).
INTERNAL = {"ValueShapeError": "verify turns it into an 'error' verdict or a diagnosis"}


def package_exceptions() -> dict[str, type]:
    found = {}
    for info in pkgutil.walk_packages(lstm_symbolic.__path__, "lstm_symbolic."):
        if info.name.endswith("__main__"):
            continue  # running it runs the command line
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException)
                    and obj.__module__.startswith("lstm_symbolic")):
                found[f"{obj.__module__}.{name}"] = obj
    return found


def test_the_walk_finds_the_packages_errors():
    names = {qualified.rsplit(".", 1)[1] for qualified in package_exceptions()}
    assert {"UserError", "SpecError", "FormulaError", "NotationError", "VerifyCodeError", "CellError"} <= names


@pytest.mark.parametrize("qualified", sorted(package_exceptions()))
def test_every_error_raised_to_users_is_a_user_error(qualified):
    cls = package_exceptions()[qualified]
    if cls.__name__ in INTERNAL:
        assert not issubclass(cls, UserError), f"{qualified} is a UserError: drop it from INTERNAL"
        return
    assert issubclass(cls, UserError), f"{qualified} does not derive from lstm_symbolic.errors.UserError"


def test_one_notation_error():
    errors = [q for q, cls in package_exceptions().items() if cls.__name__ == "NotationError"]
    assert errors == ["lstm_symbolic.notation.model.NotationError"]


@pytest.mark.parametrize(("cls", "where"), [(FormulaError, "formula"), (SpecError, "spec"),
                                            (ProfileError, "notation")])
def test_errors_in_a_text_share_the_located_variant(cls, where):
    assert issubclass(cls, LocatedError)
    err = cls("a   reason\n split", 3, 7)
    assert str(err) == f"{where}:3:7: a reason split"
    assert (err.line, err.column, err.reason) == (3, 7, "a reason split")
    assert str(cls("r", where="f.toml")) == "f.toml:1:1: r"


def test_an_unknown_cell_is_said_in_one_place():
    from lstm_symbolic import pipeline  # noqa: PLC0415
    from lstm_symbolic.spec.builtins import UnknownCellError  # noqa: PLC0415
    from lstm_symbolic.verify import formulas  # noqa: PLC0415

    calls = [lambda: pipeline.load_cell("lsmt"),
             lambda: formulas.check_text('cell = "lsmt"\n[formulas]\nd_c = "d_h"\n'),
             lambda: formulas.check_backward(lambda **v: {}, "lsmt", "default")]
    for call in calls:
        with pytest.raises(UnknownCellError, match=r"^unknown cell 'lsmt': use one of lstm, lstm-peephole"):
            call()
