"""Rucio on the hub: which Rucio instances are offered, to whom, and how their tokens are made.

:class:`RucioTokens` is the hub's configuration (``c.RucioTokens.*``); the rules are pure
functions over plain data: :func:`validate_instances` checks the administrator's list once
and returns :class:`RucioInstance` objects, :func:`instances_for` picks those a user's
groups give them, and :func:`account_for` renders the Rucio account a user is told to use.

An instance, as configured::

    c.RucioTokens.instances = [
        {
            "name": "ral",                       # [a-z0-9_-], the token file is <name>.token
            "display_name": "RAL Rucio",
            "rucio_host": "https://rucio.example.ac.uk",
            "auth_host": "https://rucio-auth.example.ac.uk",
            "vo": "def",                         # optional (multi-VO Rucio)
            "ca_cert": "/etc/pki/tls/certs/ca-bundle.crt",   # path in the notebook image
            "audience": "rucio",                 # [oidc] expected_audience of that server
            "scopes": ["openid", "profile"],     # [oidc] expected_scope, plus the IdP's needs
            "groups": ["iris/lsst", "dune"],     # canonical group rules (any of them)
            "account": "{username}",             # "" (default): the identity's default account
            "grant": "refresh_token",            # or "token_exchange" (RFC 8693)
        },
    ]
"""

from __future__ import annotations

import posixpath
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from traitlets import Bool, Float, List, Unicode, validate
from traitlets.config import Configurable

from ..groups import (
    GroupMembership,
    GroupRule,
    HeldGroups,
    any_rule_matches,
    parse_group_rules,
    safe_repr,
)

__all__ = [
    "ACCOUNT_FIELDS",
    "DEFAULT_NOTEBOOK_DIR",
    "GRANTS",
    "INSTANCE_KEYS",
    "ROUTE",
    "SCOPE",
    "RucioInstance",
    "RucioTokens",
    "account_for",
    "check_account_template",
    "instances_for",
    "validate_instances",
]

GRANTS = ("refresh_token", "token_exchange")
"""How a Rucio token is obtained at the IdP: the ``refresh_token`` grant with an
``audience`` (INDIGO IAM, no extra client grant needed), or RFC 8693 token exchange (only
when the hub's client at the IdP has that grant)."""

INSTANCE_KEYS = (
    "name",
    "display_name",
    "rucio_host",
    "auth_host",
    "vo",
    "ca_cert",
    "audience",
    "scopes",
    "groups",
    "account",
    "grant",
)
ACCOUNT_FIELDS = ("username", "hub_username")
"""Fields an ``account`` template may use: ``{username}`` is the POSIX login name from the
identity registry (the hub username when there is no POSIX mapping), ``{hub_username}``
the hub username."""

DEFAULT_NOTEBOOK_DIR = "/run/iris-rucio"

SCOPE = "custom:iris-rucio-token"
"""The custom scope that lets a token fetch its owner's Rucio tokens (granted ``!user``)."""

ROUTE = r"/api/iris/rucio/([^/]+)/token"
"""The endpoint's route below the hub prefix (``/hub/api/iris/rucio/<instance>/token``)."""
# World-writable: anyone in the pod may create the token directory there first.
_SHARED_DIRS = ("/tmp", "/var/tmp", "/dev/shm")  # noqa: S108
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_VO_RE = re.compile(r"[a-z0-9]{1,3}")
_SCOPE_RE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 scope-token
_ACCOUNT_RE = re.compile(r"[a-z0-9_-]{1,25}")  # Rucio's generic schema


@dataclass(frozen=True)
class RucioInstance:
    """One Rucio instance, validated (see the module docstring for the keys)."""

    name: str
    display_name: str
    rucio_host: str
    auth_host: str
    vo: str | None
    ca_cert: str | None
    audience: str
    scopes: tuple[str, ...]
    groups: tuple[GroupRule, ...]
    account: str
    grant: str

    def offered_to(self, memberships: Iterable[GroupMembership] | HeldGroups) -> bool:
        """Whether a user with ``memberships`` gets this instance (any of its groups)."""
        return any_rule_matches(self.groups, memberships)


def _url(spec: Mapping[str, Any], key: str) -> str:
    value = spec.get(key)
    parsed = urlparse(value) if isinstance(value, str) else None
    if parsed is None or parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise ValueError(f"{key} must be an http(s) URL, not {safe_repr(value)}")
    loopback = parsed.hostname in {"127.0.0.1", "localhost", "::1"}
    if parsed.scheme == "http" and not loopback:
        raise ValueError(f"{key} must be an https URL (plain http only on loopback)")
    if parsed.query or parsed.fragment:
        raise ValueError(f"{key} must not have a query or fragment")
    return str(value).rstrip("/")


