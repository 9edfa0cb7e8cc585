"""Framework-neutral core types: images, models, methods, explanations and errors.

Nothing in this package imports a deep-learning or web framework; a test enforces it.
"""
