"""``python -m trabecula`` runs the command line."""

from trabecula.cli import run

run()