def _optional_text(spec: Mapping[str, Any], key: str) -> str | None:
    value = spec.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
        raise ValueError(f"{key} must be a one-line string, not {safe_repr(value)}")
    return value


def _scopes(spec: Mapping[str, Any]) -> tuple[str, ...]:
    value = spec.get("scopes", ["openid", "profile"])
    items = value.split() if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise ValueError("scopes must be a non-empty list such as ['openid', 'profile']")
    for scope in items:
        if not isinstance(scope, str) or _SCOPE_RE.fullmatch(scope) is None:
            raise ValueError(f"scopes: {safe_repr(scope)} is not an OAuth scope")
    return tuple(items)


def check_account_template(value: object) -> str:
    """``value`` if it is a valid ``account`` rule (``""`` or a template), else ``ValueError``."""
    if not isinstance(value, str):
        raise ValueError("account must be a string: '' or a template like '{username}'")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
    except ValueError as e:
        raise ValueError(f"account {value!r} is not a valid template: {e}") from None
    for field in fields:
        if field not in ACCOUNT_FIELDS:
            raise ValueError(
                f"account {value!r} uses {{{field}}}; only "
                + ", ".join(f"{{{f}}}" for f in ACCOUNT_FIELDS)
                + " may be used"
            )
    if not fields and value and _ACCOUNT_RE.fullmatch(value) is None:
        raise ValueError(f"account {value!r} is not a Rucio account name ([a-z0-9_-], 1-25)")
    return value


def _instance(spec: object) -> RucioInstance:
    if not isinstance(spec, Mapping):
        raise ValueError("must be a mapping with the keys " + ", ".join(INSTANCE_KEYS))
    unknown = sorted(set(spec) - set(INSTANCE_KEYS))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(map(repr, unknown))}")
    name = spec.get("name")
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
        raise ValueError(
            f"name {safe_repr(name)} must be 1-32 characters of a-z 0-9 _ - "
            "(it names the token file)"
        )
    vo = _optional_text(spec, "vo")
    if vo is not None and _VO_RE.fullmatch(vo) is None:
        raise ValueError(f"vo {vo!r} must be Rucio's short VO name (1-3 of a-z 0-9)")
    groups = spec.get("groups")
    if isinstance(groups, str) or not isinstance(groups, (list, tuple)) or not groups:
        raise ValueError("groups must be a non-empty list of group rules (who gets it)")
    grant = spec.get("grant", "refresh_token")
    if grant not in GRANTS:
        raise ValueError(f"grant {safe_repr(grant)} must be one of {', '.join(GRANTS)}")
    audience = spec.get("audience", "rucio")
    if not isinstance(audience, str) or not audience.strip() or audience != audience.strip():
        raise ValueError(f"audience {safe_repr(audience)} must be a non-empty string")
    return RucioInstance(
        name=name,
        display_name=_optional_text(spec, "display_name") or name,
        rucio_host=_url(spec, "rucio_host"),
        auth_host=_url(spec, "auth_host") if spec.get("auth_host") else _url(spec, "rucio_host"),
        vo=vo,
        ca_cert=_optional_text(spec, "ca_cert"),
        audience=audience,
        scopes=_scopes(spec),
        groups=parse_group_rules(groups, "groups"),
        account=check_account_template(spec.get("account", "")),
        grant=str(grant),
    )


def validate_instances(
    value: object, option: str = "RucioTokens.instances"
) -> list[RucioInstance]:
    """Check the administrator's instance list and return it as :class:`RucioInstance`.

    Raises:
        ValueError: Naming ``option``, the entry and what is wrong with it.
    """
    if isinstance(value, (str, Mapping)) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{option} must be a list of instances (mappings)")
    found: list[RucioInstance] = []
    for index, spec in enumerate(value):
        label = spec.get("name") if isinstance(spec, Mapping) else None
        try:
            instance = _instance(spec)
        except ValueError as e:
            raise ValueError(f"{option}[{index}] ({label!r}): {e}") from None
        if any(i.name == instance.name for i in found):
            raise ValueError(f"{option}[{index}]: name {instance.name!r} is used twice")
        found.append(instance)
    return found


def instances_for(
    instances: Sequence[RucioInstance], memberships: Iterable[GroupMembership]
) -> list[RucioInstance]:
    """The instances a user with ``memberships`` gets, in configuration order."""
    held = HeldGroups.of(memberships)
    return [instance for instance in instances if instance.offered_to(held)]


