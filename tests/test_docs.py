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


# -- the README's examples run as they are written -------------------------------------------------

FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


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
def readme_folder(tmp_path_factory):
    """A scratch folder where the README's relative paths (examples/, out/) resolve."""
    folder = tmp_path_factory.mktemp("readme")
    (folder / "examples").symlink_to(ROOT / "examples")
    return folder


def _run(command: str, folder: Path) -> subprocess.CompletedProcess:
    argv = shlex.split(command)
    if argv[0] == "lstm-symbolic":
        argv = [sys.executable, "-m", "lstm_symbolic", *argv[1:]]
    elif argv[0] == "python":
        argv = [sys.executable, *argv[1:]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=600, env=env)


def test_the_readme_console_examples_run_and_print_what_it_shows(readme_folder):
    if not shutil.which("pdflatex"):
        pytest.skip("pdflatex missing: the README's PDF example needs it")
    expected_failures = {"verify": 1, "verify-code": 1}  # the examples show planted mistakes
    for block in blocks(ROOT / "README.md", "console"):
        for command, shown in console_commands(block):
            done = _run(command, readme_folder)
            argv = shlex.split(command)
            status = expected_failures.get(argv[1], 0) if argv[0] == "lstm-symbolic" else 0
            assert done.returncode == status, (command, done.stderr)
            lines = done.stdout.splitlines()
            at = 0
            for want in shown:  # each shown line appears, in order
                assert want in lines[at:], (command, want, done.stdout)
                at = lines.index(want, at) + 1


def test_the_readme_python_examples_run(readme_folder):
    _run("lstm-symbolic emit lstm --lang numpy -o out", readme_folder).check_returncode()
    for block in blocks(ROOT / "README.md", "python"):
        code = f"import sys; sys.path.insert(0, {str(ROOT)!r})\n{block}"
        done = subprocess.run([sys.executable, "-c", code], cwd=readme_folder, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr


def test_the_readme_is_read_in_five_minutes():
    """The README introduces; the reference lives in docs/ (≤ 250 lines, and every page it links exists)."""
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    for target in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / target).is_file(), target
