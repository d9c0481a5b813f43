"""The ``llmpulse`` command: one Typer app; each command group lives in its own module.

A command module exposes ``register(app: typer.Typer) -> None`` and imports anything heavy
inside its command functions, so ``llmpulse --help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

from llmpulse.cli._help import plain_type_labels

# Modules under llmpulse.cli that add commands, in the order --help lists them.
COMMAND_MODULES = [
    "demo",
    "simulate",
    "stats",
    "traces",
    "export",
    "models",
    "check",
    "db",
    "serve",
    "keys",
    "alerts",
    "flow",
]

app = typer.Typer(
    name="llmpulse",
    help=(
        "Monitoring and maintenance for LLM pipelines: record every LLM call, chain step and "
        "tool call; store it in SQLite or PostgreSQL; detect anomalies and regressions.\n\n"
        "Start with `llmpulse demo`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # reflow docstring paragraphs instead of keeping their line breaks
)


def _print_version(value: bool) -> None:
    # Runs while the options are parsed, before click asks for a command ("Missing command").
    if value:
        from llmpulse import __version__

        typer.echo(f"llmpulse {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the llmpulse version and exit.",
        is_eager=True,
        callback=_print_version,
    ),
) -> None:
    del version  # handled by _print_version


def _register_all() -> None:
    # A command module imports only typer at import time (its dependencies load inside the
    # command, which first checks its extra with cli._extras.require_extra), so one that fails
    # to import is a bug: let it fail loudly rather than drop the command from --help.
    for name in COMMAND_MODULES:
        importlib.import_module(f"llmpulse.cli.{name}").register(app)


_register_all()
plain_type_labels()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
