"""The JAX module emitter and its template."""
