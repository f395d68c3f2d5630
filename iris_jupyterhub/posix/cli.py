"""``iris-jupyterhub posix ...``: look up, export, import, pin and check POSIX identities.

Every command finds the registry database as the hub does
(:func:`iris_jupyterhub.db.registry_db_url`), first match wins:

1. ``--db-url URL``;
2. ``c.IdentityRegistry.db_url`` in ``--config PATH`` (a ``jupyterhub_config.py``);
3. the environment variable ``IRIS_REGISTRY_DB_URL``;
4. ``iris-identities.sqlite`` beside the hub's SQLite database (``c.JupyterHub.db_url``
   of ``--config``, by default ``jupyterhub.sqlite`` in the current directory).

``--config`` also configures the registry exactly as in the hub (``uid_range``,
``gid_range``, ``group_aliases``, ...), also when the database URL comes from
``--db-url`` or the environment. Run the commands with the hub's configuration, so that
they open the hub's database and ``posix pin`` and ``posix import`` validate ids against
the same ranges as the hub.

The file formats and the import design are described in :mod:`iris_jupyterhub.posix.files`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from traitlets import TraitError

from ..atomic import write_atomically
from ..cli_support import (
    EXIT_ATTENTION,
    EXIT_OK,
    EXIT_PROBLEMS,
    CommandError,
    Handler,
    add_database_arguments,
    config_of,
    database_rule,
    database_url,
    guarded,
)
from .accounts import IdentityKey, PosixAccount
from .errors import RegistryError
from .files import (
    FileProblem,
    GroupLine,
    IdentityRow,
    Parsed,
    format_csv,
    format_group,
    format_json,
    format_passwd,
)
from .readers import join_passwd, parse_csv, parse_identity_map, parse_json, parse_passwd
from .registry import IdentityRegistry

__all__ = ["open_registry", "register"]

EXPORT_FORMATS = ("passwd", "group", "json", "csv")
IMPORT_FORMATS = ("csv", "json", "passwd")
MAX_PROBLEMS_SHOWN = 50


# -- finding the registry ---------------------------------------------------------------


@contextmanager
def open_registry(args: argparse.Namespace) -> Iterator[IdentityRegistry]:
    """The registry of ``--db-url``, ``--config``, the environment or the hub's default."""
    config = config_of(args)
    try:
        registry = IdentityRegistry(config=config, db_url=database_url(args, config))
    except (TraitError, ValueError) as error:
        raise CommandError(f"invalid IdentityRegistry configuration: {error}") from None
    try:
        yield registry
    finally:
        registry.close()


# -- commands ------------------------------------------------------------------------------


def _account_json(account: PosixAccount) -> dict[str, Any]:
    return {
        "issuer": account.key.issuer,
        "subject": account.key.subject,
        "username": account.username,
        "uid": account.uid,
        "gid": account.gid,
        "groups": [
            {"name": group.name, "gid": group.gid, "canonical": group.canonical}
            for group in account.groups
        ],
        "pinned": account.pinned,
        "deleted": account.deleted,
    }


def cmd_lookup(args: argparse.Namespace) -> int:
    """Print one account as JSON; exit 1 if there is none."""
    with open_registry(args) as registry:
        if args.uid is not None:
            account = registry.lookup_uid(args.uid)
        elif args.username is not None:
            account = registry.lookup_username(args.username)
        else:
            account = registry.lookup(_key(args))
    if account is None:
        print("no such identity in the registry", file=sys.stderr)
        return EXIT_ATTENTION
    print(json.dumps(_account_json(account), indent=2, ensure_ascii=False))
    return EXIT_OK


def _key(args: argparse.Namespace) -> IdentityKey:
    if not args.issuer or not args.subject:
        raise CommandError("give --issuer and --subject together, or --uid, or --username")
    return IdentityKey(args.issuer, args.subject)


