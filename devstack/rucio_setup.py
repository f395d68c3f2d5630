"""The Rucio side of :mod:`devstack.rucio`: runs INSIDE the Rucio virtualenv (``.venv-rucio``).

Imports only the standard library and ``rucio`` (the Rucio venv holds neither the hub nor this
package's dependencies), so it is run as ``python -m devstack.rucio_setup`` with the repository
on ``PYTHONPATH`` and ``RUCIO_CONFIG`` naming the server's ``rucio.cfg``:

``bootstrap <spec.json>``
    Build the SQLite schema (stamped by alembic), the base VO and the ``root`` account, then the
    spec's accounts (each with scope ``user.<account>``, its OIDC identities ``SUB=…, ISS=…``
    as default identities, and a quota on every RSE), and the spec's POSIX RSEs (``file``
    scheme, ``rucio.rse.protocols.posix.Default``, read/write/delete on LAN and WAN, third-party
    copy) with a distance between every pair, so a replication rule to another RSE is accepted.

``serve <host> <port>``
    Serve Rucio's Flask application (``rucio.web.rest.flaskapi.v1.main``) with werkzeug's
    ``run_simple`` (threaded), as the Rucio tests do without Apache.

The spec (JSON) is ``{"accounts": [{"account", "email", "identities": [{"sub", "iss"}],
"quota_bytes"}], "rses": [{"name", "path"}]}``.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def bootstrap(spec: dict[str, Any]) -> None:
    """Create the database and everything in ``spec`` (see the module docstring)."""
    from rucio.common.types import InternalAccount, InternalScope
    from rucio.core.account import add_account
    from rucio.core.account_limit import set_local_account_limit
    from rucio.core.distance import add_distance
    from rucio.core.identity import add_account_identity
    from rucio.core.rse import add_protocol, add_rse
    from rucio.core.scope import add_scope
    from rucio.db.sqla.constants import AccountType, IdentityType
    from rucio.db.sqla.session import get_session
    from rucio.db.sqla.util import build_database, create_base_vo, create_root_account

    build_database()
    create_base_vo()
    create_root_account()
    with get_session()() as session, session.begin():
        rse_ids = [_add_posix_rse(rse, add_rse, add_protocol, session) for rse in spec["rses"]]
        for source in rse_ids:
            for dest in rse_ids:
                if source != dest:
                    add_distance(source, dest, distance=1, session=session)
        for entry in spec["accounts"]:
            account = InternalAccount(entry["account"])
            add_account(account, AccountType.USER, entry["email"], session=session)
            add_scope(InternalScope(f"user.{entry['account']}"), account, session=session)
            for identity in entry["identities"]:
                add_account_identity(
                    f"SUB={identity['sub']}, ISS={identity['iss']}",
                    IdentityType.OIDC,
                    account,
                    entry["email"],
                    default=True,
                    session=session,
                )
            for rse_id in rse_ids:
                set_local_account_limit(account, rse_id, entry["quota_bytes"], session=session)


def _add_posix_rse(rse: dict[str, Any], add_rse: Any, add_protocol: Any, session: Any) -> str:
    rse_id: str = add_rse(rse["name"], session=session)
    everything = {"read": 1, "write": 1, "delete": 1}
    add_protocol(
        rse_id,
        {
            "scheme": "file",
            "hostname": "",
            "port": 0,
            "prefix": rse["path"].rstrip("/") + "/",
            "impl": "rucio.rse.protocols.posix.Default",
            "domains": {
                "lan": everything,
                "wan": {**everything, "third_party_copy_read": 1, "third_party_copy_write": 1},
            },
        },
        session=session,
    )
    return rse_id


def serve(host: str, port: int) -> None:
    """Serve the Rucio REST API until killed."""
    from rucio.web.rest.flaskapi.v1.main import application
    from werkzeug.serving import run_simple

    run_simple(host, port, application, threaded=True, use_reloader=False)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "bootstrap":
        with open(argv[1], encoding="utf-8") as f:
            bootstrap(json.load(f))
        return 0
    if len(argv) == 3 and argv[0] == "serve":
        serve(argv[1], int(argv[2]))
        return 0
    sys.stderr.write("usage: python -m devstack.rucio_setup bootstrap SPEC | serve HOST PORT\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
