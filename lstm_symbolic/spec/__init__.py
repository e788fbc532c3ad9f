"""Cell specs: the TOML loader and the built-in cells (``builtin/*.toml``)."""
