"""passwd, group, CSV and JSON files: pwd/grp-format rules, hostile values, round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from iris_jupyterhub.posix.accounts import IdentityKey, PosixAccount, PosixGroup
from iris_jupyterhub.posix.files import (
    JSON_FORMAT,
    IdentityRow,
    format_csv,
    format_group,
    format_json,
    format_passwd,
)
from iris_jupyterhub.posix.readers import (
    join_passwd,
    parse_csv,
    parse_group,
    parse_identity_map,
    parse_json,
    parse_passwd,
)

ISSUER = "https://iris-iam.stfc.ac.uk"
CHECKIN = "https://aai.egi.eu/auth/realms/egi"
IRIS = PosixGroup("iris", 3_000_100, "iris")
LSST = PosixGroup("vo-iris-ac-uk-lsst", 3_000_200, "vo.iris.ac.uk/lsst")


def account(
    subject: str,
    username: str,
    uid: int,
    groups: tuple[PosixGroup, ...] = (),
    issuer: str = ISSUER,
) -> PosixAccount:
    personal = PosixGroup(username, uid + 1_000_000, None)
    return PosixAccount(IdentityKey(issuer, subject), uid, uid + 1_000_000, username,
                        (personal, *groups))  # fmt: skip


ACCOUNTS = [
    account("a1b2-c3", "alice", 2_000_001, (IRIS, LSST)),
    account("bob@egi.eu", "bob", 2_000_002, (IRIS,), issuer=CHECKIN),
    account('sub,with "quotes",\nnewline', "carol", 2_000_003),
]


def groups_of(accounts: list[PosixAccount]) -> list[tuple[PosixGroup, list[str]]]:
    """What ``IdentityRegistry.iter_groups`` yields: every group with its members."""
    members: dict[PosixGroup, list[str]] = {}
    for acc in accounts:
        for group in acc.groups:
            members.setdefault(group, []).append(acc.username)
    return list(members.items())


def pwd_style(path: Path) -> list[tuple[str, str, int, int, str, str, str]]:
    """Read a passwd file the way ``getpwent`` does: one entry per line, split on ':'."""
    entries = []
    for line in path.read_text(encoding="utf-8").split("\n")[:-1]:
        name, password, uid, gid, gecos, home, shell = line.split(":")  # exactly 7
        entries.append((name, password, int(uid), int(gid), gecos, home, shell))
    return entries


def grp_style(path: Path) -> list[tuple[str, str, int, list[str]]]:
    """Read a group file the way ``getgrent`` does: 4 fields, members split on ','."""
    entries = []
    for line in path.read_text(encoding="utf-8").split("\n")[:-1]:
        name, password, gid, members = line.split(":")  # exactly 4
        entries.append((name, password, int(gid), members.split(",") if members else []))
    return entries


def test_passwd_file_parses_with_pwd_rules(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text("".join(f"{line}\n" for line in format_passwd(ACCOUNTS)), encoding="utf-8")
    assert pwd_style(path) == [
        ("alice", "x", 2_000_001, 3_000_001, "IRIS identity", "/home/alice", "/bin/bash"),
        ("bob", "x", 2_000_002, 3_000_002, "IRIS identity", "/home/bob", "/bin/bash"),
        ("carol", "x", 2_000_003, 3_000_003, "IRIS identity", "/home/carol", "/bin/bash"),
    ]


def test_passwd_home_template_and_shell() -> None:
    lines = format_passwd(  # noqa: S604 - a login shell, not a subprocess
        ACCOUNTS[:1], home_template="/ceph/home/{uid}/{username}", shell="/bin/sh"
    )
    assert list(lines) == [
        "alice:x:2000001:3000001:IRIS identity:/ceph/home/2000001/alice:/bin/sh"
    ]


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"home_template": "home/{username}"}, "absolute"),
        ({"home_template": "/home/{username}:/x"}, "contains ':'"),
        ({"home_template": "/home/{name}"}, "home template"),
        ({"home_template": "/home/{username.__class__}"}, "home template"),
        ({"shell": "/bin/bash\nroot::0:0::/:/bin/sh"}, "line break"),
        ({"gecos": "Alice: admin"}, "contains ':'"),
    ],
)
def test_passwd_refuses_options_that_break_lines(options: dict[str, str], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        list(format_passwd(ACCOUNTS, **options))


def test_group_file_parses_with_grp_rules(tmp_path: Path) -> None:
    path = tmp_path / "group"
    path.write_text("".join(f"{line}\n" for line in format_group(groups_of(ACCOUNTS))))
    entries = {name: (gid, members) for name, password, gid, members in grp_style(path)}
    assert entries == {
        "alice": (3_000_001, ["alice"]),  # personal groups: the user is the member
        "bob": (3_000_002, ["bob"]),
        "carol": (3_000_003, ["carol"]),
        "iris": (3_000_100, ["alice", "bob"]),
        "vo-iris-ac-uk-lsst": (3_000_200, ["alice"]),
    }


HOSTILE = st.text(min_size=0, max_size=40) | st.sampled_from(
    ["root:x:0:0", "a\nroot", "a,b", "../../etc", "a\r", "a\x00", "a\u2028b", "A", "a" * 33, "-a"]
)


@settings(max_examples=300)
@given(username=HOSTILE, gecos=HOSTILE, home=HOSTILE, shell=HOSTILE)
def test_hostile_values_never_add_a_field_or_line(
    username: str, gecos: str, home: str, shell: str
) -> None:
    # PosixAccount does not validate: the writer is the last line of defence.
    hostile = PosixAccount(IdentityKey(ISSUER, "s"), 2_000_001, 2_000_001, username, ())
    try:
        lines = list(
            format_passwd([hostile], gecos=gecos, shell="/" + shell, home_template="/" + home)
        )
    except ValueError:
        return
    assert len(lines) == 1
    assert "\n" not in lines[0]
    assert "\r" not in lines[0]
    assert len(lines[0].split(":")) == 7
    assert lines[0].split(":")[0] == username


@settings(max_examples=300)
@given(name=HOSTILE, members=st.lists(HOSTILE, max_size=4))
def test_hostile_group_names_never_add_a_field_or_line(name: str, members: list[str]) -> None:
    try:
        lines = list(format_group([(PosixGroup(name, 3_000_001, name), members)]))
    except ValueError:
        return
    assert len(lines) == 1
    assert "\n" not in lines[0]
    fields = lines[0].split(":")
    assert len(fields) == 4
    assert set(fields[3].split(",") if fields[3] else []) == set(members)


@pytest.mark.parametrize("bad", [-1, 2**32 - 1, 2**40, True])
def test_ids_out_of_range_are_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="not an id"):
        list(format_passwd([PosixAccount(IdentityKey(ISSUER, "s"), bad, 1, "alice", ())]))


def test_passwd_parser_reports_every_bad_line() -> None:
    text = "\n".join(
        [
            "# site accounts",
            "alice:x:2000001:3000001:Alice:/home/alice:/bin/bash",
            "bob:x:2000002:3000002::/home/bob",  # 6 fields
            "Carol:x:2000003:3000003::/home/carol:/bin/sh",  # not a POSIX name
            "dave:x:-5:3000004::/home/dave:/bin/sh",  # negative uid
            "erin:x:2000001:3000005::/home/erin:/bin/sh",  # uid repeats line 2
            "+nis::0:0:::",
            "",
            "frank:*:2000006:3000006::/home/frank:/usr/sbin/nologin\r",
        ]
    )
    parsed = parse_passwd(text)
    assert [(r.username, r.uid, r.gid) for r in parsed.records] == [
        ("alice", 2_000_001, 3_000_001),
        ("frank", 2_000_006, 3_000_006),
    ]
    problems = {p.where: p.message for p in parsed.problems}
    assert sorted(problems) == ["line 3", "line 4", "line 5", "line 6", "line 7"]
    assert "6 ':'-separated fields instead of 7" in problems["line 3"]
    assert "repeats line 2" in problems["line 6"]


def test_group_parser() -> None:
    parsed = parse_group("iris:x:3000100:alice,bob\nempty:x:3000101:\nbad:x:3000102\nx:x:y:\n")
    assert [(g.name, g.gid, g.members) for g in parsed.records] == [
        ("iris", 3_000_100, ("alice", "bob")),
        ("empty", 3_000_101, ()),
    ]
    assert [p.where for p in parsed.problems] == ["line 3", "line 4"]


def rows_of(accounts: list[PosixAccount], with_groups: bool = False) -> list[IdentityRow]:
    return [
        IdentityRow(a.key, a.username, a.uid, a.gid,
                    tuple(sorted(g.canonical for g in a.groups if g.canonical)) if with_groups
                    else ())
        for a in accounts
    ]  # fmt: skip


def test_passwd_plus_csv_map_round_trip() -> None:
    passwd = parse_passwd("\n".join(format_passwd(ACCOUNTS)))
    identity_map = parse_identity_map(format_csv(ACCOUNTS))
    joined = join_passwd(passwd, identity_map)
    assert joined.problems == []
    assert joined.records == rows_of(ACCOUNTS)
    assert [row.to_record().key for row in joined.records] == [a.key for a in ACCOUNTS]


def test_passwd_plus_json_map_round_trip() -> None:
    passwd = parse_passwd("\n".join(format_passwd(ACCOUNTS)))
    joined = join_passwd(passwd, parse_identity_map(format_json(ACCOUNTS, groups_of(ACCOUNTS))))
    assert joined.problems == []
    assert joined.records == rows_of(ACCOUNTS, with_groups=True)


def test_join_reports_unmapped_users_and_uid_mismatches() -> None:
    passwd = parse_passwd("alice:x:10:10:::\nbob:x:11:11:::\nzed:x:12:12:::\n")
    identity_map = parse_csv(f"{ISSUER},a,alice,10\n{ISSUER},b,bob,99\n{ISSUER},c,nobody\n",
                             map_only=True)  # fmt: skip
    joined = join_passwd(passwd, identity_map)
    assert [r.username for r in joined.records] == ["alice"]
    assert [str(p) for p in joined.problems] == [
        "passwd user bob: uid 11 differs from the identity map's 99",
        "passwd user zed: has no entry in the identity map",
    ]


def test_json_export_is_documented_shape_and_round_trips() -> None:
    document = json.loads(format_json(ACCOUNTS, groups_of(ACCOUNTS)))
    assert document["format"] == JSON_FORMAT
    assert document["version"] == 1
    assert document["identities"][0] == {
        "issuer": ISSUER, "subject": "a1b2-c3", "username": "alice", "uid": 2_000_001,
        "gid": 3_000_001, "groups": ["iris", "vo-iris-ac-uk-lsst"],
    }  # fmt: skip
    assert {
        "name": "iris",
        "gid": 3_000_100,
        "canonical": "iris",
        "members": ["alice", "bob"],
    } in (document["groups"])
    identities, groups = parse_json(format_json(ACCOUNTS, groups_of(ACCOUNTS)))
    assert identities.problems == []
    assert groups.problems == []
    assert identities.records == rows_of(ACCOUNTS, with_groups=True)
    assert len(groups.records) == 5


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[]", "document"),
        ("{", "document"),
        ('{"format": "other", "version": 1}', "document"),
        (f'{{"format": "{JSON_FORMAT}", "version": 2}}', "document"),
        (f'{{"format": "{JSON_FORMAT}", "version": 1, "identities": [1]}}', "document"),
        (f'{{"format": "{JSON_FORMAT}", "version": 1, "identities": [{{"uid": 1}}]}}',
         "identities[0]"),
    ],
)  # fmt: skip
def test_json_parser_problems(text: str, where: str) -> None:
    identities, _ = parse_json(text)
    assert [p.where for p in identities.problems] == [where]
    assert identities.records == []


def test_csv_parser_problems_and_header() -> None:
    text = (
        "issuer,subject,username,uid,gid\n"
        f"{ISSUER},a,alice,2000001,\n"
        f"{ISSUER},b,bob\n"  # uid missing
        f"{ISSUER},a,alice2,2000002\n"  # identity repeats line 2
        f",c,carol,2000003\n"  # empty issuer
        f"{ISSUER},{'s' * 2000},dave,2000004\n"  # subject too long
        f"# {ISSUER},e,erin,2000005\n"
        f'{ISSUER},"unterminated,frank,2000006\n'
    )
    parsed = parse_csv(text)
    assert [(r.username, r.uid, r.gid) for r in parsed.records] == [("alice", 2_000_001, None)]
    assert [p.where for p in parsed.problems] == ["line 3", "line 4", "line 5", "line 6", "line 8"]


KEYS = st.tuples(
    st.text(min_size=1, max_size=60).filter(lambda s: not s.endswith("/") and s[0] != "#"),
    st.text(min_size=1, max_size=200),
)


@settings(max_examples=200)
@given(st.lists(KEYS, min_size=1, max_size=5, unique=True))
def test_hostile_identity_keys_round_trip_through_csv_and_json(
    keys: list[tuple[str, str]],
) -> None:
    accounts = [
        account(subject, f"user{index}", 2_000_000 + index, issuer=issuer)
        for index, (issuer, subject) in enumerate(keys)
    ]
    assume(len({a.key for a in accounts}) == len(accounts))
    assert parse_csv(format_csv(accounts)).records == rows_of(accounts)
    assert parse_json(format_json(accounts, []))[0].records == rows_of(accounts)


@settings(max_examples=300)
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_parsers_never_raise_on_garbage(garbage: str) -> None:
    for parsed in (parse_passwd(garbage), parse_group(garbage), parse_csv(garbage),
                   parse_identity_map(garbage), *parse_json(garbage)):  # fmt: skip
        assert isinstance(parsed.records, list)
    joined = join_passwd(parse_passwd("alice:x:1:1:::"), parse_identity_map(garbage))
    assert len(joined.records) + len(joined.problems) >= 1  # alice is imported or explained
