"""Documents: the derivation as a document IR, and its LaTeX, Markdown, PDF and image outputs."""
