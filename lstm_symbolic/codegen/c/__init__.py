"""The C emitter, its templates and the C runtime shipped beside every kernel."""
