"""``IAMAuthenticator``: INDIGO IAM, as run by IRIS at https://iris-iam.stfc.ac.uk/."""

from __future__ import annotations

from traitlets import default

from .oidc import OIDCAuthenticator

__all__ = ["IAMAuthenticator"]


class IAMAuthenticator(OIDCAuthenticator):
    """Log in with INDIGO IAM (IRIS IAM by default).

    Reads groups from every IAM token profile: ``groups`` (IAM profile, ``"vo/sub"``),
    ``wlcg.groups`` (WLCG profile, ``"/vo/sub"``) and ``eduperson_entitlement`` (AARC
    profile, ``urn:geant:<iam host>:group:vo:sub``). The identity is (issuer, ``sub``);
    ``sub`` is a UUID that IAM never reassigns. IAM's discovery document ends the issuer
    with ``/``; issuers are compared without it.
    """

    @default("login_service")
    def _login_service_default(self) -> str:
        return "IRIS IAM"

    @default("issuer")
    def _issuer_default(self) -> str:
        return "https://iris-iam.stfc.ac.uk/"

    @default("scope")
    def _scope_default(self) -> list[str]:
        return ["openid", "profile", "email", "offline_access", "wlcg.groups"]

    @default("group_claims")
    def _group_claims_default(self) -> dict[str, str]:
        return {"groups": "iam", "wlcg.groups": "wlcg", "eduperson_entitlement": "entitlement"}

    @default("entitlement_namespaces")
    def _entitlement_namespaces_default(self) -> list[str]:
        host = self.issuer.split("://", 1)[-1].split("/", 1)[0]
        return [f"urn:geant:{host}"]
