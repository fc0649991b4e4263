"""The ``erlbridge`` command line (L5). Entry point: :func:`main`.

Run ``erlbridge --help`` for the commands; docs/cli.md has the full guide.
"""

from erlbridge.cli._app import cli, main

__all__ = ["cli", "main"]