def cmd_export(args: argparse.Namespace) -> int:
    """Write the registry as a passwd, group, CSV or JSON file."""
    with open_registry(args) as registry:
        accounts = list(registry.iter_accounts())
        groups = list(registry.iter_groups()) if args.format in ("group", "json") else []
    try:
        if args.format == "passwd":
            lines = format_passwd(accounts, home_template=args.home_template, shell=args.shell)
            text = "".join(f"{line}\n" for line in lines)
        elif args.format == "group":
            text = "".join(f"{line}\n" for line in format_group(groups))
        elif args.format == "csv":
            text = format_csv(accounts)
        else:
            text = format_json(accounts, groups)
    except ValueError as error:
        raise CommandError(f"refusing to write a broken {args.format} file: {error}") from None
    if args.out is None or str(args.out) == "-":
        sys.stdout.write(text)
    else:
        write_atomically(args.out, [text])
    return EXIT_OK


def _read(path: Path) -> str:
    if str(path) == "-":
        return sys.stdin.read()
    return path.read_text(encoding="utf-8")


def _parse_import(args: argparse.Namespace) -> tuple[Parsed[IdentityRow], list[GroupLine]]:
    text = _read(args.file)
    if args.format == "passwd":
        if args.map is None:
            raise CommandError("--format passwd needs --map FILE (the identity map, CSV or JSON)")
        return join_passwd(parse_passwd(text), parse_identity_map(_read(args.map))), []
    if args.map is not None:
        raise CommandError("--map is only used with --format passwd")
    if args.format == "csv":
        return parse_csv(text), []
    identities, groups = parse_json(text)
    identities.problems.extend(groups.problems)
    return identities, groups.records


def _moved_groups(registry: IdentityRegistry, groups: list[GroupLine]) -> list[str]:
    """Groups of a JSON import whose gid here differs from the file's (gids are not pinned)."""
    expected = {group.canonical: group.gid for group in groups if group.canonical}
    return [
        f"group {group.canonical!r}: gid {group.gid} here but {expected[group.canonical]} in file"
        for group, _ in registry.iter_groups(include_personal=False)
        if group.canonical in expected and expected[group.canonical] != group.gid
    ]


