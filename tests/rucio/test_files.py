"""The token directory and files: private, whole, exactly the token."""

from __future__ import annotations

import os
import secrets
import stat
import threading
from pathlib import Path

import pytest

from iris_jupyterhub.rucio.files import (
    InstanceFiles,
    check_directory_owner,
    check_token_text,
    ensure_private_directory,
    remove_file,
    write_token,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_directory_is_created_private(tmp_path: Path) -> None:
    state = ensure_private_directory(tmp_path / "run" / "iris-rucio")
    assert state.private
    assert mode(tmp_path / "run" / "iris-rucio") == 0o700


def test_an_open_directory_of_ours_is_tightened(tmp_path: Path) -> None:
    directory = tmp_path / "rucio"
    directory.mkdir()
    os.chmod(directory, 0o777)  # noqa: S103 - the open directory to be tightened
    assert ensure_private_directory(directory).private
    assert mode(directory) == 0o700


def test_a_file_where_the_directory_should_be_is_refused(tmp_path: Path) -> None:
    (tmp_path / "rucio").write_text("")
    with pytest.raises(FileExistsError):
        ensure_private_directory(tmp_path / "rucio")


def test_a_symbolic_link_is_refused_even_to_a_directory_of_ours(tmp_path: Path) -> None:
    # Someone who can create IRIS_RUCIO_DIR first could point it at a directory they read.
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (tmp_path / "rucio").symlink_to(target)
    with pytest.raises(PermissionError, match="is a symbolic link"):
        ensure_private_directory(tmp_path / "rucio")
    assert list(target.iterdir()) == []


def test_a_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "rucio"
    directory.mkdir(mode=0o700)
    other = 54321 if os.geteuid() != 54321 else 54322
    if os.geteuid() != 0:
        pytest.skip("only root can give a directory to another user")
    os.chown(directory, other, other)
    with pytest.raises(PermissionError, match=f"owned by uid {other}"):
        ensure_private_directory(directory)
    assert mode(directory) == 0o700, "left as it was"


def test_only_our_own_or_root_s_directories_are_trusted() -> None:
    me = os.geteuid()
    assert check_directory_owner(Path("/run/iris-rucio"), me, me) is None
    assert check_directory_owner(Path("/run/iris-rucio"), 0, me) is None  # an emptyDir mount
    refusal = check_directory_owner(Path("/run/iris-rucio"), me + 1, me)
    assert refusal is not None
    assert f"owned by uid {me + 1}" in refusal


def test_a_token_file_is_0600_and_holds_exactly_the_token(tmp_path: Path) -> None:
    path = InstanceFiles(tmp_path, "ral").token
    write_token(path, "eyJhbGciOi.eyJzdWIi.c2ln")
    assert path.read_bytes() == b"eyJhbGciOi.eyJzdWIi.c2ln"
    assert mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["ral.token"], "no temporary file left"


@pytest.mark.parametrize("bad", ["eyJ.a.b\n", " eyJ.a.b", "eyJ a", "", "eyJ\r\n", "é"])
def test_a_value_that_is_not_one_token_is_refused_and_the_file_kept(
    bad: str, tmp_path: Path
) -> None:
    path = tmp_path / "ral.token"
    write_token(path, "eyJ.old.token")
    with pytest.raises(ValueError, match="not a single bearer-token value"):
        write_token(path, bad)
    assert path.read_text() == "eyJ.old.token"
    with pytest.raises(ValueError, match="bearer-token"):
        check_token_text(bad)


def test_remove_file_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "ral.token"
    write_token(path, "eyJ.a.b")
    assert remove_file(path)
    assert not remove_file(path)


def test_a_reader_never_sees_part_of_a_token(tmp_path: Path) -> None:
    """Renewals replace the file while a reader keeps reading it: every read is whole."""
    path = tmp_path / "ral.token"
    written: set[str] = set()
    seen: list[str] = []
    done = threading.Event()

    def token(number: int) -> str:
        # lengths from 40 to ~8,000 characters, so a torn read would show
        return f"eyJ{number}." + secrets.token_urlsafe(30 + (number * 997) % 6000)

    first = token(0)
    write_token(path, first)
    written.add(first)

    def read() -> None:
        while not done.is_set():
            with open(path, encoding="utf-8") as handle:
                seen.append(handle.read())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for number in range(1, 400):
            value = token(number)
            written.add(value)
            write_token(path, value)
    finally:
        done.set()
        reader.join()
    assert len(seen) > 0
    torn = [s for s in seen if s not in written]
    assert torn == [], f"{len(torn)} of {len(seen)} reads were not a whole token"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ral.token"]
