"""Documents an author can publish as they are: no word of ours, their own heading, the source's
labels, and notation prose that speaks only of the gates the cell has (issue 20)."""

from __future__ import annotations

import re

import pytest

from lstm_symbolic import cli, notation, pipeline
from lstm_symbolic.article.documents import derivation_document, jacobian_document
from lstm_symbolic.article.publish import to_latex, to_markdown
from lstm_symbolic.spec.builtins import BUILTIN_CELLS, SPECS

# Words of this project, not of an article: the sources we read ("seed 001"), our files, our notes.
OURS = re.compile(r"\bseeds?\b|\bDESIGN\b|\bHELPERS\b|\bissue \d|\binternal name|\bNotation `",
                  re.IGNORECASE)
CELLS = tuple(BUILTIN_CELLS)
PROFILES = notation.names()


@pytest.fixture(scope="module")
def documents():
    """{(cell, profile): Document with steps} for every built-in cell and profile."""
    return {(c, p): derivation_document(c, p, steps=True) for c in CELLS for p in PROFILES}


def test_no_output_holds_a_word_of_ours(documents):
    outputs = {}
    for (cell, profile), doc in documents.items():
        outputs[f"{cell} {profile} latex"] = to_latex(doc)
        outputs[f"{cell} {profile} markdown"] = to_markdown(doc)
        for total in (False, True):
            jac = jacobian_document(cell, profile, total=total)
            outputs[f"{cell} {profile} jacobian {total}"] = to_latex(jac) + to_markdown(jac)
    for cell in CELLS:
        loaded = pipeline.load_cell(cell)
        outputs[f"{cell} text"] = pipeline.derivation_output(loaded)
        outputs[f"{cell} jacobian text"] = pipeline.jacobian_output(loaded, True)
        outputs[f"{cell} summary"] = dict(pipeline.cell_summaries())[cell]
    outputs.update(pipeline.generated_files())  # code, docstrings, committed documents
    found = {name: OURS.findall(text) for name, text in outputs.items() if OURS.search(text)}
    assert not found, found
    assert len(outputs) > 5 * len(PROFILES) * 3


def test_the_scan_catches_our_words():
    assert OURS.search("the four terms (seed 001's p + q + r + s)")
    assert OURS.search("Notation `ng`: ...")
    assert not OURS.search("Backpropagation through time of the LSTM cell")


def test_default_title_and_no_author(documents):
    tex = to_latex(documents["lstm", "ng"])
    assert r"\title{Backpropagation through time of the LSTM cell}" in tex
    assert r"\author{}" in tex and r"\date{}" in tex
    assert r"\maketitle" not in tex  # no room kept for an author there is none of
    assert to_markdown(documents["gru", "default"]).splitlines()[1] == \
        "# Backpropagation through time of the GRU cell"


def test_title_author_and_date_are_the_users_text(tmp_path, capsys):
    args = ["derive", "lstm", "--format", "latex", "--title", "Why LSTMs remember",
            "--author", "A. Author & B. $Writer", "--date", "3 May 2026"]
    assert cli.main(args) == 0
    tex = capsys.readouterr().out
    assert r"\title{Why LSTMs remember}" in tex
    assert r"\author{A. Author \& B. \$Writer}" in tex and r"\date{3 May 2026}" in tex
    assert r"\maketitle" in tex
    assert cli.main(["derive", "lstm", "--format", "markdown", "--author", "Ann", "--date", "May"]) == 0
    md = capsys.readouterr().out.splitlines()
    assert md[1] == "# Backpropagation through time of the LSTM cell" and md[3] == "Ann, May"
    assert cli.main(["jacobian", "lstm", "--format", "latex", "--title", "J"]) == 0
    assert r"\title{J}" in capsys.readouterr().out


def test_a_heading_on_plain_text_is_one_line(capsys):
    assert cli.main(["derive", "lstm", "--format", "text", "--title", "T"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--title" in err


def test_a_user_cell_is_titled_by_its_name(tmp_path):
    spec = tmp_path / "mine.toml"
    spec.write_text((SPECS / "gru.toml").read_text().replace('"gru"', '"my_gru"'))
    doc = derivation_document(str(spec))
    assert r"\title{Backpropagation through time of the my\_gru cell}" in to_latex(doc)


def _rows(doc, slug):
    block = next(b for s in doc.sections for b in s.blocks if b.slug == slug)
    return block.rows


@pytest.mark.parametrize("profile, weights", [("default", ("U_f", "U_c", "U_i")),
                                              ("pytorch", ("W_{hf}", "W_{hg}", "W_{hi}")),
                                              ("greff", ("R_f", "R_z", "R_i"))])
def test_p_q_r_s_are_labelled_as_the_usual_expansion(documents, profile, weights):
    """dc_t/dc_{t-1} = f_t (p) + ∂f_t/∂c_{t-1} c_{t-1} (q) + ∂c̃_t/∂c_{t-1} i_t (r)
    + ∂i_t/∂c_{t-1} c̃_t (s)."""
    rows = _rows(documents["lstm", profile], "total")
    labelled = {r.lhs: r.rhs for r in rows}
    assert rows[0].rhs == "p + q + r + s"
    for letter, weight in zip("qrs", weights, strict=True):
        assert weight in labelled[letter], (letter, labelled[letter])
    assert r"\operatorname{diag}" in labelled["p"] and "W" not in labelled["p"]
    intro = next(s.intro for s in documents["lstm", profile].sections if s.slug == "jacobian")
    assert "$q$, $r$ and $s$ run through" in intro and "usual product-rule expansion" in intro


# A word or symbol of the notation prose, and the internal name a cell must have to be told it.
GATE_WORDS = {
    "forget": "f", "output gate": "o", "reset": "r", "candidate memory": "c_tilde",
    "candidate state": "n", "peephole": "p_f", r"\Gamma_f": "f", r"\Gamma_o": "o",
    "i, f, g, o": "c_tilde", "r, z, n": "n", "torch.nn.LSTM": "c_tilde", "torch.nn.GRU": "n",
    "b_{hn}": "b_hn", "W_{hn}": "U_n", "dcct": "c_tilde", r"\tilde{c}": "c_tilde",
}


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("profile", PROFILES)
def test_notation_prose_names_only_what_the_cell_has(documents, cell, profile):
    doc = documents[cell, profile]
    conventions = next(s for s in doc.sections if s.slug == "conventions")
    prose = conventions.intro + " " + " ".join(conventions.items)
    have = {q.name for q in pipeline.load_cell(cell).quantities}
    wrong = [word for word, needs in GATE_WORDS.items() if word in prose and needs not in have]
    assert not wrong, (wrong, prose)


def test_each_lstm_and_gru_profile_says_what_its_gates_are(documents):
    for profile, cell, word in [("default", "lstm", "forget"), ("default", "gru", "reset"),
                                ("ng", "lstm", r"\Gamma_f"), ("ng", "gru", r"\Gamma_u"),
                                ("pytorch", "lstm", "i, f, g, o"), ("pytorch", "gru", "r, z, n"),
                                ("pytorch", "gru-reset-after", "b_{hn}"),
                                ("greff", "lstm-peephole", "peephole")]:
        conventions = next(s for s in documents[cell, profile].sections if s.slug == "conventions")
        assert word in " ".join(conventions.items), (profile, cell, word)
