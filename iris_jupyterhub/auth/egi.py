"""``EGICheckinAuthenticator``: EGI Check-in (production, demo and development instances)."""

from __future__ import annotations

from typing import Any

from traitlets import Unicode, default, validate

from .oidc import OIDCAuthenticator

__all__ = ["CHECKIN_ISSUERS", "EGICheckinAuthenticator"]

#: The Check-in instances: same realm path on each host.
CHECKIN_ISSUERS = {
    "production": "https://aai.egi.eu/auth/realms/egi",
    "demo": "https://aai-demo.egi.eu/auth/realms/egi",
    "development": "https://aai-dev.egi.eu/auth/realms/egi",
}


class EGICheckinAuthenticator(OIDCAuthenticator):
    """Log in with EGI Check-in.

    Groups come from ``eduperson_entitlement`` URNs
    (``urn:mace:egi.eu:group:<vo>[:<sub>...][:role=<role>]#<authority>``), which Check-in
    returns from the userinfo endpoint only. The identity is ``voperson_id`` (Check-in's
    documented community identifier), falling back to ``sub``. Check-in user names are not
    unique, so a second person with the same ``preferred_username`` is refused rather than
    given the first person's hub user; set ``username_claim`` to ``voperson_id`` for
    guaranteed-unique (if unfriendly) names.
    """

    checkin_instance = Unicode(
        "production",
        config=True,
        help="""
        Which Check-in instance to use when ``issuer`` is not set: ``production``,
        ``demo`` or ``development``.
        """,
    )

    @validate("checkin_instance")
    def _validate_instance(self, proposal: Any) -> str:
        if proposal.value not in CHECKIN_ISSUERS:
            raise ValueError(
                f"{type(self).__name__}.checkin_instance must be one of "
                f"{', '.join(CHECKIN_ISSUERS)}, not {proposal.value!r}"
            )
        return str(proposal.value)

    @default("login_service")
    def _login_service_default(self) -> str:
        return "EGI Check-in"

    @default("issuer")
    def _issuer_default(self) -> str:
        return CHECKIN_ISSUERS[self.checkin_instance]

    @default("scope")
    def _scope_default(self) -> list[str]:
        return [
            "openid",
            "profile",
            "email",
            "voperson_id",
            "eduperson_entitlement",
            "offline_access",
        ]

    @default("identity_claims")
    def _identity_claims_default(self) -> list[str]:
        return ["voperson_id", "sub"]

    @default("group_claims")
    def _group_claims_default(self) -> dict[str, str]:
        return {"eduperson_entitlement": "entitlement", "entitlements": "entitlement"}

    @default("entitlement_namespaces")
    def _entitlement_namespaces_default(self) -> list[str]:
        return ["urn:mace:egi.eu"]
