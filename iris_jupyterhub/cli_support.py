"""What every ``iris-jupyterhub`` command shares: exit codes, ``--db-url``/``--config``,
loading ``jupyterhub_config.py``, and the guard that turns expected failures into one line.

Exit status: :data:`EXIT_OK` success, :data:`EXIT_ATTENTION` a result that needs attention
(not found, import conflicts), :data:`EXIT_PROBLEMS` a usage error or an integrity problem,
:data:`EXIT_ERROR` an error that stopped the command (database, configuration or file).
Expected failures print one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from .db import DatabaseError, registry_db_url

__all__ = [
    "EXIT_ATTENTION",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "EXIT_STATUS",
    "CommandError",
    "Handler",
    "add_database_arguments",
    "config_of",
    "database_rule",
    "database_url",
    "guarded",
    "load_config",
]

EXIT_OK, EXIT_ATTENTION, EXIT_PROBLEMS, EXIT_ERROR = 0, 1, 2, 3

EXIT_STATUS = "exit status: 0 ok, 1 needs attention, 2 usage or integrity problem, 3 error"
"""One line for ``--help`` epilogs."""


def database_rule(configured: str = "c.IdentityRegistry.db_url") -> str:
    """The rule of :func:`iris_jupyterhub.db.registry_db_url` for ``--help`` texts.

    ``configured`` names the options read from ``--config`` before the environment.
    """
    rule = (
        "The database is found the same way by every command and by the hub, first match "
        f"wins: --db-url URL; else {configured} in --config jupyterhub_config.py; else "
        "$IRIS_REGISTRY_DB_URL; else iris-identities.sqlite beside the hub's SQLite database "
        "(c.JupyterHub.db_url of --config, by default jupyterhub.sqlite in the current "
        "directory). Give --config the hub's jupyterhub_config.py and the commands open the "
        "hub's database."
    )
    return textwrap.fill(rule, width=88) + "\n"


Handler = Callable[[argparse.Namespace], int]
"""A command: parsed arguments in, exit status out."""


class CommandError(Exception):
    """An expected failure: its message goes to stderr and the command exits with 3."""


def load_config(path: Path) -> Config:
    """Load a ``jupyterhub_config.py`` the way JupyterHub does (it runs the file)."""
    if not path.is_file():
        raise CommandError(f"configuration file {path} does not exist")
    loader = PyFileConfigLoader(path.name, path=str(path.parent.resolve()))
    try:
        config: Config = loader.load_config()
    except Exception as error:  # a config file can raise anything
        raise CommandError(f"cannot load {path}: {type(error).__name__}: {error}") from None
    return config


def config_of(args: argparse.Namespace) -> Config:
    """The configuration of ``--config``, or an empty one."""
    return load_config(args.config) if args.config else Config()


def database_url(args: argparse.Namespace, config: Config, explicit: str | None = None) -> str:
    """The database of a command: ``--db-url``, ``explicit``, then :func:`database_rule`."""
    return registry_db_url(config, explicit=args.db_url or explicit, environ=os.environ)


def add_database_arguments(parser: argparse.ArgumentParser, config_help: str) -> None:
    """Add ``--db-url`` and ``--config`` (``config_help`` says what is read from it)."""
    where = parser.add_argument_group("database (first match wins)")
    where.add_argument("--db-url", metavar="URL", help="SQLAlchemy URL of the database")
    where.add_argument("--config", type=Path, metavar="PATH", help=config_help)


def guarded(
    handler: Handler,
    command: Callable[[argparse.Namespace], str],
    expected: tuple[type[Exception], ...] = (),
) -> Handler:
    """``handler`` with expected failures as one stderr line and :data:`EXIT_ERROR`.

    Expected: :class:`CommandError`, database failures, ``OSError``, ``UnicodeError``
    (input that is not UTF-8, output that cannot be encoded) and ``expected``. The line
    starts with ``command(args)``, e.g. ``iris-jupyterhub posix export``.
    """
    caught: tuple[type[Exception], ...] = (
        CommandError,
        DatabaseError,
        OSError,
        UnicodeError,
        *expected,
    )

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except caught as error:
            print(f"{command(args)}: {error}", file=sys.stderr)
        return EXIT_ERROR

    return run
