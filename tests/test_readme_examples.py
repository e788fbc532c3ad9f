"""Every Python example in the README and docs/ runs as written, from the project's root (issue 20)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def examples() -> list[tuple[str, str]]:
    """(page:line, code) of every ```python block."""
    out = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            out.append((f"{page.name}:{line}", m.group(1)))
    return out


def test_the_pages_hold_examples():
    assert len(examples()) >= 3


@pytest.mark.parametrize("where, code", examples(), ids=[w for w, _ in examples()])
def test_python_example_runs(where, code, monkeypatch):
    if "import torch" in code:
        pytest.importorskip("torch")
    monkeypatch.chdir(ROOT)
    namespace: dict = {"__name__": "__readme__"}
    exec(compile(code, where, "exec"), namespace)  # noqa: S102 - our own documentation


def test_derivation_document_takes_a_name_a_path_or_a_cell():
    from lstm_symbolic.article import derivation_document
    from lstm_symbolic.builtins import SPECS, load_cell

    by_name = derivation_document("gru", "ng")
    by_path = derivation_document(str(SPECS / "gru.toml"), "ng")
    by_cell = derivation_document(load_cell("gru"), "ng")
    assert by_name == by_path == by_cell
    assert by_name._repr_latex_().startswith("$$")


def test_the_public_functions_take_a_cell_name():
    from lstm_symbolic import pipeline
    from lstm_symbolic.article import jacobian_document
    from lstm_symbolic.errors import UserError

    assert "lstm" in pipeline.code_files("lstm", "numpy")["lstm.py"]
    assert pipeline.derivation_output("gru", "markdown").startswith("<!--")
    assert "p + q + r + s" in pipeline.jacobian_output("lstm", True, "latex")
    assert jacobian_document("lstm", total=True).cell == "lstm"
    with pytest.raises(UserError, match="unknown cell 'lsmt'"):
        pipeline.derivation_output("lsmt", "latex")
