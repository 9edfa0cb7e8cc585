"""Development tools that are not part of the installed package (training and exporting
the demo models). Run from the repository root, e.g. ``python -m tools.demo.train``."""
