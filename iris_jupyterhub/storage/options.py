"""The rules of each ``ManilaStorage`` option, and of their combination, as pure functions.

:class:`~iris_jupyterhub.storage.config.ManilaStorage` declares the options (traits with
their help); :func:`check_option` is its one ``@validate`` and :func:`check_combination`
runs when it is built with ``enabled``. Every :class:`ValueError` names
``ManilaStorage.<option>``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from .groups import check_home_overlap, check_mount_path, parse_group_shares
from .manifests import CSI_DRIVERS, validate_csi_settings

if TYPE_CHECKING:
    from .config import ManilaStorage

__all__ = ["OPTION_RULES", "check_combination", "check_option", "interface"]

_INTERFACES = ("public", "internal", "admin")
_TEMPLATE_FIELDS = {"kind", "key"}
_COUNT_BOUNDS = {"share_size_gb": (1, 1_000_000), "retries": (1, 10)}
#: Text options checked only for stray spaces and control characters (pasted secrets).
_PLAIN = (
    *("application_credential_id", "application_credential_secret", "username", "password"),
    *("user_domain_name", "project_name", "project_domain_name", "region_name"),
    *("share_type", "share_network_id", "availability_zone", "ceph_cluster_id"),
    *("ceph_fs_name", "init_image"),
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_CEPHX_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")


def interface(value: str) -> str:
    """A catalog interface (``publicURL`` is taken for ``public``, as the openstack CLI does)."""
    value = value.removesuffix("URL")
    if value not in _INTERFACES:
        raise ValueError(f"ManilaStorage.interface: must be one of {_INTERFACES}, not {value!r}")
    return value


def _auth_url(name: str, raw: Any) -> str:
    value = str(raw)
    url = urlparse(value)
    if value and (url.scheme not in ("http", "https") or not url.netloc):
        raise ValueError(f"ManilaStorage.auth_url: {value!r} is not an http(s) URL")
    return value


def _name_template(name: str, raw: Any) -> str:
    value = str(raw)
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
    except ValueError as e:
        raise ValueError(f"ManilaStorage.share_name_template: {e}") from None
    if not fields <= _TEMPLATE_FIELDS or "key" not in fields:
        raise ValueError(
            "ManilaStorage.share_name_template: must contain {key} and no fields other "
            f"than {sorted(_TEMPLATE_FIELDS)}, got {value!r}"
        )
    return value


def _cephx_prefix(name: str, raw: Any) -> str:
    value = str(raw)
    if not _CEPHX_RE.fullmatch(value + "x" * 24) or len(value) > 16:
        raise ValueError(
            "ManilaStorage.cephx_id_prefix: 1-16 characters of A-Z a-z 0-9 . _ - "
            f"starting with a letter or digit, not {value!r}"
        )
    return value


def _group_shares(name: str, value: Any) -> dict[str, Any]:
    try:
        parse_group_shares(value)
    except ValueError as e:
        raise ValueError(f"ManilaStorage.group_shares: {e}") from None
    return dict(value)


def _mounter(name: str, value: Any) -> str:
    if value not in ("", "kernel", "fuse"):
        raise ValueError(
            f"ManilaStorage.mounter: must be 'kernel', 'fuse' or empty, not {value!r}"
        )
    return str(value)


def _driver(name: str, value: Any) -> str:
    if value not in CSI_DRIVERS:
        raise ValueError(
            f"ManilaStorage.csi_driver: must be one of {list(CSI_DRIVERS)}, not {value!r}"
        )
    return str(value)


def _kubernetes_name(name: str, raw: Any) -> str:
    value = str(raw)
    if value and (len(value) > 63 or not _NAME_RE.fullmatch(value)):
        raise ValueError(f"ManilaStorage.{name}: {value!r} is not a Kubernetes name")
    return value


def _home_path(name: str, raw: Any) -> str:
    value = str(raw)
    try:
        check_mount_path(value.replace("{username}", "u"), "ManilaStorage.home_mount_path")
    except ValueError as e:
        raise ValueError(f"{e} (such as /home/{{username}})") from None
    fields = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
    if fields - {"username"}:
        raise ValueError(
            f"ManilaStorage.home_mount_path: only {{username}} may be filled in, not {value!r}"
        )
    return value


def _seconds(name: str, raw: Any) -> float:
    value = float(raw)
    if not 0 < value <= 3600:
        raise ValueError(f"ManilaStorage.{name}: must be > 0 and <= 3600 seconds")
    return value


def _plain(name: str, raw: Any) -> str:
    value = str(raw)
    if value != value.strip() or _CONTROL_RE.search(value) or len(value) > 1024:
        raise ValueError(
            f"ManilaStorage.{name}: no surrounding spaces or control characters, "
            "at most 1024 characters"
        )
    return value


def _hub_name(name: str, raw: Any) -> str:
    value = str(raw)
    if value and (len(value) > 16 or not _NAME_RE.fullmatch(value)):
        raise ValueError(
            "ManilaStorage.hub_name: up to 16 characters of a-z 0-9 - "
            f"(a DNS label), not {value!r}"
        )
    return value


def _pull_policy(name: str, value: Any) -> str:
    if value not in ("Always", "IfNotPresent", "Never"):
        raise ValueError(
            f"ManilaStorage.init_image_pull_policy: Always, IfNotPresent or Never, not {value!r}"
        )
    return str(value)


def _count(name: str, value: Any) -> int:
    low, high = _COUNT_BOUNDS[name]
    if not low <= int(value) <= high:
        raise ValueError(f"ManilaStorage.{name}: must be {low}..{high}, not {value}")
    return int(value)


OPTION_RULES: dict[str, Callable[[str, Any], Any]] = {
    "auth_url": _auth_url,
    "interface": lambda name, value: interface(str(value)),
    "share_name_template": _name_template,
    "cephx_id_prefix": _cephx_prefix,
    "group_shares": _group_shares,
    "mounter": _mounter,
    "csi_driver": _driver,
    "namespace": _kubernetes_name,
    "home_mount_path": _home_path,
    "hub_name": _hub_name,
    "init_image_pull_policy": _pull_policy,
    **dict.fromkeys(("prepare_timeout", "request_timeout", "poll_interval"), _seconds),
    **dict.fromkeys(_COUNT_BOUNDS, _count),
    **dict.fromkeys(_PLAIN, _plain),
}
"""The rule of each checked option: ``rule(name, value)`` returns the value to keep."""


def check_option(name: str, value: Any) -> Any:
    """The value of option ``name`` as kept, checked.

    Raises:
        ValueError: Naming ``ManilaStorage.<name>``.
    """
    return OPTION_RULES[name](name, value)


def _check_credentials(settings: ManilaStorage) -> None:
    if not settings.auth_url:
        raise ValueError(
            "ManilaStorage.auth_url: required when ManilaStorage.enabled (or set OS_AUTH_URL)"
        )
    if settings.application_credential_id or settings.application_credential_secret:
        for name in ("application_credential_id", "application_credential_secret"):
            if not getattr(settings, name):
                raise ValueError(
                    f"ManilaStorage.{name}: required with the other half of the "
                    f"application credential (or set OS_{name.upper()})"
                )
    elif not (settings.username and settings.password and settings.project_name):
        missing = [n for n in ("username", "password", "project_name") if not getattr(settings, n)]
        raise ValueError(
            f"ManilaStorage.application_credential_id: required when ManilaStorage.enabled "
            f"(or password authentication: ManilaStorage.{missing[0]} is not set)"
        )


def check_combination(settings: ManilaStorage) -> None:
    """Check the options of ``settings`` together; :class:`ValueError` names the one to fix."""
    _check_credentials(settings)
    interface(settings.interface)  # a default from OS_INTERFACE is not validated
    if settings.ownership_init and not settings.init_image:
        raise ValueError("ManilaStorage.init_image: required while ownership_init is on")
    if settings.csi_driver == "manila" and not settings.region_name:
        raise ValueError(
            "ManilaStorage.region_name: required with csi_driver = 'manila' (its node "
            "plugin needs os-region; or set OS_REGION_NAME)"
        )
    validate_csi_settings(settings.csi_settings(settings.namespace or "default"))
    try:
        check_home_overlap(settings.parsed_group_shares(), settings.home_mount_path)
    except ValueError as e:
        raise ValueError(f"ManilaStorage.group_shares: {e}") from None
