"""``iris-jupyterhub accounting ...``: export session records (XDMoD, APEL, JSON), list them.

``iris-jupyterhub accounting service`` runs the scheduled exports
(:mod:`iris_jupyterhub.accounting.service`).

The database is found as the hub finds it, and as the ``posix`` commands find the
registry (:func:`iris_jupyterhub.db.registry_db_url`), first match wins:

1. ``--db-url URL``;
2. ``--config PATH`` (a ``jupyterhub_config.py``): ``c.SessionAccounting.db_url``, else
   ``c.IdentityRegistry.db_url``;
3. the environment variable ``IRIS_REGISTRY_DB_URL``;
4. the SQLite file ``iris-identities.sqlite`` beside the hub's SQLite database
   (``c.JupyterHub.db_url`` of ``--config``, by default ``jupyterhub.sqlite`` in the
   current directory).

Site options (APEL site name, compute service, XDMoD resource, spool directory, records
per message) come from ``c.SessionAccounting`` in ``--config``; command-line flags win.
Formats, ranges and destinations: :mod:`iris_jupyterhub.accounting.export`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from traitlets import TraitError
from traitlets.config import Config

from ..cli_support import (
    EXIT_ATTENTION,
    EXIT_OK,
    CommandError,
    Handler,
    add_database_arguments,
    config_of,
    database_url,
    guarded,
)
from .apel import ApelOptions
from .config import SessionAccounting, configured_db_url
from .export import FORMATS, default_range, parse_bound, run_export
from .records import SessionRecord
from .service import DATABASE_RULE, add_service_command
from .store import AccountingStore
from .xdmod import XdmodOptions

__all__ = ["open_store", "register"]


def _settings(config: Config) -> SessionAccounting:
    try:
        return SessionAccounting(config=config)
    except (TraitError, ValueError) as error:
        raise CommandError(f"invalid SessionAccounting configuration: {error}") from None


@contextmanager
def open_store(args: argparse.Namespace, config: Config) -> Iterator[AccountingStore]:
    """The store of the database chosen by ``--db-url``, ``--config``, the environment."""
    store = AccountingStore.from_url(database_url(args, config, configured_db_url(config)))
    try:
        yield store
    finally:
        store.close()


def _range(args: argparse.Namespace) -> tuple[datetime, datetime]:
    try:
        end = parse_bound(args.to) if args.to else default_range(datetime.now(timezone.utc))[1]
        start = parse_bound(args.start) if args.start else default_range(end)[0]
    except ValueError as error:
        raise CommandError(str(error)) from None
    if end <= start:
        raise CommandError(f"--to {end:%Y-%m-%dT%H:%M:%SZ} must be after --from")
    return start, end


def cmd_export(args: argparse.Namespace) -> int:
    """Write the sessions of a range as XDMoD, APEL or JSON lines."""
    config = config_of(args)
    settings = _settings(config)
    start, end = _range(args)
    site = args.site_name or settings.site_name
    apel = None
    out = args.out
    if args.format == "apel":
        if not site:
            raise CommandError(
                "the APEL export needs the site name: --site-name or c.SessionAccounting.site_name"
            )
        try:
            apel = ApelOptions(
                site_name=site,
                cloud_compute_service=args.cloud_service or settings.cloud_compute_service or None,
                records_per_message=args.records_per_message or settings.apel_records_per_message,
                accelerators=args.accelerators,
                accelerator_model=args.gpu_model,
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        out = out or settings.apel_spool_dir
    resource = args.resource or settings.xdmod_resource or (site.lower() if site else "")
    xdmod = XdmodOptions(resource=resource or "jupyterhub")
    with open_store(args, config) as store:
        result = run_export(store, args.format, start, end, out=out, xdmod=xdmod, apel=apel)
    if result.destination not in ("stdout", "-"):
        print(result.describe())
    return EXIT_OK


def _row(record: SessionRecord) -> str:
    end = f"{record.end:%Y-%m-%dT%H:%M:%SZ}" if record.end else "-"
    cells = (
        record.record_id,
        record.posix_user or record.hub_user,
        record.group or "-",
        record.canonical_group or "-",
        record.profile or "-",
        f"{record.start:%Y-%m-%dT%H:%M:%SZ}",
        end,
        record.end_reason or "open",
        record.node or "-",
    )
    return "\t".join(" ".join(str(cell).split()) for cell in cells)


def cmd_list(args: argparse.Namespace) -> int:
    """Print sessions, one tab-separated line each; exit 1 if there is none."""
    config = config_of(args)
    with open_store(args, config) as store:
        if args.open:
            records: Any = store.open_sessions()
        else:
            start, end = _range(args)
            records = store.iter_sessions(start, end)
        count = 0
        print("record_id\tuser\tgroup\tcanonical_group\tprofile\tstart\tend\treason\tnode")
        for record in records:
            print(_row(record))
            count += 1
    print(f"{count} session(s)", file=sys.stderr)
    return EXIT_OK if count else EXIT_ATTENTION


_DESCRIPTION = f"""\
Export the session records of IRISSpawner for Open XDMoD (Slurm sacct format) and APEL
(cloud accounting messages for ssmsend), or as JSON lines; list sessions.

