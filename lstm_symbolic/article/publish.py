"""Documents to files: LaTeX, Markdown, PDF and one image per equation (pipeline level).

The templates under ``article/templates/`` receive only prepared strings; this module flattens
a :class:`~lstm_symbolic.article.document.Document` into them, runs pdflatex in a scratch folder (always
removed) and draws equations with matplotlib.  Everything is returned as text or bytes; the
pipeline writes it with :mod:`lstm_symbolic.files` (staged, all or nothing).
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..codegen.render import HEADER, render
from ..errors import UserError
from ..printing import escape
from .document import Block, Document, Plain, Prose, Section, pieces

PDFLATEX = ("pdflatex", "-halt-on-error", "-interaction=nonstopmode", "-no-shell-escape")
# The page layouts a PDF may take, tried in order until its last page is not nearly empty:
# (font size, top and bottom margin).  The LaTeX source without --pdf has the first.
# Tighter and tighter; last, looser: a page that stays nearly empty however tight is filled from the others.
LAYOUTS = (("11pt", "2cm"), ("11pt", "1.5cm"), ("10pt", "2cm"), ("10pt", "1.5cm"), ("11pt", "2.5cm"))
MIN_LAST_PAGE = 0.2  # the least share of the text height a last page (of several) may fill


class LatexError(UserError):
    """pdflatex is missing or rejected a document; the message holds the log's first error."""


def latex_text(text: str) -> str:
    """Our prose with inline ``$math$`` and ```code``` made safe for LaTeX text mode.  Only for
    our own text: ``$...$`` passes as math, so user text goes through :func:`latex_prose`."""
    parts = text.split("$")
    for k in range(0, len(parts), 2):
        plain = re.sub(r"([_&%#])", r"\\\1", parts[k])
        parts[k] = re.sub(r"`([^`]*)`", r"\\texttt{\1}", plain)
    return "$".join(parts)


def latex_prose(text: Prose) -> str:
    """Prose in LaTeX: our pieces by :func:`latex_text`, the user's escaped as plain text."""
    return "".join(escape.latex_text(p.text) if isinstance(p, Plain) else latex_text(p) for p in pieces(text))


def markdown_prose(text: Prose) -> str:
    """Prose in Markdown: our pieces as they are, the user's escaped as plain text."""
    return "".join(escape.markdown_text(p.text) if isinstance(p, Plain) else p for p in pieces(text))


def _rows(block: Block, last: bool, gap: str) -> list[dict]:
    out = []
    for k, row in enumerate(block.rows):
        end = "" if last and k == len(block.rows) - 1 else (gap if k == len(block.rows) - 1
                                                            else r" \\")
        out.append({"lhs": row.lhs, "rel": row.rel, "rhs": row.rhs, "end": end})
    return out


def _section_view(section: Section, prose) -> dict:
    gap = r" \\[6pt]" if any(len(b.rows) > 1 for b in section.blocks) else r" \\"
    rows = []
    for k, block in enumerate(section.blocks):
        rows += _rows(block, k == len(section.blocks) - 1, gap)
    blocks = [{"rows": _rows(b, True, "")} for b in section.blocks]
    return {"title": prose(section.title), "intro": prose(section.intro),
            "bullets": [prose(i) for i in section.items], "rows": rows, "blocks": blocks}


def to_latex(doc: Document, layout: tuple[str, str] = LAYOUTS[0]) -> str:
    """A standalone amsmath document in ``layout`` (font size, top and bottom margin)."""
    sections = [_section_view(s, latex_prose) for s in doc.sections]
    size, margin = layout
    return render("article/templates/document.tex.j2", header=HEADER, title=latex_prose(doc.title),
                  author=escape.latex_text(doc.author), date=escape.latex_text(doc.date),
                  size=size, margin=margin, sections=sections)


def to_markdown(doc: Document) -> str:
    """The same content with one ``$$`` block per equation (GitHub, Jupyter, KaTeX)."""
    sections = [_section_view(s, markdown_prose) for s in doc.sections]
    byline = ", ".join(escape.markdown_text(t) for t in (doc.author, doc.date) if t)
    return render("article/templates/markdown.md.j2", header=HEADER, title=markdown_prose(doc.title),
                  byline=byline, sections=sections)


