"""The maths: elementwise functions and their derivative registry, cells, the reverse sweep, Jacobians
and the exact component-level evaluator."""
