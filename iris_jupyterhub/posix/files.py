"""Read and write the files that carry POSIX identities in and out of the registry.

Everything here is a pure function over plain data: no database, no files, no logging. The
command line (:mod:`iris_jupyterhub.posix.cli`) reads and writes the files and talks to the
registry.

Export formats
--------------
``passwd``
    One line per account, ``name:x:uid:gid:gecos:home:shell`` (7 fields), for Slurm, Open
    OnDemand and SSSD's files provider. The GECOS field is a fixed text (``IRIS identity``
    by default): no claim value ever reaches it.
``group``
    One line per group, ``name:x:gid:member,member`` (4 fields), personal groups included
    (their one member is the user).
``csv`` (the *identity map*)
    ``issuer,subject,username,uid,gid`` with that header row, every field quoted (RFC 4180).
``json``
    One object, stable across releases (new keys may be added, none removed or renamed)::

        {"format": "iris-jupyterhub/posix-identities", "version": 1,
         "identities": [{"issuer": "...", "subject": "...", "username": "alice",
                         "uid": 2000001, "gid": 2000001, "groups": ["iris", "lsst"]}],
         "groups": [{"name": "iris", "gid": 3000001, "canonical": "vo.iris.ac.uk",
                     "members": ["alice"]}]}

    An identity's ``groups`` are the POSIX names of its community groups (its personal
    group has the username as name and ``gid`` as gid); ``canonical`` is the group in the
    authenticator's group model, ``null`` for personal groups. Identities are sorted by
    uid, groups by gid, member and group-name lists by name.

Every writer refuses (:class:`ValueError`) a value that could add a field or a line: a
name that is not a POSIX name (``[a-z_][a-z0-9_-]*``, at most 32 characters), a negative
id, or a home, shell or GECOS text containing ``:``, a control character or a line break.

Import design
-------------
Importing pins accounts: *this* person keeps *this* uid. A person is an (issuer, subject)
pair, so every import needs it, and passwd and group files have no place for it. Hence:

* ``csv`` and ``json`` carry identities and are imported on their own
  (:func:`~.readers.parse_csv`, :func:`~.readers.parse_json`). In CSV the header row is
  optional and ``gid`` may be empty (the registry then uses the personal group).
* ``passwd`` is imported together with an identity map, joined by username
  (:func:`~.readers.parse_passwd`, then :func:`~.readers.join_passwd`). The map is a CSV
  or JSON file in the formats above (detected by a leading ``{``); in a map, ``uid`` and
  ``gid`` may be empty. uid and gid come from the passwd line; if the map gives a
  different uid for that name, the line is a problem. Passwd lines without a map entry
  are problems too, and map entries without a passwd line are ignored.
* ``group`` files are parsed and validated (:func:`~.readers.parse_group`) so that an admin can
  check one, and their gids are carried by the JSON format.

So both round trips are exact: ``export --format json`` then ``import --format json``;
``export --format passwd`` plus ``export --format csv`` then
``import --format passwd --map FILE``.

The parsers live in :mod:`iris_jupyterhub.posix.readers`; they report every bad line
as a :class:`FileProblem` instead of stopping at the first one.
"""

from __future__ import annotations

import csv
import io
import json
import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .accounts import IdentityKey, ImportRecord, PosixAccount, PosixGroup
from .names import is_valid_name

__all__ = [
    "JSON_FORMAT",
    "JSON_VERSION",
    "FileProblem",
    "GroupLine",
    "IdentityRow",
    "Parsed",
    "PasswdLine",
    "check_id",
    "check_name",
    "format_csv",
    "format_group",
    "format_json",
    "format_passwd",
]

JSON_FORMAT = "iris-jupyterhub/posix-identities"
"""Value of the ``format`` key of the JSON export."""

JSON_VERSION = 1
"""Value of the ``version`` key of the JSON export."""

CSV_HEADER = ("issuer", "subject", "username", "uid", "gid")
DEFAULT_GECOS = "IRIS identity"
MAX_ID = 2**32 - 2  # (uid_t)-1 is "no id" to the kernel
ID_RE = re.compile(r"[0-9]{1,10}")
_FORMATTER = string.Formatter()
_UNSAFE_TEXT_RE = re.compile(r"[:\x00-\x1f\x7f-\x9f\u2028\u2029]")

T = TypeVar("T")


@dataclass(frozen=True)
class FileProblem:
    """One rejected line or entry: ``where`` is ``"line 3"`` or ``"identities[2]"``."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class Parsed(Generic[T]):
    """What a parser returns: the good records and one problem per bad line."""

    records: list[T] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)


@dataclass(frozen=True)
class IdentityRow:
    """One identity from CSV or JSON; ``uid`` and ``gid`` are ``None`` when left empty.

    ``groups`` are canonical group names (JSON only).
    """

    key: IdentityKey
    username: str
    uid: int | None
    gid: int | None = None
    groups: tuple[str, ...] = ()

    def to_record(self) -> ImportRecord:
        """The registry's import record; raises :class:`ValueError` without a uid."""
        if self.uid is None:
            raise ValueError(f"{self.username}: no uid to import")
        return ImportRecord(self.key, self.uid, self.username, self.gid, self.groups)


