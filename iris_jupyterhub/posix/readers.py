"""Parse the files of :mod:`iris_jupyterhub.posix.files` back into records for an import.

The formats and the import design (passwd files need an identity map, joined by username)
are described in :mod:`iris_jupyterhub.posix.files`. Parsers never stop at the first bad
line: they return every well-formed record plus one :class:`~.files.FileProblem` per bad
line or entry, and the caller decides what to do with a file that has problems. Blank
lines and lines starting with ``#`` are skipped in passwd and group files, and in CSV
files so are empty rows and rows whose first field starts with ``#``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from .accounts import IdentityKey
from .files import (
    CSV_HEADER,
    ID_RE,
    JSON_FORMAT,
    JSON_VERSION,
    MAX_ID,
    FileProblem,
    GroupLine,
    IdentityRow,
    Parsed,
    PasswdLine,
    check_id,
    check_name,
)

__all__ = [
    "join_passwd",
    "parse_csv",
    "parse_group",
    "parse_identity_map",
    "parse_json",
    "parse_passwd",
]

T = TypeVar("T")
_HEADERS = (CSV_HEADER, CSV_HEADER[:4], CSV_HEADER[:3])


def _lines(text: str) -> Iterator[tuple[str, str]]:
    """Yield ``("line N", line)`` for each line that is neither blank nor a comment."""
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")  # noqa: PLW2901
        if line.strip() and not line.startswith("#"):
            yield f"line {number}", line


def _parse_id(value: object, what: str, *, optional: bool = False) -> int | None:
    """An id from an int or a decimal string; ``None`` or ``""`` only if ``optional``."""
    if value is None or value == "":
        if optional:
            return None
        raise ValueError(f"{what} is missing")
    if not isinstance(value, str):
        return check_id(value, what)
    if ID_RE.fullmatch(value) is None or int(value) > MAX_ID:
        raise ValueError(f"{what} {value[:40]!r} is not a decimal id between 0 and {MAX_ID}")
    return int(value)


def _required_id(value: object, what: str) -> int:
    return check_id(_parse_id(value, what), what)


def _fields(line: str, count: int) -> list[str]:
    fields = line.split(":")
    if len(fields) != count:
        raise ValueError(f"{len(fields)} ':'-separated fields instead of {count}")
    return fields


def _collect(
    entries: Iterable[tuple[str, Any]],
    build: Callable[[Any], T],
    unique: Callable[[T], dict[str, object]],
) -> Parsed[T]:
    """Build a record from each entry; a :class:`ValueError` or a repeated key is a problem."""
    parsed: Parsed[T] = Parsed()
    seen: dict[tuple[str, object], str] = {}
    for where, entry in entries:
        try:
            record = build(entry)
        except ValueError as error:
            parsed.problems.append(FileProblem(where, str(error)))
            continue
        keys = [(what, value) for what, value in unique(record).items() if value is not None]
        repeated = next((key for key in keys if key in seen), None)
        if repeated is not None:
            message = f"{repeated[0]} {repeated[1]!r} repeats {seen[repeated]}"
            parsed.problems.append(FileProblem(where, message))
            continue
        seen.update(dict.fromkeys(keys, where))
        parsed.records.append(record)
    return parsed


def _passwd_line(line: str) -> PasswdLine:
    name, _, uid, gid, *_ = _fields(line, 7)
    return PasswdLine(
        check_name(name, "username"),
        _required_id(uid, "uid"),
        _required_id(gid, "gid"),
    )


def parse_passwd(text: str) -> Parsed[PasswdLine]:
    """Parse a passwd file: 7 fields, a POSIX name, decimal uid and gid, each unique.

    NIS ``+``/``-`` lines are rejected; password, GECOS, home and shell are not used.
    """
    return _collect(_lines(text), _passwd_line, lambda r: {"username": r.username, "uid": r.uid})


def _group(name: object, gid: object, members: object, canonical: object = None) -> GroupLine:
    if not isinstance(members, list) or not (canonical is None or isinstance(canonical, str)):
        raise ValueError("members must be a list and canonical a string or null")
    listed = tuple(sorted({check_name(member, "member") for member in members}))
    return GroupLine(check_name(name, "group name"), _required_id(gid, "gid"), listed, canonical)


def parse_group(text: str) -> Parsed[GroupLine]:
    """Parse a group file: 4 fields, POSIX names, a decimal gid, names and gids unique."""

    def build(line: str) -> GroupLine:
        name, _, gid, members = _fields(line, 4)
        return _group(name, gid, members.split(",") if members else [])

    return _collect(_lines(text), build, lambda r: {"name": r.name, "gid": r.gid})


def _identity(
    values: Sequence[object], map_only: bool, groups: tuple[str, ...] = ()
) -> IdentityRow:
    """Validate ``issuer, subject, username, uid, gid``; ids may be ints or decimal text."""
    issuer, subject, username, uid, gid = values
    if not isinstance(issuer, str) or not isinstance(subject, str):
        raise ValueError("issuer and subject must be strings")
    return IdentityRow(
        IdentityKey(issuer, subject),  # InvalidIdentityError is a ValueError
        check_name(username, "username"),
        _parse_id(uid, "uid", optional=map_only),
        _parse_id(gid, "gid", optional=True),
        groups,
    )


def _identity_keys(row: IdentityRow) -> dict[str, object]:
    return {"identity": row.key, "username": row.username, "uid": row.uid}


def _csv_rows(text: str, problems: list[FileProblem]) -> Iterator[tuple[str, list[str]]]:
    """Yield CSV records, skipping the header, empty rows and ``#`` comment rows."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for row in reader:
            if any(row) and not row[0].startswith("#") and tuple(row) not in _HEADERS:
                yield f"line {reader.line_num}", row
    except csv.Error as error:  # the reader cannot resynchronise after a quoting error
        problems.append(FileProblem(f"line {reader.line_num}", f"CSV: {error}"))


