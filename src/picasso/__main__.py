"""``python -m picasso`` runs the command line."""

from .cli import main

main()