@dataclass(frozen=True)
class PasswdLine:
    """The fields of a passwd line that the registry cares about."""

    username: str
    uid: int
    gid: int


@dataclass(frozen=True)
class GroupLine:
    """One group-file line, or one group of the JSON export."""

    name: str
    gid: int
    members: tuple[str, ...] = ()
    canonical: str | None = None


# -- writers -------------------------------------------------------------------------------


def check_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not is_valid_name(value):
        raise ValueError(
            f"{what} {str(value)[:60]!r} is not a POSIX name ([a-z_][a-z0-9_-]*, <= 32)"
        )
    return value


def check_id(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise ValueError(f"{what} {value!r} is not an id between 0 and {MAX_ID}")
    return value


def _text(value: str, what: str) -> str:
    if _UNSAFE_TEXT_RE.search(value):
        raise ValueError(f"{what} {value!r} contains ':', a control character or a line break")
    return value


def _path(value: str, what: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{what} {value!r} is not an absolute path")
    return _text(value, what)


def format_passwd(
    accounts: Iterable[PosixAccount],
    *,
    home_template: str = "/home/{username}",
    shell: str = "/bin/bash",
    gecos: str = DEFAULT_GECOS,
) -> Iterator[str]:
    """Yield one passwd line (without newline) per account.

    ``home_template`` may use ``{username}`` and ``{uid}``. Raises :class:`ValueError`
    before yielding a line that would not be exactly 7 fields on one line.
    """
    _path(shell, "shell")
    _text(gecos, "GECOS text")
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in _FORMATTER.parse(
            home_template) if name is not None]  # fmt: skip
    except ValueError as error:
        raise ValueError(f"home template {home_template!r}: {error}") from None
    if any(name not in ("username", "uid") or spec or conv for name, spec, conv in fields):
        raise ValueError(f"home template {home_template!r} may only use {{username}} and {{uid}}")
    for account in accounts:
        name = check_name(account.username, "username")
        uid, gid = check_id(account.uid, "uid"), check_id(account.gid, "gid")
        home = _path(home_template.format(username=name, uid=uid), "home directory")
        yield f"{name}:x:{uid}:{gid}:{gecos}:{home}:{shell}"


def format_group(groups_with_members: Iterable[tuple[PosixGroup, Iterable[str]]]) -> Iterator[str]:
    """Yield one group line (without newline) per ``(group, member usernames)`` pair."""
    for group, members in groups_with_members:
        name, gid = check_name(group.name, "group name"), check_id(group.gid, "gid")
        listed = sorted({check_name(member, f"member of {name}") for member in members})
        yield f"{name}:x:{gid}:{','.join(listed)}"


def format_csv(accounts: Iterable[PosixAccount]) -> str:
    """Return the identity map: a CSV file with a header row, one row per account."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)  # "\r" too
    writer.writerow(CSV_HEADER)
    for account in accounts:
        name = check_name(account.username, "username")
        uid, gid = check_id(account.uid, "uid"), check_id(account.gid, "gid")
        if account.key.issuer.startswith("#"):
            raise ValueError(f"issuer {account.key.issuer[:40]!r} would read as a CSV comment")
        writer.writerow((account.key.issuer, account.key.subject, name, uid, gid))
    return out.getvalue()


def format_json(
    accounts: Iterable[PosixAccount], groups: Iterable[tuple[PosixGroup, Iterable[str]]]
) -> str:
    """Return the JSON export described in the module documentation (ends in a newline)."""
    identities = [
        {
            "issuer": account.key.issuer,
            "subject": account.key.subject,
            "username": check_name(account.username, "username"),
            "uid": check_id(account.uid, "uid"),
            "gid": check_id(account.gid, "gid"),
            "groups": sorted(
                check_name(group.name, "group name")
                for group in account.groups
                if group.canonical is not None
            ),
        }
        for account in sorted(accounts, key=lambda account: account.uid)
    ]
    group_list = [
        {
            "name": check_name(group.name, "group name"),
            "gid": check_id(group.gid, "gid"),
            "canonical": group.canonical,
            "members": sorted({check_name(member, "member") for member in members}),
        }
        for group, members in sorted(groups, key=lambda pair: pair[0].gid)
    ]
    document = {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "identities": identities,
        "groups": group_list,
    }
    return json.dumps(document, indent=2) + "\n"
