"""The identity-binding check reads the stored auth_state as ONE column, not the whole user.

A real JupyterHub ORM database (in memory) and JupyterHub's own encryption.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from jupyterhub import orm
from jupyterhub.crypto import CryptKeeper, encrypt
from sqlalchemy import event

from iris_jupyterhub.auth.identity import stored_auth_state

STATE = {"identity": {"issuer": "https://iam.example.org/", "subject": "ada-sub"}}


@pytest.fixture
def crypt_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", secrets.token_hex(32))
    CryptKeeper.clear_instance()
    yield
    CryptKeeper.clear_instance()


@pytest.mark.usefixtures("crypt_key")
async def test_the_stored_state_is_one_select_of_one_column() -> None:
    db = orm.new_session_factory("sqlite://")()
    user = orm.User(name="ada")
    db.add_all([user, orm.User(name="bob")])
    user.encrypted_auth_state = await encrypt(STATE)
    db.commit()
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.strip() != "SELECT 1":  # JupyterHub's connection ping
            statements.append(statement)

    event.listen(db.get_bind(), "before_cursor_execute", count)
    assert await stored_auth_state(db, "ada") == STATE
    assert len(statements) == 1
    assert "encrypted_auth_state" in statements[0]
    assert "roles" not in statements[0]
    assert await stored_auth_state(db, "bob") is None  # no state stored
    assert await stored_auth_state(db, "carol") is None  # no such user
    user.encrypted_auth_state = b"not a fernet token"
    db.commit()
    assert await stored_auth_state(db, "ada") is None  # unreadable, as get_auth_state
