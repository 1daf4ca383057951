"""``python -m captioner`` runs the command line."""

from .cli import main

main()
