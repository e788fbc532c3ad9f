"""The jobs the command line offers, as plain functions (cell name → files and texts)."""

from __future__ import annotations

import difflib
from pathlib import Path, PurePosixPath

from . import naming
from . import notation as notations
from .article import flow as flows
from .article.document import Document
from .article.documents import derivation_document
from .article.documents import jacobian_document as jacobian_latex_document
from .article.publish import equation_images, fitted_pdf, to_latex, to_markdown
from .codegen.c.emit import c_files
from .codegen.jax.emit import jax_files
from .codegen.kernel import build_kernel
from .codegen.numpy.emit import numpy_files
from .codegen.render import render
from .codegen.torch.emit import torch_files
from .core.cells import Cell
from .core.derive import Derivation, derive
from .core.jacobian import jacobian
from .errors import UserError
from .files import OutputError, manifest, read_bytes, write_files, write_groups
from .printing.text import jacobian_text, text
from .spec import builtins
from .spec.builtins import BUILTIN_CELLS

LANGUAGES = ("numpy", "c", "jax", "torch")
_EMITTERS = {"numpy": numpy_files, "c": c_files, "jax": jax_files, "torch": torch_files}
FORMATS = ("text", "latex", "markdown")
# The article-style derivations committed under generated/<cell>/: {cell: notations}.
DOCUMENTED = {"lstm": ("default", "ng")}
MAX_GENERATED_BYTES = 16 * 1024 * 1024  # what generate --check reads of one file


def load_cell(name: str | Cell) -> Cell:
    """A built-in cell by name, or a cell spec file (``.toml``); a Cell as it is.  Every
    public function here takes any of the three where it takes a cell."""
    return name if isinstance(name, Cell) else builtins.load_cell(name)


def verify_report(path: str, fmt: str = "text") -> tuple[str, int]:
    """``lstm-symbolic verify FILE``: the report and the exit code."""
    from .verify import formulas as verify  # noqa: PLC0415 - verify is only needed here

    verdicts = verify.check_file(path, load_cell)
    if fmt == "json":
        return verify.report_json(verdicts), verify.exit_code(verdicts)
    return verify.report_text(verdicts, f"verify {path}"), verify.exit_code(verdicts)


def verify_code_report(target: str, cell: str | None, notation: str, convention: str | None = None,
                       timeout: float | None = None, *, gate_order: str | None = None, steps: int = 4,
                       **options) -> tuple[str, int]:
    """``lstm-symbolic verify-code FILE.py[:FUNCTION]``: runs that file in a child process (at most
    ``timeout`` seconds of its code) and checks it; ``options``: ``seed``, ``rtol``, ``dtype``.

    ``kwargs``, or no convention with ``:FUNCTION``, checks one backward function called with the
    notation's names (:func:`verify.check_backward`); any other convention calls the file's own
    forward and backward functions, for one step and for a sequence (:mod:`verify_calls`)."""
    from .verify import calls as verify_calls
    from .verify import formulas as verify
    from .verify import known_conventions  # noqa: PLC0415

    timeout = timeout or verify.DEFAULT_TIMEOUT
    if convention in (None, "kwargs") or (convention == "ng" and notation != "ng"):
        if gate_order:
            raise verify.VerifyCodeError("--gate-order needs a convention with stacked gates (e.g. cs231n)")
        with verify.load_function(target, timeout) as function:
            report = verify.check_backward(function, load_cell(cell or "lstm"), notation, convention=convention,
                                           **options)
        return report.text(), report.exit_code
    conv = known_conventions.load(convention, cell)
    conv = conv.with_gate_order(gate_order) if gate_order else conv
    path, function = verify.split_target(target)
    pairs = [(conv, cell or conv.cell)] + [(c, c.cell) for c in known_conventions.companions(conv)]
    with verify.open_child(path, timeout) as child:
        reports = verify_calls.check_files(child, [(c, derive(load_cell(name))) for c, name in pairs],
                                           function, steps=steps, **options)
    return verify_calls.report_text(reports)


def cell_summaries() -> list[tuple[str, str]]:
    return [(name, build().description) for name, build in BUILTIN_CELLS.items()]


def jacobian_label(cell: Cell, total: bool) -> str:
    mem, out = cell.memory, cell.output
    if total and mem != out:
        return (f"d{mem}_t/d{mem}_t-1, total ({out}_t-1 = its output equation at t-1 moves "
                f"with {mem}_t-1; one term per gate that reads {out}_t-1)")
    if mem != out:
        return f"d{mem}_t/d{mem}_t-1, partial ({out}_t-1 held fixed)"
    return f"d{mem}_t/d{mem}_t-1 (the output is the state: partial and total coincide)"


