"""The accounting service: scheduled XDMoD and APEL exports (and, optionally, reconciling).

Run it as a JupyterHub-managed service (it reads the accounting database directly and
needs no hub API token or role)::

    c.JupyterHub.services = [
        {
            "name": "iris-accounting",
            "command": [
                sys.executable, "-m", "iris_jupyterhub.accounting.service",
                "--config", "/usr/local/etc/jupyterhub/jupyterhub_config.py",
            ],
        },
    ]

or on its own (a cron job: ``--once``). Every ``c.SessionAccounting.export_interval``
seconds it writes:

- XDMoD: the sessions that ended from midnight UTC ``export_days`` days ago until now,
  as one file in ``xdmod_out_dir`` (``xdmod-<from>-<to>.log``, written atomically; the
  shredder skips jobs it already has, so overlapping files are harmless);
- APEL: once per UTC day (and at the first run), the cumulative records of every session
  overlapping the previous and the current month into the ``dirq`` queue
  ``apel_spool_dir`` for ``ssmsend`` (the APEL server replaces a record it already has).

An export that fails (database down, directory not writable) is logged and tried again
at the next interval. With ``--reconcile`` it also runs the reconciler
(:mod:`~iris_jupyterhub.accounting.reconcile`) with its own Kubernetes client (in-cluster
credentials, else ``KUBECONFIG``); the hub already reconciles, so this is for set-ups
where the hub cannot (e.g. accounting several hubs from one database).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..cli_support import (
    EXIT_ERROR,
    EXIT_PROBLEMS,
    CommandError,
    add_database_arguments,
    config_of,
    database_rule,
    database_url,
)
from .apel import ApelOptions
from .config import SessionAccounting, configured_db_url
from .export import ExportResult, default_range, run_export
from .store import AccountingStore
from .xdmod import XdmodOptions

__all__ = ["ExportJob", "add_service_command", "main", "plan_exports", "run_exports", "serve"]

log = logging.getLogger("iris_jupyterhub.accounting.service")

DATABASE_RULE = database_rule("c.SessionAccounting.db_url, else c.IdentityRegistry.db_url,")
"""How the accounting commands and the service find the database (``--help`` text)."""


@dataclass(frozen=True)
class ExportJob:
    """One export to run: format, range and destination."""

    format: str
    start: datetime
    end: datetime
    out: str


def plan_exports(
    now: datetime, settings: SessionAccounting, last_apel_day: date | None
) -> list[ExportJob]:
    """The exports due at ``now`` (see the module documentation)."""
    now = now.astimezone(timezone.utc).replace(microsecond=0)
    jobs = []
    if settings.xdmod_out_dir:
        midnight = now.replace(hour=0, minute=0, second=0)
        start = midnight - timedelta(days=settings.export_days)
        jobs.append(ExportJob("xdmod", start, now, settings.xdmod_out_dir))
    if settings.site_name and last_apel_day != now.date():
        start, end = default_range(now)
        jobs.append(ExportJob("apel", start, end, settings.apel_spool_dir))
    return jobs


def run_exports(
    store: AccountingStore, jobs: list[ExportJob], settings: SessionAccounting
) -> dict[str, ExportResult | Exception]:
    """Run ``jobs``; each result, or the error that stopped it (logged)."""
    resource = settings.xdmod_resource or settings.site_name.lower() or "jupyterhub"
    apel = (
        ApelOptions(
            site_name=settings.site_name,
            cloud_compute_service=settings.cloud_compute_service or None,
            records_per_message=settings.apel_records_per_message,
        )
        if settings.site_name
        else None
    )
    results: dict[str, ExportResult | Exception] = {}
    for job in jobs:
        try:
            if job.format == "xdmod":
                Path(job.out).mkdir(parents=True, exist_ok=True)
            result = run_export(
                store,
                job.format,
                job.start,
                job.end,
                out=job.out,
                xdmod=XdmodOptions(resource=resource),
                apel=apel,
            )
            log.info("Accounting export %s", result.describe())
            results[job.format] = result
        except Exception as error:
            log.error(
                "Accounting export %s of %s..%s to %s failed (%s: %s); next try at the next "
                "interval",
                job.format,
                job.start.isoformat(),
                job.end.isoformat(),
                job.out,
                type(error).__name__,
                str(error)[:300],
            )
            results[job.format] = error
    return results


async def _kube_api() -> Any:
    import kubernetes_asyncio  # noqa: PLC0415 - only with --reconcile

    kube: Any = kubernetes_asyncio
    try:
        kube.config.load_incluster_config()
    except kube.config.ConfigException:
        await kube.config.load_kube_config()
    return kube.client.CoreV1Api()


async def serve(
    settings: SessionAccounting,
    db_url: str,
    *,
    once: bool = False,
    reconcile: bool = False,
) -> dict[str, ExportResult | Exception]:
    """Export (and reconcile) now, then every ``export_interval`` unless ``once``."""
    from .runner import run_reconciler  # noqa: PLC0415
    from .writer import writer_for  # noqa: PLC0415

    store = AccountingStore.from_url(db_url)
    last_apel_day: date | None = None
    results: dict[str, ExportResult | Exception] = {}
    try:
        while True:
            if reconcile:
                await run_reconciler(
                    settings,
                    writer_for(db_url, log),
                    await _kube_api(),
                    label_selector="component=singleuser-server",
                    log=log,
                    runs=1,
                )
            now = datetime.now(timezone.utc)
            jobs = plan_exports(now, settings, last_apel_day)
            loop = asyncio.get_running_loop()
            results = await loop.run_in_executor(None, run_exports, store, jobs, settings)
            if isinstance(results.get("apel"), ExportResult):
                last_apel_day = now.date()
            if once:
                return results
            await asyncio.sleep(settings.export_interval)
    finally:
        store.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m iris_jupyterhub.accounting.service",
        description="Scheduled XDMoD and APEL exports of IRISSpawner session records.",
        epilog=DATABASE_RULE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _options(parser)
    return parser


def _options(parser: argparse.ArgumentParser) -> None:
    add_database_arguments(
        parser,
        "the hub's jupyterhub_config.py with the c.SessionAccounting options and the database",
    )
    parser.add_argument("--once", action="store_true", help="export once and exit (cron)")
    parser.add_argument(
        "--reconcile", action="store_true", help="also reconcile open records with Kubernetes"
    )


def add_service_command(commands: Any) -> None:
    """Add ``service`` to the ``iris-jupyterhub accounting`` sub-commands ``commands``."""
    parser = commands.add_parser(
        "service",
        help="Run scheduled XDMoD and APEL exports (a JupyterHub-managed service).",
        description=build_parser().description,
        epilog=DATABASE_RULE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _options(parser)
    parser.set_defaults(handler=_run)


def main(argv: list[str] | None = None) -> int:
    """Run the service; exit status 0, 2 for a bad configuration, 3 when an export failed
    with ``--once``."""
    return _run(build_parser().parse_args(argv))


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        config = config_of(args)
        settings = SessionAccounting(config=config)
        url = database_url(args, config, configured_db_url(config))
    except (CommandError, ValueError, OSError) as error:
        print(f"iris-accounting service: {error}", file=sys.stderr)
        return EXIT_PROBLEMS
    results = asyncio.run(serve(settings, url, once=args.once, reconcile=args.reconcile))
    return EXIT_ERROR if any(isinstance(r, Exception) for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
