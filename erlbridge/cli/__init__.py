"""The ``erlbridge`` command line (L5). Entry point: :func:`main`.

Run ``erlbridge --help`` for the commands; docs/cli.md has the full guide. The CLI needs
the ``cli`` extra (click, rich): ``pip install 'erlbridge[cli]'``.
"""

try:
    from erlbridge.cli._app import cli, main
    from erlbridge.cli._output import Output  # the CLI's printer, also used by erlbridge.demo
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    if exc.name not in ("click", "rich"):
        raise
    _missing = exc.name

    def main(argv: list[str] | None = None) -> int:
        """Explain how to get the CLI's dependencies (exit code 2)."""
        import sys  # noqa: PLC0415

        sys.stderr.write(f"erlbridge: the CLI needs {_missing}: pip install 'erlbridge[cli]'\n")
        raise SystemExit(2)


__all__ = ["Output", "cli", "main"]