@dataclass(frozen=True)
class Compiled:
    """A LaTeX source, its PDF and pdflatex's log."""

    tex: str
    pdf: bytes
    log: str

    @property
    def pages(self) -> int:
        found = re.search(r"Output written on .*?\((\d+) pages?", self.log, re.S)
        return int(found.group(1)) if found else 0

    @property
    def last_page_fill(self) -> float:
        """The share of the text height the last page fills (1.0 when the template's mark is
        absent)."""
        found = re.search(r"Last page: ([\d.]+)pt of ([\d.]+)pt", self.log)
        return float(found.group(1)) / float(found.group(2)) if found else 1.0

    def overfull(self, tolerance: float = 1.0) -> list[str]:
        """Every ``Overfull \\hbox`` wider than ``tolerance`` points, as logged."""
        return [m.group(0) for m in re.finditer(r"Overfull \\hbox \(([\d.]+)pt too wide\)[^\n]*",
                                                 self.log) if float(m.group(1)) > tolerance]


def fitted_pdf(doc: Document, name: str = "document") -> Compiled:
    """The document compiled in the first of :data:`LAYOUTS` whose last page is not nearly
    empty (or the last layout): a page holding four lines is tightened onto the others, or, where
    no tighter layout takes it, loosened into a fuller last page."""
    for layout in LAYOUTS:
        done = compile_latex(to_latex(doc, layout), name)
        if done.pages <= 1 or done.last_page_fill >= MIN_LAST_PAGE:
            return done
    return done


def compile_pdf(tex: str, name: str = "document") -> bytes:
    """The PDF of the LaTeX source ``tex``, compiled by pdflatex in a scratch folder that is
    always removed; ``name`` names the document in errors.  Writing it is the caller's."""
    return compile_latex(tex, name).pdf


def compile_latex(tex: str, name: str = "document") -> Compiled:
    """``tex`` compiled, with its PDF and log (see :func:`compile_pdf`)."""
    if shutil.which(PDFLATEX[0]) is None:
        raise LatexError("pdflatex not found: install texlive-latex-base and "
                         "texlive-latex-recommended (Debian) or drop --pdf")
    try:
        with tempfile.TemporaryDirectory(prefix="lstm-symbolic-tex-") as tmp:
            (Path(tmp) / "doc.tex").write_text(tex, encoding="utf-8")
            done = subprocess.run([*PDFLATEX, "doc.tex"], cwd=tmp, capture_output=True,
                                  text=True, errors="replace", timeout=300)
            pdf = Path(tmp) / "doc.pdf"
            if done.returncode != 0 or not pdf.is_file():
                raise LatexError(f"pdflatex failed on {name}: {first_error(Path(tmp) / 'doc.log')}")
            log = (Path(tmp) / "doc.log").read_text(encoding="utf-8", errors="replace")
            return Compiled(tex, pdf.read_bytes(), log)
    except subprocess.TimeoutExpired:
        raise LatexError(f"pdflatex timed out on {name}") from None
    except OSError as exc:
        if isinstance(exc, UserError):
            raise
        raise LatexError(f"cannot run pdflatex on {name}: {exc.strerror or exc} "
                         f"({exc.filename or 'its scratch folder'})") from None


def first_error(log: Path) -> str:
    """The first ``!`` line of a TeX log with the line number it names."""
    if not log.is_file():
        return "no log written"
    lines = log.read_text(errors="replace").splitlines()
    for k, line in enumerate(lines):
        if line.startswith("!"):
            where = next((m.group(0) for m in map(re.compile(r"^l\.\d+").match, lines[k:k + 12])
                          if m), "")
            return f"{line[1:].strip()}" + (f" (at {where})" if where else "")
    return "no error line in the log"


def mathtext_form(latex: str) -> str:
    """``latex`` in the subset matplotlib's mathtext draws (no matrices, no \\textstyle)."""
    def matrix(m: re.Match) -> str:
        body = m.group(1).strip()
        cells = [c.strip() for c in re.split(r"\\\\|&", body)]
        sep = r" ;\, " if r"\\" in body else r" \;\; "
        return r"\left[" + sep.join(cells) + r"\right]"

    text = re.sub(r"\\begin\{bmatrix\}(.*?)\\end\{bmatrix\}", matrix, latex, flags=re.S)
    text = re.sub(r"\\[bB]igl\(|\\[bB]igr\)", lambda m: m.group()[-1], text)  # broken over rows
    return text.replace(r"\textstyle", "").replace(r"\operatorname{diag}", r"\,\mathrm{diag}")


