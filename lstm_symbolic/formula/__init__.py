"""Formulas as people write them (text, NumPy, LaTeX): grammar, parser, transform to SymPy."""
