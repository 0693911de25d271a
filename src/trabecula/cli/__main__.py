"""``python -m trabecula.cli`` (and ``torchrun -m trabecula.cli train ...``) runs the command line."""

from trabecula.cli import run

run()
