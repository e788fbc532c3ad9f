"""Equation images (issue 20): through TeX when it is installed, aligned as in the PDF; matplotlib's
mathtext otherwise (the `images` extra); any --format; a bad folder is one line and exit 2."""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

import pytest

from lstm_symbolic import cli, pipeline
from lstm_symbolic.article import publish
from lstm_symbolic.article.documents import derivation_document

ROOT = Path(__file__).resolve().parent.parent
HAVE_TEX = shutil.which("pdflatex") is not None
needs_tex = pytest.mark.skipif(not HAVE_TEX or not shutil.which("pdftoppm"), reason="pdflatex/pdftoppm absent")


@pytest.fixture(scope="module")
def doc():
    return derivation_document("lstm", "ng", steps=True)


@needs_tex
@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_png_works_with_any_format(tmp_path, capsys, doc, fmt):
    out = tmp_path / "eqs"
    assert cli.main(["derive", "lstm", "--steps", "--notation", "ng", "--format", fmt,
                     "--png", str(out)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == [f"{stem}.png" for stem, _ in doc.equations()]
    assert all((out / f).read_bytes().startswith(b"\x89PNG") for f in files)
    assert "PNG images under" in capsys.readouterr().out


@needs_tex
def test_tex_images_are_one_aligned_equation_each(doc):
    images = publish.tex_images(doc, "png")
    total = images[next(k for k in images if k.endswith("jacobian-total.png"))]
    width, height = int.from_bytes(total[16:20], "big"), int.from_bytes(total[20:24], "big")
    assert height > 200 and width > 300  # several rows, stacked: not one long mathtext line
    assert r"&=" in publish.equation_latex(doc.equations()[-1][1])


@pytest.mark.skipif(not shutil.which("pdftocairo") or not HAVE_TEX, reason="pdftocairo absent")
def test_svg_through_tex(doc):
    images = publish.equation_images(doc, "svg")
    assert len(images) == len(doc.equations())
    assert all(b"<svg" in body[:400] for body in images.values())


def test_without_tex_mathtext_draws_them(monkeypatch, doc):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(publish.shutil, "which", lambda name: None)
    images = publish.equation_images(doc, "png")
    assert len(images) == len(doc.equations())


def test_without_tex_or_matplotlib_the_error_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(publish.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert cli.main(["derive", "lstm", "--png", str(tmp_path / "eqs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "lstm-symbolic[images]"' in err
    assert not (tmp_path / "eqs").exists()


def test_the_images_extra_installs_matplotlib():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(dep.startswith("matplotlib") for dep in extras["images"])


@pytest.mark.parametrize("where", ["/proc/x", "afile", "afile/sub", "/dev/null"])
@pytest.mark.parametrize("kind", ["--png", "--svg"])
def test_a_bad_image_folder_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, where, kind):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("mine\n")
    monkeypatch.setattr(pipeline, "equation_images", lambda doc, fmt: {"001-x." + fmt: b"img"})
    assert cli.main(["derive", "lstm", kind, where]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lstm-symbolic: error:")
    assert (tmp_path / "afile").read_text() == "mine\n"
