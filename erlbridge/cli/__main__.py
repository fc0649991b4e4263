"""``python -m erlbridge.cli`` runs the CLI."""

from erlbridge.cli import main

main()
