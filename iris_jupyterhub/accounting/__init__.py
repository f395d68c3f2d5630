"""Session accounting: who ran which notebook server, with what resources, for how long,
charged to which group, exported for Open XDMoD and APEL.

* :mod:`.records`: :class:`SessionRecord` and the pure helpers (:func:`fqan`, :func:`vo_of`);
* :mod:`.store`: :class:`AccountingStore`, the records in the registry's database;
* :mod:`.xdmod`, :mod:`.apel`, :mod:`.jsonl`: the export formats (pure, streaming), and
  :mod:`.accelerator`: opt-in APEL GPU records;
* :mod:`.spool`: APEL messages into the ``ssmsend`` outgoing queue;
* :mod:`.export`: ranges, destinations and :func:`run_export`;
* :mod:`.cli`: ``iris-jupyterhub accounting export|list``;
* :mod:`.config`: :class:`SessionAccounting`, the ``c.SessionAccounting.*`` options;
* :mod:`.hooks`: :class:`AccountingMixin` (a base of ``IRISSpawner``); :mod:`.sessions`: its
  time rules;
* :mod:`.writer`, :mod:`.reconcile`, :mod:`.runner`: queued writes and the reconciler;
* :mod:`.metrics`: the ``iris_*`` Prometheus metrics; :mod:`.service`: scheduled exports.
"""

from .accelerator import accelerator_messages
from .apel import ApelOptions, apel_messages
from .config import SessionAccounting
from .export import FORMATS, ExportResult, default_range, parse_bound, run_export
from .hooks import AccountingMixin
from .jsonl import json_lines
from .metrics import SessionMetrics, session_metrics
from .reconcile import Action, reconcile
from .records import END_REASONS, SessionRecord, fqan, vo_of
from .sessions import session_end, session_start
from .spool import DEFAULT_SPOOL_DIR, SpoolError, queue_messages
from .store import AccountingStore
from .xdmod import XdmodOptions, xdmod_lines

__all__ = [
    "DEFAULT_SPOOL_DIR",
    "END_REASONS",
    "FORMATS",
    "AccountingMixin",
    "AccountingStore",
    "Action",
    "ApelOptions",
    "ExportResult",
    "SessionAccounting",
    "SessionMetrics",
    "SessionRecord",
    "SpoolError",
    "XdmodOptions",
    "accelerator_messages",
    "apel_messages",
    "default_range",
    "fqan",
    "json_lines",
    "parse_bound",
    "queue_messages",
    "reconcile",
    "run_export",
    "session_end",
    "session_metrics",
    "session_start",
    "vo_of",
    "xdmod_lines",
]
