"""Hand a user's current IAM access token to their own notebook server, and nothing more.

:class:`BearerTokenHandler` serves it (mounted by IAMAuthenticator);
:data:`CUSTOM_SCOPES` and :func:`bearer_token_roles` are the hub config that
lets users and their servers read it.
"""

from __future__ import annotations

import time

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.scopes import has_scope
from tornado import web

from jhub_af.hub import server_role

from .provider import IdPUnreachable

BEARER_TOKEN_SCOPE = "custom:jhub-af:bearer-token"  # noqa: S105 (a scope name)
BEARER_TOKEN_ROUTE = r"/api/jhub-af/users/([^/]+)/bearer-token"  # noqa: S105 (a URL)

CUSTOM_SCOPES = {
    BEARER_TOKEN_SCOPE: {
        "description": "Read the user's current IAM access token (not the refresh token).",
    }
}


def bearer_token_roles() -> list[dict]:
    """The ``user`` and ``server`` roles that let users and their servers read their
    own access token (the server keeping JupyterHub's default scopes).

    Returns role dicts to merge into ``c.JupyterHub.load_roles`` with
    :func:`jhub_af.hub.add_roles`; the hub config also sets
    ``c.JupyterHub.custom_scopes`` to :data:`CUSTOM_SCOPES`. Called by the demo's
    ``login`` part and by facility configs that use IAM.
    """
    own = f"{BEARER_TOKEN_SCOPE}!user"
    return [{"name": "user", "scopes": ["self", own]}, server_role([own])]


class BearerTokenHandler(APIHandler):
    """``GET /hub/api/jhub-af/users/{name}/bearer-token``: one user's access token, fresh.

    Answers tokens holding ``custom:jhub-af:bearer-token!user={name}`` (404 for any
    other, as for a user that does not exist) with ``access_token``, ``token_type``
    and ``expires_at`` only: the refresh token and the client secret stay in the
    hub. A token close to expiry is refreshed first; 401 when the IAM session has
    ended, 503 when IAM cannot be reached and the token has run out. Mounted by
    IAMAuthenticator, whose ``refreshed_auth_model`` it uses.
    """

    async def refresh_auth(self, user, force=False):
        """Return ``user`` as is: no periodic auth refresh on this route (:meth:`get`
        refreshes the token itself). Called by JupyterHub's ``get_current_user``."""
        # This handler refreshes the access token itself and says what failed (401 when
        # the session ended, 503 when IAM is down). JupyterHub 6 lets a token request
        # through when the periodic auth refresh fails; JupyterHub 5 drops its user,
        # which would answer a bare 403 instead: skip that refresh here on both.
        return user

    async def get(self, user_name):
        """Called by tornado for the route; ``user_name`` from the URL."""
        if not self.current_user:
            raise web.HTTPError(403, "Missing or invalid credentials.")
        if not has_scope(f"{BEARER_TOKEN_SCOPE}!user={user_name}", self.parsed_scopes, db=self.db):
            # the same answer as for a user that does not exist
            raise web.HTTPError(404, "No access to resources or resources not found")
        user = self.find_user(user_name)
        if user is None:
            raise web.HTTPError(404, "No access to resources or resources not found")
        authenticator = self.authenticator
        state = await user.get_auth_state()
        if not state or not state.get("access_token"):
            raise web.HTTPError(
                404, "No IAM token for this user: they did not sign in through IAM."
            )
        remaining = state.get("expires_at", 0) - time.time()
        if remaining < authenticator.access_token_min_ttl:
            try:
                model = await authenticator.refreshed_auth_model(user, state)
            except IdPUnreachable as e:
                if remaining <= 0:
                    raise web.HTTPError(
                        503,
                        "IAM cannot be reached to renew your token. It is retried "
                        "automatically; if this lasts, tell the facility's admins.",
                    ) from e
                model = True  # the current token still works for a while
            if model is None:
                raise web.HTTPError(
                    401,
                    "Your IAM session has ended (the token could not be refreshed). "
                    "Sign in to the hub again to get a new token.",
                )
            if isinstance(model, dict):
                await self.auth_to_user(model, user)
                state = await user.get_auth_state()
        self.set_header("Cache-Control", "no-store")
        self.write(
            {
                "access_token": state["access_token"],
                "token_type": "Bearer",
                "expires_at": state.get("expires_at"),
            }
        )
