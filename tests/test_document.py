"""The derivation as an article: LaTeX that compiles, Markdown KaTeX renders, images, CLI."""

import re
import shutil
import tempfile

import pytest

from lstm_symbolic import notation, pipeline
from lstm_symbolic.article.documents import derivation_document, jacobian_document
from lstm_symbolic.article.publish import LatexError, compile_pdf, mathtext_form, to_latex, to_markdown
from lstm_symbolic.cli import main
from lstm_symbolic.spec.builtins import BUILTIN_CELLS

CELLS = sorted(BUILTIN_CELLS)
PROFILES = notation.names()
needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None,
                                    reason="pdflatex not installed (texlive-latex-base)")


@pytest.fixture(scope="module")
def documents():
    return {(c, n): derivation_document(BUILTIN_CELLS[c](), n, steps=True)
            for c in CELLS for n in PROFILES}


def balanced(tex: str) -> bool:
    depth = 0
    for ch in re.sub(r"\\[{}]", "", tex):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def test_steps_read_like_the_articles(documents):
    tex = to_latex(documents["lstm", "default"])
    assert (r"\delta o_{t} = \frac{\partial E}{\partial o_{t}} &= \frac{\partial E}{\partial h_{t}}"
            r" \odot \frac{\partial h_{t}}{\partial o_{t}}") in tex
    assert r"&= \delta h_{t} \odot \tanh(c_{t})" in tex
    assert r"\delta W_f &= \textstyle\sum_{t=1}^{T} \delta z_{f,t}\, x_{t}^{\top}" in tex
    assert r"\delta c_{t-1}^{\mathrm{next}} &= \delta c_{t-1}" in tex
    assert r"\frac{\mathrm{d} c_{t}}{\mathrm{d} c_{t-1}} &= p + q + r + s" in tex
    assert r"\left.\frac{\partial c_{t}}{\partial c_{t-1}}\right|_{h_{t-1}} &= " in tex


def test_without_steps_one_line_per_adjoint():
    tex = to_latex(derivation_document(BUILTIN_CELLS["lstm"](), "default"))
    assert r"\delta z_{f,t} &= \delta f_{t} \odot f_{t} \odot \left(1 - f_{t}\right)" in tex
    assert r"\frac{\partial E}{\partial o_{t}}" not in tex


def test_ng_layout_stacks_the_weights(documents):
    tex = to_latex(documents["lstm", "ng"])
    assert r"z_{f}^{\langle t \rangle} &= W_{f} \begin{bmatrix} a^{\langle t-1 \rangle}" in tex
    assert r"W_{f} &= \begin{bmatrix} W_{fa} & W_{fx} \end{bmatrix}" in tex


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("profile", PROFILES)
def test_markdown_has_only_katex_friendly_blocks(documents, cell, profile):
    md = to_markdown(documents[cell, profile])
    blocks = re.findall(r"\$\$\n(.*?)\n\$\$", md, flags=re.S)
    assert blocks and md.count("$$") == 2 * len(blocks)
    for block in blocks:
        assert balanced(block), block
        assert r"\begin{align}" not in block and r"\begin{align*}" not in block
        envs = re.findall(r"\\begin\{(\w+)\}", block)
        assert set(envs) <= {"aligned", "bmatrix"}
        assert len(re.findall(r"\\left(?![a-z])", block)) == len(re.findall(r"\\right(?![a-z])", block))


MATHTEXT_CASES = sorted({("lstm", n) for n in PROFILES} | {(c, "default") for c in CELLS})


@pytest.mark.parametrize(("cell", "profile"), MATHTEXT_CASES)
def test_every_equation_draws_with_mathtext(documents, cell, profile):
    from matplotlib.mathtext import MathTextParser

    parser = MathTextParser("path")
    for _, block in documents[cell, profile].equations():
        for row in block.rows:
            parser.parse("$" + mathtext_form(f"{row.lhs} {row.rel} {row.rhs}") + "$")


@needs_pdflatex
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("profile", PROFILES)
def test_latex_compiles(documents, cell, profile):
    pdf = compile_pdf(to_latex(documents[cell, profile]), f"{cell}-{profile}.tex")
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000


@needs_pdflatex
def test_a_latex_error_is_one_line_and_leaves_no_scratch_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    tex = "\\documentclass{article}\\begin{document}$\\nosuchmacro$\\end{document}\n"
    with pytest.raises(LatexError, match=r"Undefined control sequence\. \(at l\.1\)") as info:
        compile_pdf(tex, "broken.tex")
    assert "\n" not in str(info.value) and "broken.tex" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_output_is_deterministic():
    cell = BUILTIN_CELLS["lstm"]()
    one = to_latex(derivation_document(cell, "greff", steps=True))
    assert one == to_latex(derivation_document(cell, "greff", steps=True))


def test_jupyter_renders_the_objects():
    cell = BUILTIN_CELLS["lstm"]()
    text = derivation_document(cell)._repr_latex_()
    assert text.startswith("$$\\begin{aligned}") and text.count("$$") % 2 == 0
    assert "p + q + r + s" in jacobian_document(cell, total=True)._repr_latex_()
    assert "p + q" not in jacobian_document(cell)._repr_latex_()