# The programs that turn one PDF page into an image of each format.
RASTER = {"png": "pdftoppm", "svg": "pdftocairo"}
IMAGES_EXTRA = 'pip install "lstm-symbolic[images]"'
EQUATION_PAGES = r"""\documentclass{{article}}
\usepackage[T1]{{fontenc}}
\IfFileExists{{lmodern.sty}}{{\usepackage{{lmodern}}}}{{}}
\usepackage{{amsmath,amssymb}}
\hoffset=-1in \voffset=-1in
\newcommand{{\equationpage}}[1]{{\setbox0=\hbox{{$\displaystyle #1$}}%
  \pdfpagewidth=\dimexpr\wd0+8pt\relax \pdfpageheight=\dimexpr\ht0+\dp0+8pt\relax
  \shipout\vbox{{\kern4pt\hbox{{\kern4pt\box0}}}}}}
\begin{{document}}
{pages}
\end{{document}}
"""


def equation_images(doc: Document, fmt: str = "png") -> dict[str, bytes]:
    """One image per equation (``{"001-forward-z_f.png": bytes, ...}``), in memory: writing
    them (all or nothing) is the caller's.  Through TeX where pdflatex and the converter are
    installed (aligned at "=" as in the PDF), else with matplotlib's mathtext."""
    if shutil.which(PDFLATEX[0]) and shutil.which(RASTER[fmt]):
        return tex_images(doc, fmt)
    return mathtext_images(doc, fmt)


def equation_latex(block: Block) -> str:
    """One equation as an ``aligned`` block, its rows aligned at the relation."""
    rows = [rf"{r.lhs} &{r.rel} {r.rhs}" for r in block.rows]
    return r"\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}"


def tex_images(doc: Document, fmt: str = "png") -> dict[str, bytes]:
    """Every equation typeset by pdflatex, one page each cropped to it, then converted by
    pdftoppm (PNG, 150 dpi) or pdftocairo (SVG)."""
    stems = [stem for stem, _ in doc.equations()]
    pages = "\n".join(rf"\equationpage{{{equation_latex(b)}}}" for _, b in doc.equations())
    pdf = compile_pdf(EQUATION_PAGES.format(pages=pages), "the equation images")
    try:
        with tempfile.TemporaryDirectory(prefix="lstm-symbolic-img-") as tmp:
            (Path(tmp) / "eq.pdf").write_bytes(pdf)
            images = {}
            for k, stem in enumerate(stems, start=1):
                out = Path(tmp) / f"{k}.{fmt}"
                command = (["pdftoppm", "-png", "-r", "150", "-singlefile", "-f", str(k), "-l", str(k),
                            "eq.pdf", str(k)] if fmt == "png" else
                           ["pdftocairo", "-svg", "-f", str(k), "-l", str(k), "eq.pdf", out.name])
                done = subprocess.run(command, cwd=tmp, capture_output=True, text=True,
                                      errors="replace", timeout=120)
                if done.returncode != 0 or not out.is_file():
                    raise LatexError(f"{command[0]} failed on equation {stem}: "
                                     f"{(done.stderr.strip().splitlines() or ['no message'])[0]}")
                images[f"{stem}.{fmt}"] = out.read_bytes()
            return images
    except subprocess.TimeoutExpired:
        raise LatexError(f"{RASTER[fmt]} timed out on the equation images") from None


def mathtext_images(doc: Document, fmt: str = "png") -> dict[str, bytes]:
    """One image per equation drawn with matplotlib's mathtext (no TeX needed)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError:
        raise LatexError(f"equation images need pdflatex and {RASTER.get(fmt, 'pdftoppm')} "
                         f"(poppler-utils), or matplotlib: {IMAGES_EXTRA}") from None
    images = {}
    style = {"svg.hashsalt": "lstm-symbolic", "mathtext.fontset": "cm", "font.family": "serif"}
    with matplotlib.rc_context(style):
        for stem, block in doc.equations():
            images[f"{stem}.{fmt}"] = _draw(plt, block, fmt)
    return images


def _draw(plt, block: Block, fmt: str) -> bytes:
    lines = [f"${mathtext_form(f'{r.lhs} {r.rel} {r.rhs}'.strip())}$" for r in block.rows]
    fig = plt.figure(figsize=(0.1, 0.1))
    fig.text(0, 0, "\n".join(lines), fontsize=14, va="bottom", ha="left")
    metadata = {"Date": None} if fmt == "svg" else {}
    out = io.BytesIO()
    try:
        fig.savefig(out, format=fmt, dpi=150, bbox_inches="tight", pad_inches=0.08,
                    facecolor="white", metadata=metadata)
    finally:
        plt.close(fig)
    return out.getvalue()
