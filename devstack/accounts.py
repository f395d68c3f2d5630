"""The demo accounts of the loopback provider (``tests/idp/users.json``), as a printable table."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iris_jupyterhub.auth.claims import canonical_groups
from iris_jupyterhub.groups import any_rule_matches, parse_group_rule

from .settings import Provider

__all__ = ["Account", "load_accounts", "render_table"]


@dataclass(frozen=True)
class Account:
    """One person who can try to log in at the demo provider."""

    login: str
    password: str
    username: str
    groups: tuple[str, ...]
    allowed: bool
    admin: bool


def _claims(user: dict[str, Any]) -> dict[str, Any]:
    return {**user.get("id_token", {}), **user.get("userinfo", {})}


def load_accounts(users_file: Path, provider: Provider) -> list[Account]:
    """The users of ``provider`` with their canonical groups and what the demo hub lets them do."""
    users = json.loads(users_file.read_text())["users"]
    allowed = [parse_group_rule(g) for g in provider.allowed_groups]
    admin = [parse_group_rule(g) for g in provider.admin_groups]
    accounts = []
    for user in users:
        if user.get("provider") != provider.idp_name:
            continue
        claims = _claims(user)
        groups = canonical_groups(
            claims, provider.group_claims, provider.entitlement_namespaces
        ).memberships
        accounts.append(
            Account(
                login=str(user["login"]),
                password=str(user.get("password") or f"{user['login']}-pass"),
                username=str(claims.get("preferred_username", "")),
                groups=tuple(str(g) for g in groups),
                allowed=any_rule_matches(allowed, groups),
                admin=any_rule_matches(admin, groups),
            )
        )
    return accounts


def render_table(accounts: list[Account]) -> str:
    """A plain-text table: login, password, hub user, groups and a note on what happens."""
    taken = Counter(a.username for a in accounts)
    rows = [("login", "password", "hub user", "groups", "note")]
    for account in accounts:
        notes = []
        if not account.allowed:
            notes.append("refused: not in allowed_groups")
        elif account.admin:
            notes.append("hub admin")
        if taken[account.username] > 1:
            notes.append("shares a user name: refused once another account holds it")
        rows.append(
            (
                account.login,
                account.password,
                account.username,
                ", ".join(account.groups) or "-",
                "; ".join(notes),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for n, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  ----")
    return "\n".join(lines)
