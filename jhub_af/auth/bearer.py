"""Hand a user's current IAM access token to their own notebook server, and nothing more.

The hub serves ``GET /hub/api/jhub-af/users/{name}/bearer-token`` to tokens
holding the custom scope ``custom:jhub-af:bearer-token!user={name}``. It
refreshes the access token first when it is close to expiry, and answers only
the access token and its expiry: the refresh token and the client secret stay
in the hub. ``bearer_token_roles`` gives that scope to users and their servers.
"""

from __future__ import annotations

import time

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.scopes import has_scope
from tornado import web

from .provider import IdPUnreachable

BEARER_TOKEN_SCOPE = "custom:jhub-af:bearer-token"  # noqa: S105 (a scope name)
BEARER_TOKEN_ROUTE = r"/api/jhub-af/users/([^/]+)/bearer-token"  # noqa: S105 (a URL)

CUSTOM_SCOPES = {
    BEARER_TOKEN_SCOPE: {
        "description": "Read the user's current IAM access token (not the refresh token).",
    }
}


def bearer_token_roles() -> list[dict]:
    """Role definitions that let users and their servers read their own access token.

    Merge them into ``c.JupyterHub.load_roles`` and set
    ``c.JupyterHub.custom_scopes`` to :data:`CUSTOM_SCOPES`.
    """
    own = f"{BEARER_TOKEN_SCOPE}!user"
    return [
        {"name": "user", "scopes": ["self", own]},
        {"name": "server", "scopes": ["users:activity!user", "access:servers!server", own]},
    ]


class BearerTokenHandler(APIHandler):
    """The access token of one user, fresh, for that user's own server.

    Mounted by IAMAuthenticator, whose ``refreshed_auth_model`` it uses.
    """

    async def refresh_auth(self, user, force=False):
        # This handler refreshes the access token itself and says what failed (401 when
        # the session ended, 503 when IAM is down). JupyterHub 6 lets a token request
        # through when the periodic auth refresh fails; JupyterHub 5 drops its user,
        # which would answer a bare 403 instead: skip that refresh here on both.
        return user

    async def get(self, user_name):
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
