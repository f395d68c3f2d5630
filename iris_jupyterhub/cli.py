"""The ``iris-jupyterhub`` command: admin tools, one command group per subsystem.

Usage::

    iris-jupyterhub posix lookup --username alice
    iris-jupyterhub posix export --format passwd --out /etc/iris/passwd
    iris-jupyterhub rucio identities --config jupyterhub_config.py --email '{username}@ac.uk'

Each command group is a module with a ``register(subparsers)`` function that adds its
parser and sets ``handler`` (a function from the parsed arguments to an exit status) on
every leaf command. Adding a group is one line in :data:`COMMAND_GROUPS`.

Exit status: 0 success, 1 a result that needs attention (not found, import conflicts),
2 a usage error or an integrity problem (``posix check``), 3 an error that stopped the
command (database, configuration or file). Expected failures print one line on stderr,
never a traceback. What the commands share (exit codes, ``--db-url``/``--config``, the
guard) is in :mod:`iris_jupyterhub.cli_support`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .cli_support import EXIT_ATTENTION, EXIT_STATUS, Handler

__all__ = ["COMMAND_GROUPS", "build_parser", "main"]

COMMAND_GROUPS = (
    "iris_jupyterhub.posix.cli",
    "iris_jupyterhub.accounting.cli",
    "iris_jupyterhub.rucio.cli",
)
"""Modules whose ``register(subparsers)`` adds a command group, in ``--help`` order."""


def build_parser() -> argparse.ArgumentParser:
    """Build the parser with every command group of :data:`COMMAND_GROUPS`."""
    parser = argparse.ArgumentParser(
        prog="iris-jupyterhub",
        description="Administration tools for the iris-jupyterhub JupyterHub plugins.",
        epilog=EXIT_STATUS,
    )
    groups = parser.add_subparsers(title="command groups", metavar="GROUP", required=True)
    for module in COMMAND_GROUPS:
        importlib.import_module(module).register(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command in ``argv`` (default: ``sys.argv[1:]``) and return its exit status."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `iris-jupyterhub posix export | head`
        sys.stderr.close()
        return EXIT_ATTENTION


if __name__ == "__main__":
    sys.exit(main())
