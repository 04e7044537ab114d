"""JupyterHub authentication for the gateway, with clear refusals.

dask-gateway-server's ``JupyterHubAuthenticator`` answers 500 when the hub refuses a
token (the hub says 403 for an unknown or expired token). A bad token is the
caller's problem, so :class:`HubAuthenticator` answers 401 with a sentence instead.
"""

from __future__ import annotations

from aiohttp import web
from dask_gateway_server.auth import JupyterHubAuthenticator

NOT_ACCEPTED = (
    "Your JupyterHub token was not accepted (unknown, expired, or without access to "
    "the Dask Gateway). From a notebook on the hub, Gateway() uses the right one; "
    "elsewhere, make a token on the hub's Token page."
)


class HubAuthenticator(JupyterHubAuthenticator):
    """``JupyterHubAuthenticator`` that answers 401 for a token the hub refuses.

    Named in the gateway's config as
    ``c.DaskGateway.authenticator_class = "jhub_af.gateway.auth.HubAuthenticator"``.
    """

    async def authenticate(self, request):
        """The user the hub says ``request``'s token belongs to (a dask-gateway
        ``User``); raises ``HTTPUnauthorized`` with :data:`NOT_ACCEPTED` when the hub
        refuses the token or there is none. Called by dask-gateway-server for every
        API request without a valid gateway cookie."""
        try:
            return await super().authenticate(request)
        except (web.HTTPInternalServerError, web.HTTPUnauthorized):
            raise web.HTTPUnauthorized(
                headers={"WWW-Authenticate": "jupyterhub"}, reason=NOT_ACCEPTED
            ) from None
