"""Files from and for a user (issue 15): what is read, what is written, and what is never touched.

One case per finding: ``generate --dir`` deleting files it did not write, outputs replacing a
link, a device or a FIFO, mode 0600 outputs, tracebacks and partial sets on unwritable targets,
concurrent runs, images written straight to their names, pdflatex's scratch folder, and a spec
or formula file that is a device, a FIFO or too large.  The command line runs in a subprocess
(as a user runs it); the functions of :mod:`lstm_symbolic.files` and
:mod:`lstm_symbolic.files.manifest` are tested on their own.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from lstm_symbolic import cli, files, pipeline
from lstm_symbolic.files import OutputError, ReadError, manifest, read_text, write_files, write_groups
from lstm_symbolic.files.manifest import MANIFEST

ROOT = Path(__file__).resolve().parent.parent
BASE_SPEC = (ROOT / "examples" / "lstm-scaled.toml").read_text()
needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")


def run(*args, cwd=ROOT, env=None, prefix=(), timeout=120):
    return subprocess.run([*prefix, sys.executable, "-m", "lstm_symbolic", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)


def refused(result, needle: str) -> str:
    """The one stderr line of a refusal (exit 2, no traceback) that contains ``needle``."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and needle in lines[0], result.stderr
    return lines[0]


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# -- generate --dir: only its own files ---------------------------------------------------------
def users_folder(root: Path) -> dict[str, str]:
    mine = {".git/config": "[core]\n", "my_notes.txt": "notes\n", "src/main.py": "print(1)\n"}
    for rel, text in mine.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return mine


def test_generate_refuses_a_folder_of_other_files_and_deletes_nothing(tmp_path):
    mine = users_folder(tmp_path)
    before = listing(tmp_path)
    refused(run("generate", "--dir", str(tmp_path)), "did not write")
    assert listing(tmp_path) == before
    assert {rel: (tmp_path / rel).read_text() for rel in mine} == mine
    refused(run("generate", "--check", "--dir", str(tmp_path)), "did not write")


def test_generate_help_documents_the_manifest():
    result = run("generate", "--help")
    assert result.returncode == 0 and MANIFEST in result.stdout and "never deletes" in result.stdout


def test_sync_writes_a_manifest_and_removes_only_listed_files(tmp_path):
    manifest.sync(tmp_path, {"a/one.py": "1\n", "old/gone.py": "2\n"})
    assert manifest.listed(tmp_path) == {"a/one.py", "old/gone.py"}
    assert listing(tmp_path) == [MANIFEST, "a", "a/one.py", "old", "old/gone.py"]
    manifest.sync(tmp_path, {"a/one.py": "1 again\n", "b.txt": "3\n"})
    assert listing(tmp_path) == [MANIFEST, "a", "a/one.py", "b.txt"]  # old/ was emptied and removed
    assert (tmp_path / "a/one.py").read_text() == "1 again\n"
    (tmp_path / "a/yours.txt").write_text("mine\n")
    with pytest.raises(OutputError, match=r"1 file\(s\) lstm-symbolic did not write there \(e\.g\. a/yours\.txt\)"):
        manifest.sync(tmp_path, {"b.txt": "4\n"})
    assert (tmp_path / "a/one.py").read_text() == "1 again\n" and (tmp_path / "b.txt").read_text() == "3\n"