def test_images_one_per_equation_in_order(tmp_path):
    doc = derivation_document(BUILTIN_CELLS["lstm"](), "default")
    assert main(["derive", "lstm", "--png", str(tmp_path / "png")]) == 0
    names = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert len(names) == len(doc.equations())
    assert names[0] == "001-forward-z_f.png" and names[1] == "002-forward-f.png"


def test_cli_writes_markdown_and_refuses_unknown_notation(tmp_path, capsys):
    out = tmp_path / "lstm.md"
    assert main(["derive", "lstm", "--format", "markdown", "--notation", "ng", "-o", str(out)]) == 0
    assert r"\Gamma_f^{\langle t \rangle}" in out.read_text()
    assert main(["derive", "lstm", "--notation", "knuth"]) == 2  # or a notation file
    assert "unknown notation 'knuth'" in capsys.readouterr().err
    assert main(["derive", "lstm", "--steps"]) == 2
    assert "use --format latex or markdown" in capsys.readouterr().err


@needs_pdflatex
def test_cli_pdf(tmp_path, capsys):
    tex = tmp_path / "doc" / "lstm.tex"
    assert main(["derive", "lstm", "--pdf", "--steps", "-o", str(tex)]) == 0
    assert capsys.readouterr().out.split() == [str(tex), str(tex.with_suffix(".pdf"))]
    assert tex.with_suffix(".pdf").read_bytes().startswith(b"%PDF")


def test_jacobian_latex_format(capsys):
    assert main(["jacobian", "lstm", "--total", "--format", "latex", "--notation", "greff"]) == 0
    out = capsys.readouterr().out
    assert r"\documentclass" in out and r"R_f \operatorname{diag}" in out


def test_generated_derivations_are_current():
    files = pipeline.generated_files()
    assert {"lstm/derivation.tex", "lstm/derivation.md", "lstm/derivation-ng.tex",
            "lstm/derivation-ng.md"} <= set(files)


def user_cell():
    """A GRU with reset-after, a peephole-like p_q and names no profile lists."""
    import sympy as sp

    from lstm_symbolic.core.cells import make_cell
    from lstm_symbolic.core.functions import MatVec, sigmoid

    S, x, h_prev = sp.Symbol, sp.Symbol("x"), sp.Symbol("h_prev")
    params, eqs = {}, []
    for g in "rz":
        params.update({f"W_{g}": ("hidden", "input"), f"U_{g}": ("hidden", "hidden"),
                       f"b_{g}": ("hidden",)})
        eqs += [(f"z_{g}", MatVec(S(f"W_{g}"), x) + MatVec(S(f"U_{g}"), h_prev) + S(f"b_{g}")),
                (g, sigmoid(S(f"z_{g}")))]
    params.update({"W_n": ("hidden", "input"), "U_n": ("hidden", "hidden"), "b_n": ("hidden",),
                   "b_hn": ("hidden",), "p_q": ("hidden",)})
    eqs += [("z_n", MatVec(S("W_n"), x) + S("b_n") + S("r") * (MatVec(S("U_n"), h_prev) + S("b_hn"))),
            ("n", sp.tanh(S("z_n"))), ("h", (1 - S("z")) * S("n") + S("z") * h_prev * S("p_q"))]
    return make_cell("user-gru", "test", inputs={"x": ("input",)}, states=("h",), params=params,
                     equations=eqs)


@pytest.mark.parametrize("profile", PROFILES)
def test_a_user_cell_renders_in_every_notation(profile):
    doc = derivation_document(user_cell(), profile, steps=True)
    tex = to_latex(doc)
    if profile == "pytorch":  # the cell has a GRU's weights: PyTorch stacks them as r, z, n
        assert r"W_{ih} &= \begin{bmatrix} W_{ir} \\ W_{iz} \\ W_{in} \end{bmatrix}" in tex
    else:
        assert "begin{bmatrix}" not in tex  # no stacked layout for weights the cell lacks
    assert r"\delta \left(U_n h_{t-1}\right)" in tex or profile != "default"
    assert "partial and the total Jacobian coincide" in tex
    if shutil.which("pdflatex"):
        assert compile_pdf(tex, "user.tex").startswith(b"%PDF")


def test_a_memory_that_reaches_itself_by_no_path_has_jacobians_zero():
    """c = h_prev + W0 @ x with h = h_prev: c_t depends on c_{t-1} neither directly nor through h (the fuzz's
    find: the total Jacobian's section indexed its first label of none)."""
    from lstm_symbolic.spec.load import parse_spec  # noqa: PLC0415

    cell = parse_spec('name = "fz"\nstates = ["h", "c"]\n[inputs]\nx = "input"\n[params]\nW0 = ["hidden", "input"]\n'
                      '[equations]\nc = "h_prev + W0 @ x"\nh = "h_prev"\n')
    latex = to_latex(derivation_document(cell))
    assert r"\right|_{h_{t-1}} &= 0 \\" in latex and r"{\mathrm{d} c_{t-1}} &= 0" in latex
