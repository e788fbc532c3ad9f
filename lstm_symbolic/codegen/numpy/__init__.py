"""The NumPy module emitter and its template."""
