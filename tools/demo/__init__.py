"""Training (``python -m tools.demo.train``) and exporting (``python -m
tools.demo.export``) the bundled demo models; seeded and reproducible."""
