"""The C emitter, its templates and the C runtime shipped beside every kernel."""

from __future__ import annotations

from pathlib import Path

RUNTIME = Path(__file__).resolve().parent / "runtime"


def runtime_files() -> dict[str, str]:
    """The C runtime, {file name: text}: every file of ``runtime/``, written verbatim beside each emitted kernel
    (a file added there ships with every kernel)."""
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(RUNTIME.iterdir())
            if p.is_file() and not p.name.startswith(".")}
