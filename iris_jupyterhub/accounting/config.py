"""``c.SessionAccounting.*``: every option of session accounting, with its documentation.

One :class:`SessionAccounting` is read by the spawner (recording sessions, metrics, the
reconciler), by the accounting service and by the ``iris-jupyterhub accounting`` commands,
so the site name or the database are set once, in ``jupyterhub_config.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from traitlets import Bool, Float, Int, Unicode, validate
from traitlets.config import Config, LoggingConfigurable

from ..db import check_db_url, registry_db_url

__all__ = ["SessionAccounting", "configured_db_url"]

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,254}")


def configured_db_url(config: Config) -> str:
    """``c.SessionAccounting.db_url`` as written in ``config`` (empty when unset)."""
    section = config.get("SessionAccounting", {})
    return str(section.get("db_url") or "") if isinstance(section, dict) else ""


class SessionAccounting(LoggingConfigurable):
    """Options of session accounting (records for XDMoD and APEL, Prometheus metrics)."""

    enabled = Bool(
        True,
        config=True,
        help="""
        Record every server session of ``IRISSpawner``: who ran it (POSIX uid, gid and
        group, federated identity), what it ran (profile, choices, image, CPU, memory,
        GPUs, node) and when (start, end, last seen). The records feed the XDMoD and
        APEL exports and the ``iris_*`` metrics at ``/hub/metrics``.

        On by default: an unrecorded session cannot be reported later, and a database
        failure never stops a spawn (writes are retried). Set to False only on hubs
        that must not keep usage records.
        """,
    )

    db_url = Unicode(
        "",
        config=True,
        help="""
        SQLAlchemy URL of the accounting database. Empty (the default): the identity
        registry's database (``c.IdentityRegistry.db_url``, by default the SQLite file
        ``iris-identities.sqlite`` beside the hub's database), so sessions and POSIX
        identities live in one place. Use ``postgresql+psycopg://...`` when several hub
        replicas or an external service read the records.
        """,
    )

    @validate("db_url")
    def _validate_db_url(self, proposal: Any) -> str:
        return check_db_url(str(proposal.value), "SessionAccounting.db_url")

    site_name = Unicode(
        "",
        config=True,
        help="""
        The site's name in the GOC DB (APEL ``SiteName``, mandatory in every APEL record),
        e.g. ``UKI-SOUTHGRID-RALPP``. The APEL export refuses to run without it.
        """,
    )

    cloud_compute_service = Unicode(
        "",
        config=True,
        help="""
        APEL ``CloudComputeService``: the service's name in the GOC DB (e.g.
        ``iris-jupyterhub``). Empty: left out of the records.
        """,
    )

    xdmod_resource = Unicode(
        "",
        config=True,
        help="""
        Resource name the XDMoD export puts in the ``cluster`` column; give the same name
        to ``xdmod-shredder -r``. Empty: ``site_name`` in lower case, or ``jupyterhub``.
        """,
    )

    @validate("site_name", "cloud_compute_service", "xdmod_resource")
    def _validate_names(self, proposal: Any) -> str:
        value = str(proposal.value)
        if value and _NAME_RE.fullmatch(value) is None:
            raise ValueError(
                f"SessionAccounting.{proposal.trait.name}: {value[:60]!r} must be 1-255 "
                "characters of letters, digits and . _ : / @ + - (no spaces or |), "
                "starting with a letter or digit"
            )
        return value

    apel_spool_dir = Unicode(
        "/var/spool/apel/outgoing",
        config=True,
        help="""
        Directory queue (``dirq`` ``QueueSimple``) the APEL export writes messages to, read
        by ``ssmsend`` (its ``path`` with ``path_type: dirq``).
        """,
    )

    @validate("apel_spool_dir")
    def _validate_spool(self, proposal: Any) -> str:
        value = str(proposal.value)
        if not value or not Path(value).is_absolute():
            raise ValueError(
                f"SessionAccounting.apel_spool_dir: must be an absolute path (got {value!r})"
            )
        return value

    apel_records_per_message = Int(
        1000,
        config=True,
        help="""
        Largest number of records in one APEL message (the APEL tools send at most 1000).
        """,
    )

    @validate("apel_records_per_message")
    def _validate_per_message(self, proposal: Any) -> int:
        value = int(proposal.value)
        if not 1 <= value <= 1000:
            raise ValueError(
                f"SessionAccounting.apel_records_per_message: must be 1-1000 (got {value})"
            )
        return value

    per_user_metric_labels = Bool(
        False,
        config=True,
        help="""
        Add a ``user`` label to the ``iris_*`` metrics. Off by default: one time series
        per user grows without bound on a large hub, and the hub's metrics are readable
        by anyone with the ``read:metrics`` scope.
        """,
    )

    heartbeat_interval = Float(
        60.0,
        config=True,
        help="""
        Seconds between writes of a running session's "last seen" time (checked each time
        the hub polls the server, ``c.Spawner.poll_interval``). A session whose server
        vanished while the hub was down ends at its last heartbeat, so this bounds how
        much running time can go unreported. Also how often the ``iris_*_hours_total``
        counters grow.
        """,
    )

    @validate("heartbeat_interval")
    def _validate_heartbeat(self, proposal: Any) -> float:
        value = float(proposal.value)
        if not 0.1 <= value <= 3600:
            raise ValueError(
                f"SessionAccounting.heartbeat_interval: must be 0.1-3600 seconds (got {value})"
            )
        return value

    reconcile_interval = Float(
        300.0,
        config=True,
        help="""
        Seconds between runs of the reconciler, which compares open session records with
        the pods in Kubernetes and closes the records of pods that are gone or finished
        (it also runs once when the hub starts). 0 turns the periodic runs off (the
        start-up run still happens).
        """,
    )

    @validate("reconcile_interval")
    def _validate_reconcile(self, proposal: Any) -> float:
        value = float(proposal.value)
        if value != 0 and not 1 <= value <= 86400:
            raise ValueError(
                "SessionAccounting.reconcile_interval: must be 0 (off) or 1-86400 seconds "
                f"(got {value})"
            )
        return value

    clock_skew_tolerance = Float(
        120.0,
        config=True,
        help="""
        Seconds by which a time reported by Kubernetes (a pod's ``startTime``, a
        container's ``finishedAt``) may differ from the hub's clock and still be used.
        A session starts at the hub's time when it saw the pod running; the pod's own
        start time is used instead when it is earlier by no more than this.
        """,
    )

    @validate("clock_skew_tolerance")
    def _validate_skew(self, proposal: Any) -> float:
        value = float(proposal.value)
        if not 0 <= value <= 3600:
            raise ValueError(
                f"SessionAccounting.clock_skew_tolerance: must be 0-3600 seconds (got {value})"
            )
        return value

    export_interval = Float(
        3600.0,
        config=True,
        help="""
        Seconds between export runs of the accounting service
        (``python -m iris_jupyterhub.accounting.service``): each run writes the XDMoD file
        of sessions ended in the last ``export_days`` days and, once a day, the APEL
        month-to-date records into ``apel_spool_dir``.
        """,
    )

    @validate("export_interval")
    def _validate_export_interval(self, proposal: Any) -> float:
        value = float(proposal.value)
        if not 60 <= value <= 86400:
            raise ValueError(
                f"SessionAccounting.export_interval: must be 60-86400 seconds (got {value})"
            )
        return value

    export_days = Int(
        2,
        config=True,
        help="Days of ended sessions in each XDMoD file the accounting service writes.",
    )

    @validate("export_days")
    def _validate_export_days(self, proposal: Any) -> int:
        value = int(proposal.value)
        if not 1 <= value <= 62:
            raise ValueError(f"SessionAccounting.export_days: must be 1-62 (got {value})")
        return value

    xdmod_out_dir = Unicode(
        "",
        config=True,
        help="""
        Directory the accounting service writes XDMoD files to
        (``iris-sessions-<YYYYmmddTHHMMSS>.log``, for ``xdmod-shredder -f slurm -i``).
        Empty: no XDMoD files.
        """,
    )

    @validate("xdmod_out_dir")
    def _validate_xdmod_dir(self, proposal: Any) -> str:
        value = str(proposal.value)
        if value and not Path(value).is_absolute():
            raise ValueError(
                f"SessionAccounting.xdmod_out_dir: must be an absolute path (got {value!r})"
            )
        return value

    def resolved_db_url(self, hub_db: str | None = None) -> str:
        """:attr:`db_url`, else the identity registry's database.

        That is :func:`iris_jupyterhub.db.registry_db_url` of this configuration:
        ``c.IdentityRegistry.db_url``, else ``iris-identities.sqlite`` beside the hub's
        SQLite database (``hub_db`` when given, else ``c.JupyterHub.db_url``).
        """
        return registry_db_url(self.config, explicit=self.db_url, hub_db=hub_db)

    def stale_after(self, poll_interval: float) -> float:
        """Seconds after which a last heartbeat no longer vouches for "running until now".

        In normal running a heartbeat is at most ``heartbeat_interval + poll_interval``
        old; three times the larger of the two leaves room for a slow poll.
        """
        return 3 * max(float(self.heartbeat_interval), float(poll_interval))
