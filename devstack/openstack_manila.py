"""The Manila v2 half of the fake OpenStack server (see :mod:`devstack.openstack`).

Plain data in, plain data out: :meth:`ManilaState.handle` takes the method, the path
below ``/v2/<project_id>``, the query, the microversion header and the JSON body, and
returns a :class:`Reply`. The caller holds the server lock. Shapes follow the Manila API
reference: ``{"share": {...}}``, ``{"access_list": [...]}``, faults as
``{"itemNotFound": {"code": 404, "message": ...}}``, ``overLimit`` for 413 and so on.
"""

from __future__ import annotations

import ast
import base64
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "HTTPMethodNotAllowed",
    406: "notAcceptable",
    409: "conflictingRequest",
    413: "overLimit",
    429: "overLimit",
    500: "computeFault",
    502: "computeFault",
    503: "serviceUnavailable",
    504: "computeFault",
}
PROTOCOLS = {"NFS", "CIFS", "CEPHFS", "GLUSTERFS", "HDFS", "MAPRFS"}
_VERSION = re.compile(r"^([1-9]\d*)\.(0|[1-9]\d*)$")


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def fault(status: int, message: str, **headers: str) -> Reply:
    """A Manila-style fault body, ``{"<name>": {"code": status, "message": ...}}``."""
    name = FAULT_NAMES.get(status, "computeFault")
    return Reply(status, {name: {"code": status, "message": message}}, dict(headers))


def vtuple(version: str) -> tuple[int, int]:
    major, _, minor = version.partition(".")
    return int(major), int(minor)


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


def cephx_key() -> str:
    """A cephx-secret-shaped base64 string (28 bytes, like ``ceph auth get-key``)."""
    return base64.b64encode(b"\x01\x00" + os.urandom(26)).decode()


@dataclass
class ManilaSettings:
    max_microversion: str = "2.83"
    share_ready_polls: int = 2  # reads of a 'creating' share before it settles
    share_ready_seconds: float | None = None  # or settle after this long
    rule_step_polls: int = 1  # reads per rule state step
    quota_shares: int = 50
    quota_gigabytes: int = 1000
    share_types: tuple[str, ...] = ("cephfs", "default")
    availability_zones: tuple[str, ...] = ("nova",)
    monitors: tuple[str, ...] = ("10.0.0.1:6789", "10.0.0.2:6789", "10.0.0.3:6789")
    share_errors: int = 0  # next N created shares end in 'error'
    rule_errors: int = 0  # next N added rules end in 'error'


