"""The command line: parses arguments and calls the pipeline; nothing else.

Everything it writes passes :mod:`escape`: reports, errors and file names echo spec text,
paths and arguments, and none of those may act on the terminal or break a line in two."""

from __future__ import annotations

import argparse
import sys

from . import notation, pipeline
from .errors import UserError
from .files.manifest import MANIFEST
from .printing import escape
from .verify.run import DEFAULT_TIMEOUT

GENERATE_HELP = f"""\
Rewrite a folder (default generated/) with the code, derivations and examples of every
built-in cell.

The folder must be new, empty, or one generate wrote before: generate lists the files it
writes in DIR/{MANIFEST}, removes only listed files it no longer makes, and
refuses (exit 2, before writing anything) a folder holding any other file. It never deletes
a file it did not write, and overwrites only files at the names it writes. The files are
written all or nothing. --check writes nothing: it shows a diff where the folder is stale
(files generate would remove show as deleted) and refuses the same folders."""

VERIFY_CODE_HELP = """\
Check a hand-written backward function against the derivation.

This IMPORTS FILE.py, which RUNS its code (and the code of what it imports), with your
permissions: use it on code you trust. It runs in a child process, in its own session, with a
time limit (--timeout); its prints go to standard error. If the code raises, calls sys.exit,
crashes or runs past the limit, nothing counts as checked: one line says what happened, exit 2.
With a convention (--convention ng, cs231n or FILE.toml) it calls the file's own forward and
backward functions, found by the convention's names, for one step and for a whole sequence.
Exit 0 when every returned value agrees (values not returned are listed), 1 when one is
wrong, 2 when the file, a function or the convention cannot be loaded or run."""


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value





NOTATION_HELP = (f"whose names the LaTeX uses: {', '.join(notation.names())} or a notation file "
                 "FILE.toml (default: default)")


def _out(text: str) -> None:
    sys.stdout.write(escape.terminal(text))


def _lines(items) -> None:
    """One item a line (a path holding a line break stays on its line)."""
    sys.stdout.write("".join(f"{escape.visible(str(item))}\n" for item in items))


