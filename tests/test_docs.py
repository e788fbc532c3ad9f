"""The reference site builds with every warning an error: a broken link, heading or toctree fails here."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_reference_site_builds_without_a_warning(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                           str(ROOT / "docs"), str(tmp_path / "html")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "html" / "index.html").is_file()


# -- every example in the README and the reference runs as it is written ---------------------------

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXPECTED_STATUS = {"verify": 1, "verify-code": 1}  # the examples show planted mistakes
EXPECTED_STATUS_OF: dict[str, int] = {}  # a command whose status differs from its command's


def blocks(path: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(path.read_text()) if lang == language]


def console_commands(block: str) -> list[tuple[str, list[str]]]:
    """``[(command, the output lines shown under it)]`` of a console block; ``...`` elides lines."""
    runs = []
    for line in block.splitlines():
        if line.startswith("$ "):
            runs.append((line[2:].split("  #")[0].strip(), []))
        elif runs and line.strip() != "...":
            runs[-1][1].append(line)
    return runs


@pytest.fixture(scope="module")
def example_folder(tmp_path_factory):
    """A scratch folder where the examples' relative paths (examples/, generated/, out/) resolve."""
    folder = tmp_path_factory.mktemp("examples")
    for name in ("examples", "generated"):
        (folder / name).symlink_to(ROOT / name)
    return folder


def _run(command: str, folder: Path) -> subprocess.CompletedProcess:
    argv = shlex.split(command)
    if argv[0] == "lstm-symbolic":
        argv = [sys.executable, "-m", "lstm_symbolic", *argv[1:]]
    elif argv[0] == "python":
        argv = [sys.executable, *argv[1:]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_console_examples_run_and_print_what_they_show(page, example_folder):
    commands = [run for block in blocks(page, "console") for run in console_commands(block)]
    if any("--pdf" in command for command, _ in commands) and not shutil.which("pdflatex"):
        pytest.skip("pdflatex missing: a PDF example needs it")
    for command, shown in commands:
        done = _run(command, example_folder)
        argv = shlex.split(command)
        status = EXPECTED_STATUS.get(argv[1], 0) if argv[0] == "lstm-symbolic" else 0
        status = EXPECTED_STATUS_OF.get(command, status)
        assert done.returncode == status, (command, done.stderr)
        lines = done.stdout.splitlines()
        at = 0
        for want in shown:  # each shown line appears, in order
            assert want in lines[at:], (command, want, done.stdout)
            at = lines.index(want, at) + 1


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_python_examples_run(page, example_folder):
    examples = blocks(page, "python")
    if any("torch" in block for block in examples):
        pytest.importorskip("torch")
    _run("lstm-symbolic emit lstm --lang numpy -o out", example_folder).check_returncode()
    for block in examples:
        code = f"import sys; sys.path.insert(0, {str(ROOT)!r})\n{block}"
        done = subprocess.run([sys.executable, "-c", code], cwd=example_folder, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, (block, done.stderr)


def test_the_readme_is_read_in_five_minutes():
    """The README introduces; the reference lives in docs/ (≤ 250 lines, and every page it links exists)."""
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    for target in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / target).is_file(), target