def test_a_listed_file_replaced_by_a_link_is_not_the_tools(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    root = tmp_path / "gen"
    manifest.sync(root, {"x.py": "1\n"})
    (root / "x.py").unlink()
    (root / "x.py").symlink_to(outside)
    with pytest.raises(OutputError, match="a symbolic link"):
        manifest.sync(root, {})
    assert (root / "x.py").is_symlink() and outside.read_text() == "keep\n"


def test_a_manifest_naming_a_path_outside_the_folder_is_refused(tmp_path):
    (tmp_path / "victim").write_text("keep\n")
    root = tmp_path / "gen"
    root.mkdir()
    (root / MANIFEST).write_text("# listed\n../victim\n")
    with pytest.raises(OutputError, match=rf"{MANIFEST}:2: not a path inside the folder"):
        manifest.sync(root, {})
    assert (tmp_path / "victim").read_text() == "keep\n"


def test_check_shows_what_generate_would_remove(tmp_path):
    pipeline.generate(tmp_path)
    (tmp_path / MANIFEST).write_text((tmp_path / MANIFEST).read_text() + "lstm/retired.py\n")
    (tmp_path / "lstm/retired.py").write_text("old\n")
    result = run("generate", "--check", "--dir", str(tmp_path))
    assert result.returncode == 1 and "-old" in result.stdout and "a/lstm/retired.py" in result.stdout
    pipeline.generate(tmp_path)
    assert not (tmp_path / "lstm/retired.py").exists() and pipeline.stale(tmp_path) == []


def test_staged_files_of_another_run_are_neither_counted_nor_deleted(tmp_path):
    manifest.sync(tmp_path, {"lstm/lstm.py": "1\n"})
    other = tmp_path / "lstm" / ".lstm.py.999999.0123abcd.tmp"
    other.write_text("another process is writing this\n")
    manifest.sync(tmp_path, {"lstm/lstm.py": "2\n"})
    assert other.read_text() == "another process is writing this\n"


def test_two_generate_runs_at_once_both_succeed(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-m", "lstm_symbolic", "generate", "--dir", str(tmp_path)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert pipeline.stale(tmp_path) == []
    assert not [p for p in tmp_path.rglob("*") if files.is_staged(p.name)]


# -- writing: staged, all or nothing, umask, no links or devices --------------------------------
@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_outputs_get_the_users_umask(tmp_path, mask, mode):
    code = (f"import os, sys; os.umask({mask:#o}); from lstm_symbolic.cli import main; "
            f"sys.exit(main(['emit', 'lstm', '--lang', 'c', '-o', {str(tmp_path)!r}]))")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=120).returncode == 0
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == {"lstm.c": mode, "lstm.h": mode, "lstm_c.py": mode}


def test_a_symlink_at_the_target_is_refused_and_its_file_untouched(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    link = tmp_path / "out" / "lstm.py"
    link.parent.mkdir()
    link.symlink_to(outside)
    refused(run("emit", "lstm", "--lang", "numpy", "-o", str(link.parent)), "it is a symbolic link")
    refused(run("derive", "lstm", "-o", str(link)), "it is a symbolic link")
    assert link.is_symlink() and outside.read_text() == "keep\n"


def test_a_linked_subfolder_inside_the_output_folder_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root = tmp_path / "out"
    root.mkdir()
    (root / "lstm").symlink_to(elsewhere)
    with pytest.raises(OutputError, match="lstm is a symbolic link, not a folder"):
        write_files({"lstm/lstm.py": "x\n"}, root)
    assert list(elsewhere.iterdir()) == []


def test_a_fifo_at_the_target_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.tex"
    os.mkfifo(fifo)
    refused(run("derive", "lstm", "-o", str(fifo), timeout=60), "it is a FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize("option", ["-o", "--png", "--svg"])
def test_a_folder_or_file_of_the_wrong_kind_is_one_line(tmp_path, option):
    afile = tmp_path / "afile"
    afile.write_text("keep\n")
    target, needle = (tmp_path, "it is a folder") if option == "-o" else (afile, "a regular file, not a folder")
    refused(run("derive", "lstm", option, str(target)), needle)
    assert afile.read_text() == "keep\n" and listing(tmp_path) == ["afile"]


@pytest.mark.parametrize("folder", ["/proc/x", "/sys"])
def test_png_into_a_folder_that_cannot_be_made_or_written_is_one_line(folder):
    if not Path(folder).parent.is_dir():
        pytest.skip(f"no {Path(folder).parent} here")
    refused(run("derive", "lstm", "--png", folder), f"cannot write to {folder}")


def test_an_unwritable_folder_is_one_line(tmp_path):
    prefix = ()
    if os.geteuid() == 0:  # root writes anywhere: run as nobody
        if shutil.which("setpriv") is None:
            pytest.skip("root without setpriv")
        prefix = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    base = Path(tempfile.mkdtemp(prefix="lstm-symbolic-ro-"))
    try:
        base.chmod(0o755)
        (base / "ro").mkdir(mode=0o555)
        result = run("derive", "lstm", "-o", str(base / "ro" / "x.tex"), prefix=prefix)
        refused(result, f"cannot write to {base / 'ro'}: Permission denied")
        assert list((base / "ro").iterdir()) == []
    finally:
        shutil.rmtree(base)


def test_emit_checks_every_target_before_writing_any(tmp_path):
    (tmp_path / "lstm_c.py").mkdir()
    refused(run("emit", "lstm", "--lang", "c", "-o", str(tmp_path)), "lstm_c.py: it is a folder")
    assert listing(tmp_path) == ["lstm_c.py"]


def test_images_are_staged_with_the_other_outputs(tmp_path):
    """--png DIR with a bad --svg writes no PNG: one all-or-nothing set."""
    (tmp_path / "afile").write_text("")
    refused(run("derive", "lstm", "--png", str(tmp_path / "png"), "--svg", str(tmp_path / "afile")),
            "not a folder")
    assert listing(tmp_path) == ["afile"]
    result = run("derive", "lstm", "--png", str(tmp_path / "png"))
    assert result.returncode == 0 and not [p for p in (tmp_path / "png").iterdir() if p.name.startswith(".")]


def test_a_failure_while_staging_leaves_nothing(tmp_path, monkeypatch):
    real_open, calls = os.open, []

    def failing_open(path, flags, mode=0o777, **kw):
        calls.append(path)
        if len(calls) == 3:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(files.os, "open", failing_open)
    with pytest.raises(OutputError, match=r"cannot write to .*new: Permission denied \(sub/c\.txt\)"):
        write_files({"a.txt": "1", "sub/b.txt": "2", "sub/c.txt": "3"}, tmp_path / "new")
    assert list(tmp_path.iterdir()) == []  # no staged file, and the folders it made are gone


def test_names_that_leave_the_folder_are_refused(tmp_path):
    for rel in ("../escaped.py", "/etc/escaped.py", "a/../../escaped.py", "", ".", "a\0b", "..\\x"):
        with pytest.raises(OutputError, match="must stay inside its folder"):
            write_files({rel: "x"}, tmp_path / "out")
    assert listing(tmp_path) == []


def test_one_target_written_twice_is_refused(tmp_path):
    with pytest.raises(OutputError, match="written twice"):
        write_groups([(tmp_path, {"a.tex": "1"}), (tmp_path, {"a.tex": "2"})])
    refused(run("derive", "lstm", "--pdf", "-o", str(tmp_path / "x.pdf")), "written twice")
    assert listing(tmp_path) == []


def test_writing_replaces_a_regular_file_and_leaves_no_staged_file(tmp_path):
    (tmp_path / "a.txt").write_text("old")
    assert write_files({"a.txt": "new", "b.bin": b"\x00\xff"}, tmp_path) == [tmp_path / "a.txt", tmp_path / "b.bin"]
    assert (tmp_path / "a.txt").read_text() == "new" and (tmp_path / "b.bin").read_bytes() == b"\x00\xff"
    assert listing(tmp_path) == ["a.txt", "b.bin"]


def fake_pdflatex(folder: Path) -> dict[str, str]:
    """An environment whose pdflatex fails with a TeX error, and whose TMPDIR is ``folder/tmp``."""
    bin_dir, scratch = folder / "bin", folder / "tmp"
    bin_dir.mkdir()
    scratch.mkdir()
    script = bin_dir / "pdflatex"
    script.write_text("#!/bin/sh\nprintf '! Emergency stop.\\nl.1 x\\n' > doc.log\nexit 1\n")
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TMPDIR": str(scratch)}


def test_a_failed_pdf_writes_nothing_and_leaves_no_scratch_folder(tmp_path):
    env = fake_pdflatex(tmp_path)
    refused(run("derive", "lstm", "--pdf", "-o", str(tmp_path / "out" / "x.tex"), env=env),
            "pdflatex failed on x.tex: Emergency stop. (at l.1)")
    assert listing(tmp_path) == ["bin", "bin/pdflatex", "tmp"]


@needs_pdflatex
def test_a_pdf_leaves_no_scratch_folder(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = run("derive", "lstm", "--pdf", "-o", str(tmp_path / "x.tex"),
                 env={**os.environ, "TMPDIR": str(scratch)})
    assert result.returncode == 0, result.stderr
    assert listing(tmp_path) == ["tmp", "x.pdf", "x.tex"]


# -- reading a user's file: regular files only, capped, one line --------------------------------
def test_read_text_reads_a_regular_file_and_a_link_to_one(tmp_path):
    (tmp_path / "a.toml").write_text("x = 1\n")
    (tmp_path / "link.toml").symlink_to(tmp_path / "a.toml")
    assert read_text(tmp_path / "a.toml", 6) == read_text(tmp_path / "link.toml", 6) == "x = 1\n"


@pytest.mark.parametrize("make, reason", [
    (lambda p: os.mkfifo(p), "the spec is not a regular file (a FIFO)"),
    (lambda p: p.mkdir(), "the spec is not a regular file (a folder)"),
    (lambda p: p.symlink_to("/dev/zero"), "the spec is not a regular file (a character device)"),
    (lambda p: p.write_bytes(b"x" * 101), "the spec is larger than 100 bytes"),
    (lambda p: p.write_bytes(b"ok \xff"), "the spec is not UTF-8 text (byte 3)"),
    (lambda p: None, "cannot read the spec: No such file or directory"),
])
def test_read_text_refuses_in_one_line(tmp_path, make, reason):
    path = tmp_path / "spec.toml"
    make(path)
    with pytest.raises(ReadError) as info:
        read_text(path, 100, "spec")
    assert info.value.reason == reason and str(info.value) == f"{path}: {reason}"


def test_a_file_swapped_for_a_fifo_after_the_first_look_is_refused(tmp_path, monkeypatch):
    fifo, regular = tmp_path / "swapped.toml", tmp_path / "regular.toml"
    os.mkfifo(fifo)
    regular.write_text("")
    real_stat = os.stat

    def fooled(path, *args, **kw):  # the first look sees a regular file
        return real_stat(regular) if str(path) == str(fifo) else real_stat(path, *args, **kw)

    monkeypatch.setattr(files.os, "stat", fooled)
    with pytest.raises(ReadError, match=r"not a regular file \(a FIFO\)"):
        read_text(fifo, 100, "spec")


def test_read_text_refuses_a_nul_byte_in_the_path():
    with pytest.raises(ReadError, match="the path holds a NUL byte"):
        read_text("a\0.toml", 100, "spec")


def test_dev_zero_as_a_formula_file_is_refused():
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    refused(run("verify", "/dev/zero", timeout=60),
            "/dev/zero: the formula file is not a regular file (a character device)")


@pytest.mark.parametrize("command", [["emit", "{path}", "--lang", "numpy", "-o", "{folder}"],
                                     ["derive", "{path}"], ["verify", "{path}"]])
def test_a_fifo_as_a_spec_or_formula_file_is_refused_without_blocking(tmp_path, command):
    fifo = tmp_path / "cell.toml"
    os.mkfifo(fifo)
    refused(run(*[a.format(path=fifo, folder=tmp_path) for a in command], timeout=60),
            "not a regular file (a FIFO)")
    assert listing(tmp_path) == ["cell.toml"]


def test_a_linked_character_device_as_a_spec_is_refused(tmp_path):
    link = tmp_path / "zero.toml"
    link.symlink_to("/dev/zero")
    refused(run("derive", str(link), timeout=60), "zero.toml:1:1: the spec is not a regular file (a character device)")


def test_a_nul_byte_in_a_spec_path_named_by_a_formula_file_is_one_line(tmp_path):
    formulas = tmp_path / "f.toml"
    formulas.write_text('cell = "x\\u0000.toml"\nnotation = "ng"\n[formulas]\ndft = "ft"\n')
    refused(run("verify", str(formulas)), "the path holds a NUL byte")


def test_a_large_spec_is_refused_before_parsing(tmp_path):
    big = tmp_path / "big.toml"
    big.write_text(BASE_SPEC + "#" * (256 * 1024))
    refused(run("emit", str(big), "--lang", "numpy", "-o", str(tmp_path)), "the spec is larger than 256 kB")
    assert listing(tmp_path) == ["big.toml"]


# -- the command line's last guard -------------------------------------------------------------
def test_an_unexpected_os_error_is_one_line(monkeypatch, capsys):
    def broken():
        raise PermissionError(13, "Permission denied", "/somewhere")

    monkeypatch.setattr(pipeline, "cell_summaries", broken)
    assert cli.main(["cells"]) == 2
    assert capsys.readouterr().err == "lstm-symbolic: error: Permission denied (/somewhere)\n"
