"""What the demo runs: the chosen provider, ports and paths."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PROVIDERS", "SPAWNERS", "DemoSettings", "Provider", "find_repo_root"]

#: ``--spawner`` values: IRISSpawner against the Kubernetes stand-in, or local processes.
SPAWNERS = ("kube", "local")


@dataclass(frozen=True)
class Provider:
    """How the demo hub is configured for one of the loopback provider's shapes."""

    idp_name: str  # provider name in server.mjs / users.json
    authenticator: str  # entry point name
    config_class: str  # traitlets class name in jupyterhub_config.py
    allowed_groups: tuple[str, ...]
    admin_groups: tuple[str, ...]
    group_claims: dict[str, str] = field(default_factory=dict)
    entitlement_namespaces: tuple[str, ...] = ("urn:mace:egi.eu",)
    #: The canonical group offered the LSST and GPU profiles.
    lsst_group: str = "iris/lsst"


PROVIDERS: dict[str, Provider] = {
    "iam": Provider(
        idp_name="iam",
        authenticator="iris-iam",
        config_class="IAMAuthenticator",
        allowed_groups=("iris",),
        admin_groups=("iris/admins",),
        group_claims={"groups": "iam", "wlcg.groups": "wlcg"},
    ),
    "checkin": Provider(
        idp_name="checkin",
        authenticator="egi-checkin",
        config_class="EGICheckinAuthenticator",
        allowed_groups=("vo.iris.ac.uk", "vo.access.egi.eu"),
        admin_groups=("vo.iris.ac.uk/lsst/desc:role=manager",),
        group_claims={"eduperson_entitlement": "entitlement"},
        lsst_group="vo.iris.ac.uk/lsst",
    ),
}


@dataclass(frozen=True)
class DemoSettings:
    """Everything the demo needs to start, resolved from the command line."""

    repo_root: Path
    workdir: Path
    provider: Provider
    port: int
    idp_port: int
    spawner: str = "kube"

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def callback_url(self) -> str:
        return f"{self.hub_url}/hub/oauth_callback"

    @property
    def kube_workdir(self) -> Path:
        """The Kubernetes stand-in's state: kubeconfig, log, the pods' home directories."""
        return self.workdir / "kube"

    @property
    def pods_dir(self) -> Path:
        """Where every pod manifest the spawner sends is written, as ``<pod name>.json``."""
        return self.workdir / "pods"

    @property
    def users_file(self) -> Path:
        return self.repo_root / "tests" / "idp" / "users.json"


def _is_repo_root(path: Path) -> bool:
    return (path / "tests" / "idp" / "server.mjs").is_file()


def find_repo_root(start: Path | None = None) -> Path | None:
    """The source checkout: ``start`` (default: cwd) or a parent, else next to this package."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents, *Path(__file__).resolve().parents):
        if _is_repo_root(candidate):
            return candidate
    return None
