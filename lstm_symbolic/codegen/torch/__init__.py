"""The PyTorch module emitter and its template."""
