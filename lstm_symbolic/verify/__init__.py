"""Checking what people wrote: formulas (:mod:`.formulas`, ``verify``) and backward code run in a
child process (:mod:`.code`, :mod:`.calls`, ``verify-code``).  The public names are re-exported here:
``from lstm_symbolic.verify import check_backward, load_function, check_file``."""

from .formulas import (
    DEFAULT_TIMEOUT,
    BackwardReport,
    Checker,
    FormulaFile,
    QuantityCheck,
    Verdict,
    VerifyCodeError,
    VerifyFileError,
    check_backward,
    check_file,
    check_formula,
    check_text,
    exit_code,
    load_function,
    open_child,
    report_json,
    report_text,
    split_target,
)

__all__ = [
    "DEFAULT_TIMEOUT", "BackwardReport", "Checker", "FormulaFile", "QuantityCheck", "Verdict",
    "VerifyCodeError", "VerifyFileError", "check_backward", "check_file", "check_formula", "check_text",
    "exit_code", "load_function", "open_child", "report_json", "report_text", "split_target",
]