class ManilaState:
    """Shares and access rules of all projects, with lazy asynchronous transitions."""

    def __init__(self, settings: ManilaSettings) -> None:
        self.settings = settings
        self.shares: dict[str, dict[str, Any]] = {}
        self.rules: dict[str, dict[str, Any]] = {}
        self.export_overrides: dict[str, list[dict[str, Any]]] = {}

    # ----------------------------------------------------------- transitions

    def _advance_share(self, share: dict[str, Any]) -> None:
        if share["status"] != "creating":
            return
        share["_polls"] += 1
        elapsed = time.monotonic() - share["_t0"]
        limit = self.settings.share_ready_seconds
        if share["_polls"] >= self.settings.share_ready_polls or (
            limit is not None and elapsed >= limit
        ):
            share["status"] = "error" if share["_error"] else "available"
            share["updated_at"] = now_iso()

    def _advance_rule(self, rule: dict[str, Any]) -> None:
        if rule["state"] not in ("queued_to_apply", "applying"):
            return
        rule["_polls"] += 1
        if rule["_polls"] < self.settings.rule_step_polls:
            return
        rule["_polls"] = 0
        if rule["state"] == "queued_to_apply":
            rule["state"] = "applying"
        elif rule["_error"]:
            rule["state"] = "error"
        else:
            rule["state"] = "active"
            rule["access_key"] = cephx_key()
        rule["updated_at"] = now_iso()

    # ------------------------------------------------------------ rendering

    @staticmethod
    def _public(item: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in item.items() if not k.startswith("_")}

    def share_view(self, share: dict[str, Any]) -> dict[str, Any]:
        return self._public(share)

    def rule_view(self, rule: dict[str, Any]) -> dict[str, Any]:
        return self._public(rule)

    # -------------------------------------------------------------- handler

    def check_version(self, header: str | None) -> tuple[str, Reply | None]:
        maximum = self.settings.max_microversion
        if header is None:
            return "2.0", None
        if header == "latest":
            return maximum, None
        if not _VERSION.match(header):
            return "", fault(
                400,
                f"API Version String {header} is of invalid format. Must be of format "
                "MajorNum.MinorNum.",
            )
        if not vtuple("2.0") <= vtuple(header) <= vtuple(maximum):
            return "", fault(
                406,
                f"Version {header} is not supported by the API. Minimum is 2.0 and maximum "
                f"is {maximum}.",
            )
        return header, None

    def handle(
        self,
        project: str,
        method: str,
        rest: str,
        query: dict[str, str],
        *,
        version: str,
        body: Any,
    ) -> Reply:
        v = vtuple(version)
        parts = [p for p in rest.split("/") if p]
        if parts[:1] == ["shares"]:
            if len(parts) == 1 and method == "POST":
                return self.create_share(project, body)
            if len(parts) == 1 and method == "GET":
                return self.list_shares(project, query, detail=False)
            if parts[1:] == ["detail"] and method == "GET":
                return self.list_shares(project, query, detail=True)
            share = self.shares.get(parts[1]) if len(parts) > 1 else None
            if share is None or share["project_id"] != project:
                return fault(
                    404, f"Share {parts[1] if len(parts) > 1 else ''} could not be found."
                )
            if len(parts) == 2 and method == "GET":
                self._advance_share(share)
                return Reply(200, {"share": self.share_view(share)})
            if len(parts) == 2 and method == "DELETE":
                share["status"] = "deleting"
                del self.shares[share["id"]]
                return Reply(202)
            if parts[2:] == ["export_locations"] and method == "GET" and v >= (2, 9):
                return self.export_locations(share)
            if parts[2:] == ["action"] and method == "POST":
                return self.action(share, body)
        if parts[:1] == ["share-access-rules"] and method == "GET" and v >= (2, 45):
            if len(parts) == 1:
                return self.list_rules(project, query)
            rule = self.rules.get(parts[1])
            if len(parts) == 2 and rule is not None and rule["_project"] == project:
                self._advance_rule(rule)
                return Reply(200, {"access": self.rule_view(rule)})
            return fault(404, f"Access rule {parts[1]} could not be found.")
        return fault(404, "The resource could not be found.")

    # --------------------------------------------------------------- shares

    def create_share(self, project: str, body: Any) -> Reply:
        spec = body.get("share") if isinstance(body, dict) else None
        if not isinstance(spec, dict):
            return fault(400, "Missing required element 'share' in request body.")
        proto = str(spec.get("share_proto", "")).upper()
        if proto not in PROTOCOLS:
            return fault(400, f"Invalid share protocol provided: {spec.get('share_proto')}")
        size = spec.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            return fault(400, f"Share size '{size}' must be an integer and greater than 0")
        share_type = spec.get("share_type") or self.settings.share_types[0]
        if share_type not in self.settings.share_types:
            return fault(404, f"Share type {share_type} not found.")
        zone = spec.get("availability_zone")
        if zone is not None and zone not in self.settings.availability_zones:
            return fault(404, f"Availability zone {zone} could not be found.")
        metadata = spec.get("metadata") or {}
        if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(val, str) and 0 < len(k) <= 255 and len(val) <= 1023
            for k, val in metadata.items()
        ):
            return fault(400, "Invalid metadata: keys and values must be strings.")
        mine = [s for s in self.shares.values() if s["project_id"] == project]
        if len(mine) + 1 > self.settings.quota_shares:
            return fault(
                413, f"Maximum number of shares allowed ({self.settings.quota_shares}) exceeded."
            )
        if sum(s["size"] for s in mine) + size > self.settings.quota_gigabytes:
            return fault(
                413,
                "Requested share exceeds allowed project/user or share type gigabytes quota.",
            )
        share_id = str(uuid.uuid4())
        stamp = now_iso()
        error = self.settings.share_errors > 0
        if error:
            self.settings.share_errors -= 1
        share = {
            "id": share_id,
            "name": spec.get("name"),
            "description": spec.get("description"),
            "status": "creating",
            "size": size,
            "share_proto": proto,
            "share_type": share_type,
            "share_type_name": share_type,
            "share_network_id": spec.get("share_network_id"),
            "availability_zone": zone or self.settings.availability_zones[0],
            "metadata": dict(metadata),
            "project_id": project,
            "is_public": False,
            "created_at": stamp,
            "updated_at": None,
            "_polls": 0,
            "_t0": time.monotonic(),
            "_error": error,
        }
        self.shares[share_id] = share
        return Reply(202, {"share": self.share_view(share)})

    def list_shares(self, project: str, query: dict[str, str], *, detail: bool) -> Reply:
        wanted: dict[str, str] = {}
        if "metadata" in query:
            try:  # Manila deserialises the filter with ast.literal_eval
                wanted = ast.literal_eval(query["metadata"])
            except (ValueError, SyntaxError):
                return fault(400, "Invalid value for metadata filter.")
            if not isinstance(wanted, dict):
                return fault(400, f"Invalid metadata filter: {query['metadata']}")
        result = []
        for share in self.shares.values():
            if share["project_id"] != project:
                continue
            if "name" in query and share["name"] != query["name"]:
                continue
            if any(share["metadata"].get(k) != v for k, v in wanted.items()):
                continue
            self._advance_share(share)
            view = self.share_view(share)
            result.append(view if detail else {"id": view["id"], "name": view["name"]})
        return Reply(200, {"shares": result})

    def export_locations(self, share: dict[str, Any]) -> Reply:
        if share["id"] in self.export_overrides:
            return Reply(200, {"export_locations": self.export_overrides[share["id"]]})
        if share["status"] != "available":
            return Reply(200, {"export_locations": []})
        path = f"/volumes/_nogroup/{share['id']}/{uuid.uuid5(uuid.NAMESPACE_URL, share['id'])}"
        location = {
            "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, share["id"])),
            "path": f"{','.join(self.settings.monitors)}:{path}",
            "preferred": True,
        }
        return Reply(200, {"export_locations": [location]})

    # ---------------------------------------------------------------- rules

    def action(self, share: dict[str, Any], body: Any) -> Reply:
        if not isinstance(body, dict) or len(body) != 1:
            return fault(400, "Invalid request body: exactly one action expected.")
        ((name, args),) = body.items()
        if name == "allow_access":
            return self.allow_access(share, args)
        if name == "deny_access":
            rule = self.rules.get((args or {}).get("access_id", ""))
            if rule is None or rule["share_id"] != share["id"]:
                return fault(404, "Access rule could not be found.")
            del self.rules[rule["id"]]
            return Reply(202)
        return fault(400, f"There is no such action: {name}")

    def allow_access(self, share: dict[str, Any], args: Any) -> Reply:
        if not isinstance(args, dict):
            return fault(400, "Malformed allow_access request.")
        access_type = args.get("access_type")
        access_to = args.get("access_to")
        level = args.get("access_level", "rw")
        if access_type not in ("ip", "user", "cert", "cephx"):
            return fault(400, f"Invalid access type: {access_type}")
        if not isinstance(access_to, str) or not re.match(r"^[\w.@:-]{1,255}$", access_to):
            return fault(400, f"Invalid access_to: {access_to}")
        if level not in ("rw", "ro"):
            return fault(400, f"Invalid share access level: {level}.")
        if share["status"] != "available":
            return fault(400, "Invalid share: Share status must be available.")
        for rule in self.rules.values():
            if (
                rule["share_id"] == share["id"]
                and rule["access_to"] == access_to
                and (rule["access_type"] == access_type)
            ):
                return fault(400, f"Share access {access_type}:{access_to} exists.")
        error = self.settings.rule_errors > 0
        if error:
            self.settings.rule_errors -= 1
        rule = {
            "id": str(uuid.uuid4()),
            "share_id": share["id"],
            "access_type": access_type,
            "access_to": access_to,
            "access_level": level,
            "state": "queued_to_apply",
            "access_key": None,
            "created_at": now_iso(),
            "updated_at": None,
            "metadata": {},
            "_project": share["project_id"],
            "_polls": 0,
            "_error": error,
        }
        self.rules[rule["id"]] = rule
        return Reply(200, {"access": self.rule_view(rule)})

    def list_rules(self, project: str, query: dict[str, str]) -> Reply:
        if not query.get("share_id"):
            return fault(400, "The field 'share_id' has to be specified.")
        share = self.shares.get(query["share_id"])
        if share is None or share["project_id"] != project:
            return fault(404, f"Share {query['share_id']} could not be found.")
        rules = [r for r in self.rules.values() if r["share_id"] == share["id"]]
        for rule in rules:
            self._advance_rule(rule)
        return Reply(200, {"access_list": [self.rule_view(r) for r in rules]})
