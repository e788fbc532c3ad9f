"""Printers: SymPy printer subclasses that turn derivation expressions into text.

Each output language is one printer; a printer never derives.  Every primitive of
``functions.PRIMITIVES`` and every linear atom needs a ``_print_<name>`` rule in each printer
(a test holds this).
"""
