"""Configuration of the OIDC authenticators: every option, with its documentation.

:class:`OIDCSettings` is a mixin placed before
:class:`oauthenticator.oauth2.OAuthenticator` in the bases of
:class:`~iris_jupyterhub.auth.OIDCAuthenticator`, so its traits and defaults win and are
set as ``c.OIDCAuthenticator.<trait>`` (or ``c.IAMAuthenticator``, ``c.EGICheckinAuthenticator``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from tornado.httpclient import AsyncHTTPClient
from traitlets import Bool, Dict, Float, Int, List, Set, Unicode, default, validate
from traitlets.config import Configurable

from ..groups import parse_group_rules
from .claims import GROUP_FORMATS
from .tokens import DEFAULT_ID_TOKEN_ALGORITHMS, validate_algorithms

__all__ = ["OIDCSettings"]


class OIDCSettings(Configurable):
    """Options shared by every OIDC authenticator of this library."""

    issuer = Unicode(
        config=True,
        help="""
        The provider's issuer identifier, e.g. ``https://iris-iam.stfc.ac.uk/``.

        Endpoints are discovered from ``<issuer>/.well-known/openid-configuration``, and
        the ``iss`` claim of every ID token must name this issuer (a trailing ``/`` is
        ignored on both sides). ``https`` is required except for loopback test providers.
        """,
    )

    @validate("issuer")
    def _validate_issuer(self, proposal: Any) -> str:
        value = str(proposal.value)
        parsed = urlparse(value)
        loopback = parsed.hostname in {"127.0.0.1", "localhost", "::1"}
        if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
            raise ValueError(
                f"{type(self).__name__}.issuer must be an https:// URL (got {value!r}); "
                "plain http is only accepted for a provider on the loopback interface"
            )
        if parsed.query or parsed.fragment:
            raise ValueError(f"{type(self).__name__}.issuer must not have a query or fragment")
        return value

    jwks_url = Unicode(
        config=True,
        help="URL of the provider's JSON Web Key Set. Empty: taken from discovery (``jwks_uri``).",
    )

    discovery_ttl = Float(
        3600,
        config=True,
        help="""
        Seconds the discovery document and the JWKS are cached. When a refetch fails, the
        cached copy keeps being used and the failure is logged.
        """,
    )

    jwks_min_refetch_interval = Float(
        60,
        config=True,
        help="""
        An ID token signed with a key id (``kid``) that is not in the cached JWKS makes the
        hub refetch the JWKS once (the provider rotated its keys), at most this often in
        seconds, so forged tokens cannot make the hub hammer the provider.
        """,
    )

    id_token_algorithms = List(
        Unicode(),
        default_value=list(DEFAULT_ID_TOKEN_ALGORITHMS),
        config=True,
        help="""
        JWS algorithms accepted for ID token signatures. ``none`` and HMAC (``HS*``)
        algorithms are refused: ID tokens must be signed with the provider's private key.
        """,
    )

    @validate("id_token_algorithms")
    def _validate_id_token_algorithms(self, proposal: Any) -> list[str]:
        try:
            return validate_algorithms(proposal.value)
        except ValueError as e:
            raise ValueError(f"{type(self).__name__}.id_token_algorithms: {e}") from e

    id_token_leeway = Int(
        60,
        config=True,
        help="Seconds of clock skew tolerated between hub and provider for exp, iat and nbf.",
    )

    @validate("id_token_leeway")
    def _validate_leeway(self, proposal: Any) -> int:
        if not 0 <= proposal.value <= 600:
            raise ValueError(f"{type(self).__name__}.id_token_leeway must be 0..600 seconds")
        return int(proposal.value)

    http_timeout = Float(
        10,
        config=True,
        help="""
        Seconds to wait for the provider on each request (discovery, token, userinfo, JWKS).
        A provider that does not answer in time gives the user a 503 page with a retry hint.
        """,
    )

    http_max_clients = Int(
        100,
        config=True,
        help="""
        Requests to the provider in flight at once (token, userinfo, discovery, JWKS);
        more wait their turn. Each login makes two, so at the start of a workshop many
        wait: the wait counts against ``http_timeout``, and tornado's default of 10 made
        a burst of logins fail as if the provider were down. Raise it for very large
        bursts if the provider keeps up.
        """,
    )

    @validate("http_max_clients")
    def _validate_http_max_clients(self, proposal: Any) -> int:
        if int(proposal.value) < 1:
            raise ValueError(f"{type(self).__name__}.http_max_clients must be at least 1")
        return int(proposal.value)

    identity_claims = List(
        Unicode(),
        default_value=["sub"],
        config=True,
        help="""
        Claims that carry the person's stable identifier at this provider, tried in order.
        Together with the issuer this is the identity key: it is what binds a person to
        their hub user (and, later, to their POSIX UID). Never a display or user name.
        """,
    )

    username_claim = Unicode(
        "preferred_username",
        config=True,
        help="""
        Claim the hub username is made from. The value is made safe (lower case, accents
        removed, characters outside ``a-z 0-9 . _ -`` replaced by ``-``); values with path
        separators, control characters or bidirectional overrides are refused. If the name
        is already bound to a different identity, the login is refused.
        """,
    )

    username_max_length = Int(
        64, config=True, help="Longest hub username accepted; longer names are refused."
    )

    group_claims = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        config=True,
        help="""
        Claims that carry group membership, and their format: ``iam`` (``"vo/sub"``),
        ``wlcg`` (``"/vo/sub"``) or ``entitlement`` (AARC/EGI URNs). Claim names are
        literal, so ``wlcg.groups`` works. ID token and userinfo claims are merged.
        """,
    )

    @validate("group_claims")
    def _validate_group_claims(self, proposal: Any) -> dict[str, str]:
        for claim, fmt in proposal.value.items():
            if fmt not in GROUP_FORMATS:
                raise ValueError(
                    f"{type(self).__name__}.group_claims[{claim!r}] = {fmt!r}: "
                    f"the format must be one of {', '.join(GROUP_FORMATS)}"
                )
        return dict(proposal.value)

    entitlement_namespaces = List(
        Unicode(),
        config=True,
        help="""
        URN prefixes whose ``:group:`` entitlements are read as groups, e.g.
        ``urn:mace:egi.eu`` (EGI Check-in) or ``urn:geant:eduteams.org:service:eduteams``.
        Entitlements from other namespaces are ignored.
        """,
    )

    required_groups = Set(
        Unicode(),
        config=True,
        help="""
        Canonical groups a user must ALL be in (e.g. ``{"iris", "iris/lsst:role=member"}``)
        to log in or keep using the hub, checked at login and at every refresh. Users in
        ``admin_users`` are exempt. See :mod:`iris_jupyterhub.groups` for the syntax.
        """,
    ).tag(allow_config=True)

    @validate("allowed_groups", "admin_groups", "required_groups")
    def _validate_group_rules(self, proposal: Any) -> set[str]:
        parse_group_rules(proposal.value, f"{type(self).__name__}.{proposal.trait.name}")
        return set(proposal.value)

    posix_mapping = Bool(
        True,
        config=True,
        help="""
        Give every identity a permanent POSIX account (uid, personal gid, name) and a gid
        for every group, from the :class:`~iris_jupyterhub.posix.IdentityRegistry`
        (configured as ``c.IdentityRegistry.*``; by default a SQLite file beside the hub
        database). Stored in ``auth_state["posix"]`` at every login and refresh.
        """,
    )

    idp_outage_grace = Float(
        3600,
        config=True,
        help="""
        When the provider cannot be reached during a refresh, keep a user's last verified
        groups for up to this many seconds after the last successful check, so an outage
        at the provider does not lock everyone out of running notebooks. After that, the
        user gets a 503 until the provider answers again.
        """,
    )

    @default("enable_auth_state")
    def _enable_auth_state_default(self) -> bool:
        return True

    @default("manage_groups")
    def _manage_groups_default(self) -> bool:
        return True

    @default("refresh_pre_spawn")
    def _refresh_pre_spawn_default(self) -> bool:
        return True

    @default("scope")
    def _scope_default(self) -> list[str]:
        return ["openid", "profile", "email", "offline_access"]

    @default("http_client")
    def _http_client_default(self) -> Any:
        # its own client: the shared one would keep tornado's limit of 10 requests at once
        return AsyncHTTPClient(force_instance=True, max_clients=self.http_max_clients)

    @default("http_request_kwargs")
    def _http_request_kwargs_default(self) -> dict[str, Any]:
        return {"request_timeout": self.http_timeout, "connect_timeout": self.http_timeout}
