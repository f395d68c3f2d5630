"""``python -m devstack`` (``make demo``): a local hub with a loopback provider.

Needs a source checkout (``tests/idp/server.mjs``), ``npm ci`` (``oidc-provider``,
``configurable-http-proxy``) and node 20. See ``docs/admin/demo.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .idp import free_port
from .runner import port_is_free, run
from .settings import PROVIDERS, SPAWNERS, DemoSettings, find_repo_root

DEFAULT_PORT = 8000
DEFAULT_IDP_PORT = 9443


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description="Run a local JupyterHub with iris-jupyterhub and a loopback OIDC provider.",
    )
    parser.add_argument(
        "--idp",
        choices=sorted(PROVIDERS),
        default=os.environ.get("IDP") or "iam",
        help="provider shape: iam (iris-iam) or checkin (egi-checkin); default $IDP or iam",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="hub port (8000)")
    parser.add_argument(
        "--idp-port",
        type=int,
        default=DEFAULT_IDP_PORT,
        help="provider port (9443; a free port if that one is taken)",
    )
    parser.add_argument(
        "--spawner",
        choices=SPAWNERS,
        default="kube",
        help="kube: IRISSpawner with profiles against a local Kubernetes API stand-in "
        "(default); local: SimpleLocalProcessSpawner, no profiles",
    )
    parser.add_argument("--workdir", type=Path, help="state directory (default: <checkout>/.demo)")
    args = parser.parse_args(argv)
    if args.idp not in PROVIDERS:  # $IDP bypasses argparse's choices
        parser.error(f"IDP must be one of {', '.join(sorted(PROVIDERS))}, not {args.idp!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = find_repo_root()
    if root is None:
        print(
            "The demo runs from a source checkout of iris-jupyterhub: no directory holding "
            "tests/idp/server.mjs was found at or above the current directory or this "
            "package. Clone the repository and run `make demo` there.",
            file=sys.stderr,
        )
        return 2
    idp_port = args.idp_port
    if not port_is_free(idp_port):
        idp_port = free_port()
        print(f"port {args.idp_port} is in use: the provider uses {idp_port}", flush=True)
    settings = DemoSettings(
        repo_root=root,
        workdir=(args.workdir or root / ".demo").resolve(),
        provider=PROVIDERS[args.idp],
        port=args.port,
        idp_port=idp_port,
        spawner=args.spawner,
    )
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