def jacobian_document(cell: Cell | str, total: bool) -> str:
    cell = load_cell(cell)
    jac = jacobian(cell, total)
    return render("article/templates/jacobian.txt.j2", label=jacobian_label(cell, total),
                  of=f"d{jac.of}", wrt=f"d{jac.wrt}", text=jacobian_text(jac))


def derivation_text(derivation: Derivation) -> str:
    """The forward and backward equations of one step, in plain text."""
    cell = derivation.cell
    rank = cell.order()
    inputs = {a.name for a in derivation.input_adjoints}
    backward = [(a.name.name, text(a.rhs, rank)) for a in derivation.adjoints
                if a.name not in inputs and a.name != a.seed]
    recursion = [(a.name.name, text(a.rhs, rank)) for a in derivation.input_adjoints]
    incoming = "; ".join(
        f"{s.name} = gradient reaching {n} from step t+1" if s.name.endswith("_next")
        else f"{s.name} = everything reaching {n} (loss at t and step t+1)"
        for n, s in derivation.seeds.items()
    )
    jacobians = [{"label": jacobian_label(cell, t), "text": jacobian_text(jacobian(cell, t))} for t in (False, True)
                 if not t or cell.memory != cell.output]
    return render(
        "article/templates/derivation.txt.j2",
        cell=cell.name,
        description=cell.description,
        incoming=incoming,
        forward=[(eq.lhs.name, text(eq.rhs, rank)) for eq in cell.equations],
        backward=backward,
        grads=[(g.name.name, text(g.rhs, rank)) for g in derivation.param_grads],
        recursion=recursion,
        jacobians=jacobians,
    )


def code_files(cell: Cell | str, lang: str) -> dict[str, str]:
    """The generated code of ``cell`` in ``lang``: {file name: text}."""
    cell = load_cell(cell)
    if lang not in LANGUAGES:
        raise UserError(f"unknown language '{lang}': use one of {', '.join(LANGUAGES)}")
    return _EMITTERS[lang](build_kernel(derive(cell)))


def emit(cell: Cell | str, lang: str, out_dir: str | Path) -> list[Path]:
    cell = load_cell(cell)
    return write_files(code_files(cell, lang), out_dir)


def generated_files() -> dict[str, str]:
    """Everything under ``generated/``: {relative path: text}, for every built-in cell: the C of every cell in
    ``c/`` beside one copy of the C runtime, the rest in ``<cell>/``."""
    files = {}
    for name, build in BUILTIN_CELLS.items():
        cell = build()
        folder = naming.module_name(name)
        for lang in LANGUAGES:
            for rel, body in code_files(cell, lang).items():
                files[f"{'c' if lang == 'c' else folder}/{rel}"] = body
        files[f"{folder}/derivation.txt"] = derivation_text(derive(cell))
        for profile in DOCUMENTED.get(name, ()):
            doc = derivation_document(cell, profile, steps=True)
            stem = "derivation" if profile == "default" else f"derivation-{profile}"
            files[f"{folder}/{stem}.tex"] = to_latex(doc)
            files[f"{folder}/{stem}.md"] = to_markdown(doc)
    from .verify import formulas as verify  # noqa: PLC0415

    files.update({f"lstm/{rel}": body for rel, body in verify.example_files().items()})
    return files


def stale(root: str | Path) -> list[str]:
    """Unified diffs where ``root`` differs from what ``generate`` would write now (files it
    would remove included); refused, as ``generate`` refuses it, if ``root`` is not the tool's."""
    want = manifest.with_manifest(generated_files())
    _, have = manifest.owned(root, want)
    diffs = []
    for rel in sorted(set(want) | set(have)):
        old = read_bytes(have[rel], MAX_GENERATED_BYTES, "generated file").decode("utf-8", "replace") \
            if rel in have else ""
        new = want.get(rel, "")
        if old != new:
            diffs.append("".join(difflib.unified_diff(
                old.splitlines(True), new.splitlines(True), f"a/{rel}", f"b/{rel}")) or f"{rel} differs\n")
    return diffs


def generate(root: str | Path) -> list[Path]:
    """Rewrite ``root`` with what the code generates now; see :mod:`lstm_symbolic.files.manifest`
    for the folders it accepts and the only files it removes."""
    return manifest.sync(root, generated_files())


def _check_format(fmt: str, notation: str, steps: bool, heading: dict | None = None) -> None:
    if fmt not in FORMATS:
        raise UserError(f"unknown format '{fmt}': use one of {', '.join(FORMATS)}")
    notations.get(notation)
    if fmt == "text" and (notation != "default" or steps):
        raise UserError("--format text prints the internal names without steps: "
                        "use --format latex or markdown with --notation or --steps")
    if fmt == "text" and any((heading or {}).values()):
        raise UserError("--title, --author and --date head a document: "
                        "use --format latex or markdown")


