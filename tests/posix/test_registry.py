"""The registry's behaviour on SQLite and a real PostgreSQL: mapping, groups, tombstones."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, func, select

from iris_jupyterhub.posix import IdentityKey, IdentityRegistry, is_valid_name
from iris_jupyterhub.posix.ids import GROUP_GID_TAG, UID_TAG, encode, first_candidate, key_material
from iris_jupyterhub.posix.models import Identity

from .conftest import RegistryFactory

IAM = "https://iris-iam.stfc.ac.uk/"
ALICE = IdentityKey(IAM, "6a1c2e4f-alice")
BOB = IdentityKey(IAM, "0b0b-bob")


def test_first_mapping_uses_the_hashed_ids(registry: IdentityRegistry) -> None:
    account = registry.map_identity(ALICE, "alice", ["iris"])
    assert account.uid == first_candidate(key_material(UID_TAG, ALICE), registry.uid_range)
    assert account.username == "alice"
    personal, iris = account.groups
    assert (personal.name, personal.gid, personal.canonical) == ("alice", account.gid, None)
    assert iris.canonical == "iris"
    assert iris.gid == first_candidate(encode(GROUP_GID_TAG, "iris"), registry.gid_range)
    assert registry.gid_range[0] <= account.gid <= registry.gid_range[1]
    assert account.to_auth_state() == {
        "uid": account.uid,
        "gid": account.gid,
        "username": "alice",
        "groups": [
            {"name": "alice", "gid": account.gid, "canonical": None},
            {"name": "iris", "gid": iris.gid, "canonical": "iris"},
        ],
    }


def test_mapping_is_idempotent(registry: IdentityRegistry) -> None:
    first = registry.map_identity(ALICE, "alice", ["iris", "iris/lsst"])
    for _ in range(3):
        assert registry.map_identity(ALICE, "renamed", ["iris/lsst", "iris"]) == first
    assert registry.lookup(ALICE) == first
    assert registry.lookup_uid(first.uid) == first
    assert registry.lookup_username("alice") == first
    assert registry.lookup(BOB) is None


def test_groups_sorted_and_memberships_replaced(registry: IdentityRegistry) -> None:
    account = registry.map_identity(ALICE, "alice", ["iris/lsst", "dune", "iris"])
    assert [g.name for g in account.groups] == ["alice", "dune", "iris", "iris-lsst"]
    lsst_gid = account.groups[3].gid
    account = registry.map_identity(ALICE, "alice", ["iris/lsst", "bad group", ""])
    assert [g.name for g in account.groups] == ["alice", "iris-lsst"]
    assert account.groups[1].gid == lsst_gid
    members = {g.name: m for g, m in registry.iter_groups()}
    assert members["iris-lsst"] == ["alice"]
    assert members["iris"] == []
    assert members["alice"] == ["alice"]


def test_group_gids_shared_between_people(registry: IdentityRegistry) -> None:
    a = registry.map_identity(ALICE, "alice", ["iris"])
    b = registry.map_identity(BOB, "bob", ["iris"])
    assert a.groups[1] == b.groups[1]
    assert a.uid != b.uid
    assert a.gid != b.gid


def test_aliases_share_one_gid(make_registry: RegistryFactory) -> None:
    registry = make_registry(group_aliases={"vo.iris.ac.uk": "iris"})
    egi = IdentityKey("https://aai.egi.eu/auth/realms/egi", "carol@egi.eu")
    a = registry.map_identity(ALICE, "alice", ["iris"])
    c = registry.map_identity(egi, "carol", ["vo.iris.ac.uk"])
    assert a.groups[1] == c.groups[1]
    assert c.groups[1].name == "iris"
    assert c.groups[1].canonical == "iris"


def test_tombstone_keeps_ids_and_revives(registry: IdentityRegistry) -> None:
    first = registry.map_identity(ALICE, "alice", ["iris"])
    assert registry.delete_identity(ALICE) is True
    assert registry.delete_identity(ALICE) is False
    assert registry.lookup(ALICE) is None
    assert registry.lookup_uid(first.uid) is None
    deleted = registry.lookup_uid(first.uid, include_deleted=True)
    assert deleted is not None
    assert deleted.deleted
    # the name and ids are not handed to someone else
    other = registry.map_identity(BOB, "alice", [])
    assert other.username != "alice"
    assert other.uid != first.uid
    assert [a.key for a in registry.iter_accounts()] == [BOB]
    assert len(list(registry.iter_accounts(include_deleted=True))) == 2
    revived = registry.map_identity(ALICE, "someone-else", ["iris"])
    assert revived == first


def test_hostile_keys_are_opaque(registry: IdentityRegistry) -> None:
    hostile = [
        IdentityKey(IAM, "../../etc/passwd"),
        IdentityKey(IAM, "x" * 1024),
        IdentityKey(IAM, "ü" * 1024),
        IdentityKey(IAM, "a\x00b\r\n\x1b[2J"),
        IdentityKey(IAM, "lone \ud800 surrogate \\u0000 backslash\\"),
        IdentityKey("é" * 255, "😀"),
        IdentityKey("https://evil/../", "sub"),
    ]
    hints = ["../../root", "\x00", "x" * 5000, "😀", "", None, "Robert'); DROP TABLE--"]
    accounts = [registry.map_identity(k, h, []) for k, h in zip(hostile, hints, strict=True)]
    for key, account in zip(hostile, accounts, strict=True):
        assert account.key == key
        assert is_valid_name(account.username)
        assert registry.lookup(key) == account
    assert len({a.uid for a in accounts}) == len(accounts)
    assert len({a.username for a in accounts}) == len(accounts)
    assert registry.check() == []


def test_independent_registries_agree(make_registry: RegistryFactory, tmp_path: object) -> None:
    """Two registries on separate databases give the same ids unless probing differed."""
    from pathlib import Path

    base = Path(str(tmp_path))
    one = make_registry(db_url=f"sqlite:///{base / 'one.sqlite'}")
    two = make_registry(db_url=f"sqlite:///{base / 'two.sqlite'}")
    keys = [IdentityKey(f"https://idp{i % 3}.example", f"subject-{i}") for i in range(1000)]
    a = one.assign_many([(k, None) for k in keys])
    b = two.assign_many([(k, None) for k in reversed(keys)])
    assert a.created == b.created == 1000
    differ = [k for k in keys if one.lookup(k).uid != two.lookup(k).uid]  # type: ignore[union-attr]
    # only identities whose first candidate collided can differ (order-dependent probing)
    assert len(differ) <= a.uid_collisions + b.uid_collisions
    assert len(differ) < 5


def test_iter_accounts_and_check_clean(registry: IdentityRegistry) -> None:
    registry.map_identity(ALICE, "alice", ["iris"])
    registry.map_identity(BOB, "bob", ["iris", "dune"])
    accounts = list(registry.iter_accounts())
    assert [a.uid for a in accounts] == sorted(a.uid for a in accounts)
    assert registry.check() == []


def test_last_seen_written_at_most_once_per_interval(registry: IdentityRegistry) -> None:
    registry.map_identity(ALICE, "alice", ["iris"])
    engine = create_engine(registry.url)
    with engine.connect() as connection:
        seen = connection.execute(select(Identity.last_seen_at)).scalar_one()
    registry.map_identity(ALICE, "alice", ["iris"])
    with engine.connect() as connection:
        assert connection.execute(select(Identity.last_seen_at)).scalar_one() == seen
        assert connection.execute(select(func.count()).select_from(Identity)).scalar_one() == 1
    engine.dispose()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"uid_range": (10, 5)}, r"IdentityRegistry\.uid_range must have start <= end"),
        ({"uid_range": (100, 70000)}, r"IdentityRegistry\.uid_range must lie within"),
        ({"gid_range": (70000, 2**31)}, r"IdentityRegistry\.gid_range must lie within"),
        ({"gid_range": (2_001_000_000, 2_001_000_010)}, r"IdentityRegistry\.gid_range .*overlaps"),
        ({"group_aliases": {"a": "b", "b": "c"}}, r"IdentityRegistry\.group_aliases"),
        ({"group_aliases": {"bad group": "b"}}, r"IdentityRegistry\.group_aliases"),
        ({"lock_timeout": 0}, r"IdentityRegistry\.lock_timeout"),
        ({"db_url": "not a url"}, r"IdentityRegistry\.db_url"),
        ({"db_url": "mysql://x/y"}, r"IdentityRegistry\.db_url"),
    ],
)
def test_invalid_options_fail_at_start(options: dict[str, object], message: str) -> None:
    with pytest.raises(Exception, match=message):
        IdentityRegistry(**options)


def test_ranges_can_be_moved_together() -> None:
    """Config loading sets both ranges before cross-validation."""
    from traitlets.config import Config

    config = Config()
    config.IdentityRegistry.uid_range = (3_000_000, 3_999_999)
    config.IdentityRegistry.gid_range = (2_000_000, 3_000_000 - 1)
    registry = IdentityRegistry(config=config)
    assert registry.uid_range == (3_000_000, 3_999_999)


def test_bulk_assignment_equals_one_by_one(
    make_registry: RegistryFactory, tmp_path: object
) -> None:
    from pathlib import Path

    base = Path(str(tmp_path))
    bulk = make_registry(db_url=f"sqlite:///{base / 'bulk.sqlite'}", uid_range=(70_000, 70_300))
    single = make_registry(db_url=f"sqlite:///{base / 'one.sqlite'}", uid_range=(70_000, 70_300))
    items = [(IdentityKey(IAM, f"p{i}"), f"name{i % 7}") for i in range(250)]
    report = bulk.assign_many(items)
    assert report.created == 250
    assert report.uid_collisions > 0  # a small range forces probing
    assert bulk.assign_many(items).existing == 250
    for key, hint in items:
        mapped = single.map_identity(key, hint, [])
        stored = bulk.lookup(key)
        assert stored is not None
        assert (stored.uid, stored.gid, stored.username) == (
            mapped.uid,
            mapped.gid,
            mapped.username,
        )


@pytest.mark.parametrize(
    ("issuer", "subject"),
    [("", "s"), ("/", "s"), ("https://i", ""), ("x" * 256, "s"), ("https://i", "s" * 1025)],
)
def test_invalid_keys_are_refused(issuer: str, subject: str) -> None:
    from iris_jupyterhub.posix import InvalidIdentityError, RegistryError

    with pytest.raises(InvalidIdentityError) as info:
        IdentityKey(issuer, subject)
    assert isinstance(info.value, RegistryError)
    assert isinstance(info.value, ValueError)