def _error(message: str) -> None:
    """One line on stderr, whatever the message holds (a line break in a file name stays visible)."""
    sys.stderr.write(escape.visible(message) + "\n")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints the whole usage)
        _error(f"{self.prog}: error: {message} (see --help)")
        self.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lstm-symbolic", description="Symbolic BPTT for LSTM-family cells.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("cells", help="list the built-in cells")
    p = sub.add_parser("derive", help="the forward and backward equations of a cell")
    p.add_argument("cell", help="a built-in cell name or the path of a .toml cell spec")
    p.add_argument("--format", choices=pipeline.FORMATS,
                   help="text (default), a standalone LaTeX document, or Markdown with $$ blocks")
    p.add_argument("--notation", default="default", help=NOTATION_HELP)
    p.add_argument("--steps", action="store_true", help="the chain-rule derivation, step by step")
    p.add_argument("-o", "--output", help="write to this file instead of standard output")
    p.add_argument("--pdf", action="store_true",
                   help="compile the LaTeX with pdflatex (next to -o FILE, default <cell>.tex)")
    p.add_argument("--png", metavar="DIR", help="one PNG image per equation into DIR (typeset by TeX "
                   "with pdflatex and pdftoppm, else matplotlib: the images extra); any --format")
    p.add_argument("--svg", metavar="DIR", help="one SVG image per equation into DIR (TeX and pdftocairo, "
                   "else matplotlib)")
    _heading_options(p)
    p = sub.add_parser("jacobian", help="dc_t/dc_{t-1}, partial or total")
    p.add_argument("cell")
    p.add_argument("--total", action="store_true", help="through h_{t-1} as well (default: partial)")
    p.add_argument("--format", choices=pipeline.FORMATS, default="text")
    p.add_argument("--notation", default="default", help=NOTATION_HELP)
    _heading_options(p)
    p = sub.add_parser("plot", help="how the gradient flows back in time (--flow)")
    p.add_argument("cells", nargs="+", metavar="CELL", help="built-in names or .toml specs, one curve each")
    p.add_argument("--flow", action="store_true", required=True,
                   help="||ds_T/ds_{T-k}|| against k from the derived Jacobians, partial and total")
    p.add_argument("-o", "--output", default="flow.png", help="the figure: .png, .svg or .pdf (default: flow.png)")
    p.add_argument("--csv", help="the numbers as CSV too (median, 10th and 90th percentile, each sequence)")
    p.add_argument("--weights", help="the cell's weights: .npz (parameter names) or a PyTorch state dict "
                   "(default: random, as PyTorch initialises them)")
    p.add_argument("--steps", type=int, default=50, help="sequence length T (default: 50)")
    p.add_argument("--sequences", type=int, default=20, help="how many sequences (default: 20)")
    p.add_argument("--hidden", type=int, default=16, help="hidden size with random weights (default: 16)")
    p.add_argument("--input", type=int, default=8, help="input size with random weights (default: 8)")
    p.add_argument("--seed", type=int, default=0, help="random weights and inputs (default: 0)")
    p = sub.add_parser("emit", help="backward-pass code")
    p.add_argument("cell")
    p.add_argument("--lang", required=True, choices=pipeline.LANGUAGES)
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                   help="accepted for either language; the code serves both: it dispatches on the arrays' dtype")
    p.add_argument("-o", "--output-dir", default=".", help="directory for the files (default: .)")
    p = sub.add_parser("verify", help="check the hand-derived formulas of a formula file (TOML)")
    p.add_argument("file", help="the formula file: cell, notation, shape, [formulas]")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p = sub.add_parser("verify-code", help="check a hand-written backward function (imports, i.e. runs, FILE.py)",
                       description=VERIFY_CODE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", help="FILE.py or FILE.py:FUNCTION (FILE.py is imported: its code runs)")
    p.add_argument("--cell", help="a built-in cell name or a .toml cell spec (default: the convention's, or lstm)")
    p.add_argument("--notation", default="ng", help="the names the function uses: "
                   f"{', '.join(notation.names())} or a notation file (default: ng)")
    p.add_argument("--convention", metavar="NAME|FILE.toml",
                   help="how the functions are called: ng, cs231n, kwargs or a convention file (default: one "
                        "backward function, ng for notation ng, else kwargs)")
    p.add_argument("--gate-order", metavar="ORDER",
                   help="the order of the stacked gate blocks, in the cell's gate letters (e.g. ifoc, ifco)")
    p.add_argument("--steps", type=int, default=4, choices=range(3, 17), metavar="T",
                   help="the sequence length for a sequence convention (3 to 16, default: 4)")
    p.add_argument("--timeout", type=_positive, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"stop the user's code after SECONDS in all, exit 2 (default: {DEFAULT_TIMEOUT:g})")
    p.add_argument("--seed", type=int, default=0, help="the random inputs' seed (default: 0)")
    p.add_argument("--dtype", choices=["float64", "float32", "float16"], default="float64",
                   help="the inputs' dtype (default: float64); the tolerance follows the least precise dtype "
                        "given or returned")
    p.add_argument("--rtol", type=_positive, metavar="RTOL",
                   help="the largest relative error that agrees (default: 1e-7 float64, 1e-4 float32, 3e-2 float16)")
    p = sub.add_parser("generate", help="rewrite generated/ from the built-in cells",
                       description=GENERATE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 with a diff where the folder is stale")
    p.add_argument("--dir", default="generated",
                   help="the folder: new, empty, or one generate wrote before (default: generated)")
    return parser


def _heading_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--title", help="the document's title (default: Backpropagation through time "
                   "of the <cell>); LaTeX and Markdown only")
    p.add_argument("--author", default="", help="the document's author (default: none)")
    p.add_argument("--date", default="", help="the document's date, as written (default: none)")


def _heading(args) -> dict:
    return {"title": args.title, "author": args.author, "date": args.date}


def _run(args) -> int:
    if args.command == "cells":
        _out("".join(f"{name:18} {description}\n" for name, description in pipeline.cell_summaries()))
        return 0
    if args.command == "generate":
        if args.check:
            diffs = pipeline.stale(args.dir)
            _out("".join(diffs))
            if diffs:
                _error(f"{args.dir}/ is stale in {len(diffs)} file(s): run `lstm-symbolic generate`")
            return 1 if diffs else 0
        written = pipeline.generate(args.dir)
        _out(f"wrote {len(written)} files under {args.dir}/\n")
        return 0
    if args.command == "verify":
        report, code = pipeline.verify_report(args.file, args.format)
        _out(report)
        return code
    if args.command == "verify-code":
        report, code = pipeline.verify_code_report(args.target, args.cell, args.notation, args.convention,
                                                   args.timeout, seed=args.seed, rtol=args.rtol, dtype=args.dtype,
                                                   gate_order=args.gate_order, steps=args.steps)
        _out(report)
        return code
    if args.command == "plot":
        _lines(pipeline.plot_flow(args.cells, args.output, args.csv, args.weights, steps=args.steps,
                                  sequences=args.sequences, hidden=args.hidden,
                                  input_size=args.input, seed=args.seed))
        return 0
    cell = pipeline.load_cell(args.cell)
    if args.command == "derive":
        images = {k: d for k, d in (("png", args.png), ("svg", args.svg)) if d}
        body, written = pipeline.publish_derivation(
            cell, fmt=args.format, notation=args.notation, steps=args.steps,
            output=args.output, pdf=args.pdf, images=images, heading=_heading(args))
        _out(body) if body else _lines(written)
        return 0
    if args.command == "jacobian":
        _out(pipeline.jacobian_output(cell, args.total, args.format, args.notation, _heading(args)))
        return 0
    _lines(pipeline.emit(cell, args.lang, args.output_dir))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except UserError as exc:
        _error(f"lstm-symbolic: error: {exc}")
        return 2
    except RecursionError:
        _error("lstm-symbolic: error: input nested too deeply")
        return 2
    except OSError as exc:  # the last guard: the pipeline raises its own errors for files
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"lstm-symbolic: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