def parse_csv(text: str, *, map_only: bool = False) -> Parsed[IdentityRow]:
    """Parse CSV rows ``issuer,subject,username,uid[,gid]`` (the header row is optional).

    With ``map_only`` (an identity map for a passwd import) ``uid`` may be empty or left
    out as well. Keys, usernames and uids must each be unique.
    """

    def build(row: list[str]) -> IdentityRow:
        if not (4 - map_only) <= len(row) <= 5:
            raise ValueError(f"{len(row)} columns instead of issuer,subject,username,uid[,gid]")
        return _identity([*row, "", ""][:5], map_only)

    problems: list[FileProblem] = []
    parsed = _collect(_csv_rows(text, problems), build, _identity_keys)
    parsed.problems.extend(problems)
    return parsed


def parse_json(
    text: str, *, map_only: bool = False
) -> tuple[Parsed[IdentityRow], Parsed[GroupLine]]:
    """Parse the JSON export into its identities and its groups.

    A document that is not the JSON export at all is one identity problem at ``document``;
    bad entries are problems at ``identities[i]`` or ``groups[i]``.
    """

    def document_problem(message: str) -> tuple[Parsed[IdentityRow], Parsed[GroupLine]]:
        return Parsed(problems=[FileProblem("document", message)]), Parsed()

    try:
        document: Any = json.loads(text)
    except ValueError as error:
        return document_problem(f"not JSON: {error}")
    if not isinstance(document, dict) or document.get("format") != JSON_FORMAT:
        return document_problem(f"not a {JSON_FORMAT} document")
    if document.get("version") != JSON_VERSION:
        return document_problem(f"version {document.get('version')!r} is not {JSON_VERSION}")

    def entries(key: str) -> Iterator[tuple[str, dict[str, Any]]]:
        value = document.get(key, [])
        for index, entry in enumerate(value if isinstance(value, list) else [value]):
            if not isinstance(entry, dict):
                raise ValueError(f"{key} must be a list of objects")
            yield f"{key}[{index}]", entry

    def group(entry: dict[str, Any]) -> GroupLine:
        return _group(
            entry.get("name"), entry.get("gid"), entry.get("members", []), entry.get("canonical")
        )

    canonical: dict[str, str] = {}

    def identity(entry: dict[str, Any]) -> IdentityRow:
        names = entry.get("groups", [])
        if not isinstance(names, list) or not all(name in canonical for name in names):
            raise ValueError("groups must list names of groups with a canonical name")
        resolved = tuple(sorted({canonical[name] for name in names}))
        return _identity([entry.get(key) for key in CSV_HEADER], map_only, resolved)

    try:
        groups = _collect(entries("groups"), group, lambda r: {"name": r.name, "gid": r.gid})
        canonical.update({g.name: g.canonical for g in groups.records if g.canonical})
        identities = _collect(entries("identities"), identity, _identity_keys)
    except ValueError as error:
        return document_problem(str(error))
    return identities, groups


def parse_identity_map(text: str) -> Parsed[IdentityRow]:
    """Parse an identity map for a passwd import: JSON if it starts with ``{``, else CSV."""
    if text.lstrip().startswith("{"):
        return parse_json(text, map_only=True)[0]
    return parse_csv(text, map_only=True)


def join_passwd(
    passwd: Parsed[PasswdLine], identity_map: Parsed[IdentityRow]
) -> Parsed[IdentityRow]:
    """Join passwd lines to the identity map by username (see *Import design*).

    Problems of both inputs are carried over, their places prefixed ``passwd`` or ``map``.
    """
    joined: Parsed[IdentityRow] = Parsed(
        problems=[FileProblem(f"passwd {p.where}", p.message) for p in passwd.problems]
        + [FileProblem(f"map {p.where}", p.message) for p in identity_map.problems]
    )
    by_name = {row.username: row for row in identity_map.records}
    for line in passwd.records:
        row, where = by_name.get(line.username), f"passwd user {line.username}"
        if row is None:
            joined.problems.append(FileProblem(where, "has no entry in the identity map"))
        elif row.uid is not None and row.uid != line.uid:
            message = f"uid {line.uid} differs from the identity map's {row.uid}"
            joined.problems.append(FileProblem(where, message))
        else:
            joined.records.append(
                IdentityRow(row.key, line.username, line.uid, line.gid, row.groups)
            )
    return joined