def derivation_output(cell: Cell | str, fmt: str = "text", notation: str = "default",
                      steps: bool = False, heading: dict | None = None) -> str:
    """The derivation of ``cell`` as text, a standalone LaTeX document, or Markdown;
    ``heading`` holds the document's ``title``, ``author`` and ``date`` (each optional)."""
    cell = load_cell(cell)
    _check_format(fmt, notation, steps, heading)
    if fmt == "text":
        return derivation_text(derive(cell))
    doc = derivation_document(cell, notation, steps=steps, **(heading or {}))
    return to_latex(doc) if fmt == "latex" else to_markdown(doc)


def jacobian_output(cell: Cell | str, total: bool, fmt: str = "text", notation: str = "default",
                    heading: dict | None = None) -> str:
    """dc_t/dc_{t-1} (partial, or with ``total`` both, labelled) in ``fmt``."""
    cell = load_cell(cell)
    _check_format(fmt, notation, False, heading)
    if fmt == "text":
        return jacobian_document(cell, total)
    doc = jacobian_latex_document(cell, notation, total=total, **(heading or {}))
    return to_latex(doc) if fmt == "latex" else to_markdown(doc)


def publish_derivation(cell: Cell | str, *, fmt: str | None = None, notation: str = "default",
                       steps: bool = False, output: str | None = None, pdf: bool = False,
                       images: dict[str, str] | None = None,
                       heading: dict | None = None) -> tuple[str | None, list[str]]:
    """The ``derive`` command: (text for standard output or None, lines naming what was written).

    ``--pdf`` implies LaTeX and writes ``<cell>.tex`` when no ``-o`` is given; ``images`` maps
    ``"png"``/``"svg"`` to a directory that receives one image per equation.
    """
    cell = load_cell(cell)
    images = images or {}
    fmt = fmt or ("latex" if pdf or images or any((heading or {}).values()) else "text")
    if pdf and fmt != "latex":
        raise UserError("--pdf compiles the LaTeX document: use --format latex (or omit --format)")
    if images and not (output or pdf):  # only images: --format has no document to shape
        _check_format(fmt if fmt != "text" else "latex", notation, steps)
        body = ""
    else:
        body = derivation_output(cell, fmt, notation, steps, heading)
    doc = derivation_document(cell, notation, steps=steps, **(heading or {})) \
        if images or pdf else None
    groups, lines = [], []
    if pdf or output:
        folder, files = _document_files(cell, body, output, doc if pdf else None)
        groups.append((folder, files))
        lines += [str(folder / name) for name in files]
    for kind, directory in images.items():
        pictures = equation_images(doc, kind)
        groups.append((Path(directory), pictures))
        lines.append(f"{len(pictures)} {kind.upper()} images under {directory}/")
    write_groups(groups)
    return (None if groups else body), lines


FIGURES = ("png", "svg", "pdf")


def plot_flow(cells: list[str], output: str, csv: str | None = None, weights: str | None = None,
              **sizes) -> list[str]:
    """``plot --flow``: the figure (its format from ``output``'s suffix) and the numbers as CSV."""
    fmt = PurePosixPath(output).suffix.lstrip(".").lower()
    if fmt not in FIGURES:
        raise UserError(f"{output}: the figure is a .png, .svg or .pdf file")
    loaded = [load_cell(c) for c in cells]
    if weights is not None and len(loaded) != 1:
        raise UserError("--weights are the weights of one cell: name one cell")
    params = flows.load_weights(weights, loaded[0]) if weights else None
    results = [flows.flow(c, params=params, **sizes) for c in loaded]
    figure = Path(output)
    groups = [(figure.parent, {figure.name: flows.draw(results, fmt)})]
    if csv:
        groups.append((Path(csv).parent, {Path(csv).name: flows.csv_text(results)}))
    return [str(p) for p in write_groups(groups)]


def _document_files(cell: Cell, body: str, output: str | None, pdf: Document | None
                    ) -> tuple[Path, dict]:
    """(folder, {name: text or bytes}) of ``-o FILE`` (default ``<cell>.tex`` here) and, given
    the document ``pdf``, its PDF (the LaTeX then in the layout that fitted the pages)."""
    folder, name = (Path(output).parent, Path(output).name) if output else \
        (Path("."), f"{naming.module_name(cell.name)}.tex")
    files: dict[str, str | bytes] = {name: body}
    if pdf is not None:
        pdf_name = str(PurePosixPath(name).with_suffix(".pdf"))
        if pdf_name == name:
            raise OutputError(f"{folder / name} would be written twice (the LaTeX and its PDF): "
                              "give -o the name of the .tex file")
        compiled = fitted_pdf(pdf, name)
        files[name], files[pdf_name] = compiled.tex, compiled.pdf
    return folder, files
