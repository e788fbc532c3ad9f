"""Code generation: the plan of a cell's computation and one folder per output language."""