def account_for(
    instance: RucioInstance, auth_state: Mapping[str, Any], hub_username: str
) -> str | None:
    """The Rucio account of a user at ``instance``, or ``None`` for the identity's default.

    ``{username}`` is ``auth_state["posix"]["username"]`` when the identity registry maps
    the user, else the hub username. A rendered name that Rucio would refuse gives
    ``None`` (the server then uses the identity's default account).
    """
    if not instance.account:
        return None
    posix = auth_state.get("posix")
    username = posix.get("username") if isinstance(posix, Mapping) else None
    account = instance.account.format(
        username=username if isinstance(username, str) and username else hub_username,
        hub_username=hub_username,
    )
    return account if _ACCOUNT_RE.fullmatch(account) else None


class RucioTokens(Configurable):
    """Rucio instances offered to notebook users, and how their tokens are made.

    Configured as ``c.RucioTokens.*`` and wired into the hub by
    :func:`iris_jupyterhub.rucio.configure_hub` (or ``jupyterhub_config.d/60-rucio.py``).
    """

    instances: List[Any] = List(
        config=True,
        help="""
        The Rucio instances offered, each a mapping with ``name`` (a-z 0-9 _ -, names the
        token file), ``display_name``, ``rucio_host``, ``auth_host`` (default the
        ``rucio_host``), ``vo`` (multi-VO servers), ``ca_cert`` (a path in the notebook
        image), ``audience`` (default ``rucio``: the server's ``[oidc]
        expected_audience``), ``scopes`` (default ``openid profile``: the server's
        ``[oidc] expected_scope``; every scope must have been granted at login),
        ``groups`` (canonical group rules: members of any get the instance), ``account``
        (``""``: the identity's default account at that server; or a template using
        ``{username}``, the POSIX login name, or ``{hub_username}``) and ``grant``
        (``refresh_token``, default: the user's refresh token with ``audience=...`` as
        INDIGO IAM takes it; ``token_exchange``: RFC 8693, only when the hub's client at
        the IdP has that grant). The first instance a user gets is their default one
        (``BEARER_TOKEN_FILE``, ``rucio.cfg``).
        """,
    )

    @validate("instances")
    def _validate_instances(self, proposal: Any) -> list[Any]:
        validate_instances(proposal.value, "RucioTokens.instances")
        return list(proposal.value)

    renewal_margin = Float(
        120,
        config=True,
        help="""
        Seconds before its expiry that a cached Rucio access token is replaced by a new
        one when a server asks for it (at most half the token's lifetime, so short-lived
        tokens are still reused for a while). The notebook side asks again before expiry.
        """,
    )

    @validate("renewal_margin")
    def _validate_renewal_margin(self, proposal: Any) -> float:
        if not 0 <= proposal.value <= 3600:
            raise ValueError("RucioTokens.renewal_margin must be 0..3600 seconds")
        return float(proposal.value)

    notebook_dir = Unicode(
        DEFAULT_NOTEBOOK_DIR,
        config=True,
        help="""
        Directory in the notebook container holding the token files and ``rucio.cfg``
        (``IRIS_RUCIO_DIR``). Not in the home share, not under the file browser's root:
        by default an in-memory ``emptyDir`` mounted at ``/run/iris-rucio``.
        """,
    )

    @validate("notebook_dir")
    def _validate_notebook_dir(self, proposal: Any) -> str:
        value = str(proposal.value)
        if (
            not value.startswith("/")
            or value.rstrip("/") in ("", "/home", "/tmp")  # noqa: S108
            or (any(c in value for c in "\r\n\0{}"))
        ):
            raise ValueError(
                f"RucioTokens.notebook_dir must be an absolute directory of its own, not {value!r}"
            )
        normal = posixpath.normpath(value)
        if any(normal == d or normal.startswith(d + "/") for d in _SHARED_DIRS):
            raise ValueError(
                "RucioTokens.notebook_dir must not be under /tmp, /var/tmp or /dev/shm "
                f"(anyone may create it there first), not {value!r}"
            )
        return value.rstrip("/")

    notebook_volume = Bool(
        True,
        config=True,
        help="""
        Mount an ``emptyDir`` volume (``medium: Memory``) at ``notebook_dir`` in pods
        spawned by ``IRISSpawner``. Turn off only where the directory exists by other
        means (e.g. local-process test servers).
        """,
    )

    def parsed_instances(self) -> list[RucioInstance]:
        """:attr:`instances` as validated :class:`RucioInstance` objects."""
        return validate_instances(self.instances, "RucioTokens.instances")