def _print_problems(title: str, problems: list[str]) -> None:
    print(f"{title} ({len(problems)}):", file=sys.stderr)
    for problem in problems[:MAX_PROBLEMS_SHOWN]:
        print(f"  {problem}", file=sys.stderr)
    if len(problems) > MAX_PROBLEMS_SHOWN:
        print(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more", file=sys.stderr)


def cmd_import(args: argparse.Namespace) -> int:
    """Pin existing accounts from a file; exit 1 on conflicts or (without --partial) bad lines."""
    parsed, groups = _parse_import(args)
    problems: list[FileProblem] = parsed.problems
    if problems:
        _print_problems(f"problems in {args.file}", [str(problem) for problem in problems])
        if not args.partial:
            print("nothing imported (use --partial to import the good lines)", file=sys.stderr)
            return EXIT_ATTENTION
    with open_registry(args) as registry:
        report = registry.import_accounts(row.to_record() for row in parsed.records)
        moved = _moved_groups(registry, groups)
    for line in report.added:
        print(f"added: {line}")
    for line in report.unchanged:
        print(f"unchanged: {line}")
    if report.conflicts:
        _print_problems("conflicts (not imported)", list(report.conflicts))
    if moved:
        _print_problems("groups with another gid than in the file", moved)
    print(report)
    return EXIT_ATTENTION if report.conflicts or problems or moved else EXIT_OK


def cmd_pin(args: argparse.Namespace) -> int:
    """Pin one identity to a uid (and optionally a name and gid); exit 1 on a conflict."""
    with open_registry(args) as registry:
        result = registry.pin(_key(args), args.uid, username=args.username, gid=args.gid)
    if not result.ok:
        _print_problems("pin refused", list(result.conflicts))
        return EXIT_ATTENTION
    if result.account is not None:
        print(f"{result.status}: {result.account.describe()}")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    """Print every integrity problem; exit 2 if there is any."""
    with open_registry(args) as registry:
        problems = registry.check()
    for problem in problems:
        keys = "; ".join(str(key) for key in problem.keys)
        print(f"{problem.kind}: {problem.detail}" + (f" [{keys}]" if keys else ""))
    if problems:
        print(f"{len(problems)} integrity problem(s)", file=sys.stderr)
        return EXIT_PROBLEMS
    print("ok: no integrity problems")
    return EXIT_OK


# -- parser --------------------------------------------------------------------------------

_DESCRIPTION = f"""\
Look up, export, import, pin and check the POSIX identities (uid, gid, login name, groups)
that the IdentityRegistry gives to federated identities.

{database_rule()}--config also supplies uid_range, gid_range and group_aliases.
"""

_IMPORT_EPILOG = """\
formats: csv    issuer,subject,username,uid[,gid] (header row optional)
         json   the file written by `posix export --format json`
         passwd a passwd file plus --map FILE, an identity map (CSV as above with uid
                optional, or JSON) joined by username; uid and gid come from passwd
Existing assignments are never overwritten: a conflict is reported and skipped.
exit status: 0 all imported or unchanged, 1 conflicts or bad lines, 3 error
"""


def _command_adder(commands: Any) -> Any:
    """A function adding one command (with the database options and the guard)."""

    def command(name: str, handler: Handler, help_text: str, **kwargs: Any) -> Any:
        parser = commands.add_parser(
            name,
            help=help_text,
            description=f"{help_text}\n\n{_DESCRIPTION}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            **kwargs,
        )
        add_database_arguments(
            parser,
            "the hub's jupyterhub_config.py: c.IdentityRegistry.* (db_url, ranges, "
            "aliases) and c.JupyterHub.db_url",
        )
        parser.set_defaults(
            handler=guarded(
                handler,
                lambda args: f"iris-jupyterhub posix {args.posix_command}",
                (RegistryError,),
            )
        )
        return parser

    return command


def _lookup_and_export(command: Any) -> None:
    lookup = command("lookup", cmd_lookup, "Print the account of one identity as JSON.")
    which = lookup.add_mutually_exclusive_group(required=True)
    which.add_argument("--issuer", help="issuer URL (with --subject)")
    which.add_argument("--uid", type=int, help="numeric user id")
    which.add_argument("--username", help="POSIX login name")
    lookup.add_argument("--subject", help="the 'sub' claim (with --issuer)")

    export = command(
        "export",
        cmd_export,
        "Write all live accounts as a passwd, group, CSV (identity map) or JSON file.",
        epilog="Files are replaced atomically (temporary file + rename) with mode 0644.",
    )
    export.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    export.add_argument("--out", type=Path, metavar="FILE", help="output file (default stdout)")
    export.add_argument(
        "--home-template",
        default="/home/{username}",
        help="passwd home directory; may use {username} and {uid} (default /home/{username})",
    )
    export.add_argument("--shell", default="/bin/bash", help="passwd shell (default /bin/bash)")


def _import_pin_check(command: Any) -> None:
    importer = command(
        "import", cmd_import, "Pin existing site accounts from a file.", epilog=_IMPORT_EPILOG
    )
    importer.add_argument("file", type=Path, metavar="FILE", help="file to import ('-': stdin)")
    importer.add_argument("--format", required=True, choices=IMPORT_FORMATS)
    importer.add_argument("--map", type=Path, metavar="FILE", help="identity map for passwd")
    importer.add_argument(
        "--partial", action="store_true", help="import the good lines of a file with bad lines"
    )

    pin = command(
        "pin",
        cmd_pin,
        "Pin one identity to a uid (and optionally a login name and primary gid).",
        epilog="exit status: 0 pinned or already so, 1 refused (conflict), 3 error",
    )
    pin.add_argument("--issuer", required=True)
    pin.add_argument("--subject", required=True)
    pin.add_argument("--uid", type=int, required=True)
    pin.add_argument("--username", help="login name (default: derived as at login)")
    pin.add_argument("--gid", type=int, help="primary (personal group) gid")

    command(
        "check",
        cmd_check,
        "Report integrity problems (shared ids or names, out-of-range ids, ...).",
        epilog="exit status: 0 no problems, 2 problems found, 3 error",
    )


def register(groups: Any) -> None:
    """Add the ``posix`` command group to the top-level sub-parsers ``groups``."""
    posix = groups.add_parser(
        "posix",
        help="POSIX identity mapping (uids, gids, names)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = posix.add_subparsers(
        title="commands", dest="posix_command", metavar="COMMAND", required=True
    )
    command = _command_adder(commands)
    _lookup_and_export(command)
    _import_pin_check(command)
