"""The public functions take a cell name, a spec path or a Cell (issue 20); the examples of README and docs
run in tests/test_docs.py."""

from __future__ import annotations

import pytest


def test_derivation_document_takes_a_name_a_path_or_a_cell():
    from lstm_symbolic.article.documents import derivation_document
    from lstm_symbolic.spec.builtins import SPECS, load_cell

    by_name = derivation_document("gru", "ng")
    by_path = derivation_document(str(SPECS / "gru.toml"), "ng")
    by_cell = derivation_document(load_cell("gru"), "ng")
    assert by_name == by_path == by_cell
    assert by_name._repr_latex_().startswith("$$")


def test_the_public_functions_take_a_cell_name():
    from lstm_symbolic import pipeline
    from lstm_symbolic.article.documents import jacobian_document
    from lstm_symbolic.errors import UserError

    assert "lstm" in pipeline.code_files("lstm", "numpy")["lstm.py"]
    assert pipeline.derivation_output("gru", "markdown").startswith("<!--")
    assert "p + q + r + s" in pipeline.jacobian_output("lstm", True, "latex")
    assert jacobian_document("lstm", total=True).cell == "lstm"
    with pytest.raises(UserError, match="unknown cell 'lsmt'"):
        pipeline.derivation_output("lsmt", "latex")
