"""``refresh_user``: renew tokens, re-read the groups and re-apply the rules.

Part of :class:`~iris_jupyterhub.auth.OIDCAuthenticator`. JupyterHub calls
``refresh_user`` before every spawn (``refresh_pre_spawn``) and, with
``auth_refresh_age``, on requests; what it returns is applied by the hub (a new auth model
updates ``auth_state`` and the hub groups, ``False`` asks for a new login). A refusal is a
403 raised from here, after the hub groups and the stored memberships have been synced.
"""

from __future__ import annotations

import time
from typing import Any

from tornado import web
from tornado.httpclient import HTTPClientError

from ..errors import http_error
from .identity import same_identity

__all__ = ["RefreshMixin"]


class RefreshMixin:
    """``refresh_user`` of the OIDC authenticators (placed before ``OAuthenticator``)."""

    # provided by OIDCSettings / OAuthenticator (annotations only, for mypy)
    log: Any
    login_service: str
    idp_outage_grace: float
    manage_groups: bool
    check_blocked_users: Any
    check_allowed: Any
    get_token_info: Any
    build_refresh_token_request_params: Any
    _token_to_auth_model: Any

    async def refresh_user(self, user: Any, handler: Any = None, **kwargs: Any) -> Any:
        """Renew tokens with the refresh token, re-read userinfo and re-apply the rules.

        Returns the new auth model, ``False`` when the user must log in again (refresh
        token expired or revoked), or raises a 403 when the provider says the user is no
        longer allowed (left the VO, or is blocked). Before that 403, the hub groups and
        the memberships stored in ``auth_state`` are brought up to date, so a refused user
        keeps neither the groups nor the JupyterHub roles granted to them; a blocked user
        is left in no hub group.
        """
        previous = await user.get_auth_state()
        if not previous:
            return False
        try:
            auth_model = await self._refreshed_auth_model(user, previous, handler)
        except web.HTTPError as e:
            verified = previous.get("verified_at") or 0
            if e.status_code == 503 and time.time() - verified < self.idp_outage_grace:
                self.log.warning(
                    "%s unreachable; keeping %s's groups verified %ds ago",
                    self.login_service,
                    user.name,
                    int(time.time() - verified),
                )
                return True
            raise
        if not isinstance(auth_model, dict):
            return auth_model
        if not same_identity(previous.get("identity"), auth_model["auth_state"].get("identity")):
            self.log.error("Refresh for %s returned a different identity; refusing", user.name)
            raise http_error(
                403,
                f"{self.login_service} now reports a different account for this hub user, "
                "so it cannot be used until you log in again.",
            )
        if not self.check_blocked_users(user.name, auth_model):
            # no hub group for a blocked user, whatever the provider says (JupyterHub
            # empties a blocked user's groups at start-up too)
            await self._apply_before_refusal(user, {**auth_model, "groups": []})
            raise http_error(
                403,
                "Your account has been blocked on this hub. Please contact the hub "
                "administrators if you think this is a mistake.",
            )
        try:
            allowed = await self.check_allowed(user.name, auth_model)
        except web.HTTPError:
            await self._apply_before_refusal(user, auth_model)
            raise
        if not allowed:
            await self._apply_before_refusal(user, auth_model)
            raise http_error(
                403,
                f"According to {self.login_service} you are no longer a member of a group "
                "that may use this hub, so you cannot start or use servers here. Ask your "
                "VO manager if you think this is a mistake.",
            )
        return auth_model

    async def _apply_before_refusal(self, user: Any, auth_model: dict[str, Any]) -> None:
        """Store what the provider now says about a user this refresh refuses.

        JupyterHub applies a refresh result (hub groups, ``auth_state``) only when
        ``refresh_user`` returns it, which a refusal cannot do; so the user keeps their
        hub groups, and every JupyterHub role granted to those groups, unless they are
        synced here first, through the same ``User`` methods the hub uses. The renewed
        tokens are kept as well (a provider that rotates refresh tokens has already
        invalidated the old one).
        """
        groups = auth_model.get("groups")
        if self.manage_groups and groups is not None:
            user.sync_groups(groups)
        await user.save_auth_state(auth_model["auth_state"])
        self.log.info(
            "Refusing %s at refresh; hub groups and stored memberships now %s",
            user.name,
            sorted(groups) if groups is not None else auth_model["auth_state"].get("groups"),
        )

    async def _refreshed_auth_model(
        self, user: Any, previous: dict[str, Any], handler: Any
    ) -> Any:
        refresh_token = previous.get("refresh_token")
        if not refresh_token:
            # No refresh token: oauthenticator re-reads userinfo with the access token.
            return await super().refresh_user(user, handler)  # type: ignore[misc]
        params = self.build_refresh_token_request_params(refresh_token)
        try:
            token_info = await self.get_token_info(handler, params)
        except HTTPClientError as e:
            self.log.info("Refresh token of %s refused (%s); login required", user.name, e)
            return False
        token_info.setdefault("refresh_token", refresh_token)
        if "id_token_claims" not in token_info:
            old = previous.get("token_response") or {}
            token_info["id_token_claims"] = old.get("id_token_claims")
        return await self._token_to_auth_model(token_info)