{DATABASE_RULE}"""

_EXPORT_EPILOG = """\
range:   [--from, --to) in UTC; YYYY-MM-DD is midnight (so --to's day is excluded) or give
         YYYY-MM-DDTHH:MM:SSZ. Default: from the first day of the previous month until now.
xdmod:   sessions that ended in the range, one sacct --parsable2 line each (26 fields);
         load with xdmod-shredder -r RESOURCE -f slurm -i FILE.
apel:    one cumulative record per session and calendar month overlapping the range;
         --out is the ssmsend dirq directory (default c.SessionAccounting.apel_spool_dir,
         /var/spool/apel/outgoing) or - to print the messages.
json:    every session overlapping the range, one JSON object per line.
Files are replaced atomically. Nothing in the database changes: exports can be repeated.
exit status: 0 written, 3 error (database, configuration, destination not writable)
"""


def _common(parser: argparse.ArgumentParser) -> None:
    add_database_arguments(
        parser,
        "the hub's jupyterhub_config.py: c.SessionAccounting.* and the database "
        "(c.SessionAccounting.db_url, c.IdentityRegistry.db_url, c.JupyterHub.db_url)",
    )


def _guarded(handler: Handler) -> Handler:
    return guarded(
        handler,
        lambda args: f"iris-jupyterhub accounting {args.accounting_command}",
        (ValueError,),
    )


def _range_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="start", metavar="WHEN", help="range start (inclusive)")
    parser.add_argument("--to", metavar="WHEN", help="range end (exclusive)")


def register(groups: Any) -> None:
    """Add the ``accounting`` command group to the top-level sub-parsers ``groups``."""
    accounting = groups.add_parser(
        "accounting",
        help="session accounting exports (XDMoD, APEL, JSON)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = accounting.add_subparsers(
        title="commands", dest="accounting_command", metavar="COMMAND", required=True
    )

    export = commands.add_parser(
        "export",
        help="Export the sessions of a range.",
        description=_DESCRIPTION,
        epilog=_EXPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(export)
    export.add_argument("--format", required=True, choices=FORMATS)
    _range_arguments(export)
    export.add_argument(
        "--out", metavar="FILE|DIR|-", help="destination (default: stdout; apel: spool dir)"
    )
    export.add_argument("--site-name", help="APEL SiteName (GOC DB site)")
    export.add_argument("--cloud-service", help="APEL CloudComputeService")
    export.add_argument(
        "--records-per-message", type=int, metavar="N", help="APEL records per message"
    )
    export.add_argument(
        "--accelerators",
        action="store_true",
        help="APEL: also write APEL-accelerator-message v0.1 GPU records (needs a server "
        "with accelerator accounting)",
    )
    export.add_argument("--gpu-model", metavar="MODEL", help="APEL accelerator Model field")
    export.add_argument("--resource", help="XDMoD resource name (cluster column)")
    export.set_defaults(handler=_guarded(cmd_export))

    listing = commands.add_parser(
        "list",
        help="List sessions (tab-separated) of a range, or the open ones.",
        description=_DESCRIPTION,
        epilog="exit status: 0 sessions listed, 1 none, 3 error",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(listing)
    listing.add_argument("--open", action="store_true", help="only sessions still running")
    _range_arguments(listing)
    listing.set_defaults(handler=_guarded(cmd_list))

    add_service_command(commands)
