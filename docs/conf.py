"""Sphinx configuration of the reference site (MyST Markdown pages in this folder)."""

project = "lstm_symbolic"
author = "the lstm_symbolic developers"
extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3  # `[text](page.md#a-heading)` links resolve, and a broken one fails the -W build
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_title = "lstm_symbolic reference"
suppress_warnings = []
