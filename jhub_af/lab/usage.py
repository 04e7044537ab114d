"""The Usage tab of the JupyterLab panel: my quotas and my usage this period.

:class:`PanelUsage` asks af-accounting, :class:`UsageHandler` answers
``GET {base_url}jhub-af/usage``, :func:`usage_handlers` routes it. The hub's side is
:func:`jhub_af.lab.hubconfig.usage_hub_config`.
"""

from __future__ import annotations

import json
import os

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Float, Unicode, default
from traitlets.config import LoggingConfigurable

from .api import PanelError, PanelHandler, panel_api
from .hubconfig import ACCOUNTING_URL_ENV as ENV_URL

ACCOUNTING_DOWN = (
    "af-accounting (the facility's usage service) cannot be reached right now. Your "
    "servers and clusters are not affected; try again in a minute."
)
NOT_CONFIGURED = (
    "This notebook server does not know where af-accounting is (JHUB_AF_ACCOUNTING_URL is "
    "not set). Restart your server from the hub's home page; if that does not help, tell "
    "the facility's admins."
)
REFUSED = (
    "af-accounting refused this notebook server's token ({detail}). Save your work, then "
    "stop and start your server from the hub's home page (File > Hub Control Panel); if "
    "that does not help, tell the facility's admins."
)


class PanelUsage(LoggingConfigurable):
    """Reads the user's usage and policy from af-accounting for the Usage tab, with the
    notebook server's own token (never a browser's credentials); af-accounting
    decides what the token may read."""

    accounting_url = Unicode(
        config=True,
        help="""
        af-accounting's API, as this notebook server reaches it, e.g.
        ``http://127.0.0.1:10101/services/af-accounting/api/v1/``. Default: the
        ``JHUB_AF_ACCOUNTING_URL`` environment variable, which
        :func:`jhub_af.lab.usage_hub_config` sets in every spawned server.
        Empty: the Usage tab says that the server does not know the service.
        """,
    )

    @default("accounting_url")
    def _default_url(self):
        return os.environ.get(ENV_URL, "")

    api_token = Unicode(
        config=True,
        help="""
        The token sent to af-accounting. Default: this server's own
        ``JUPYTERHUB_API_TOKEN`` (its ``server`` role must include
        ``access:services!service=af-accounting``). Never logged or shown.
        """,
    )

    @default("api_token")
    def _default_token(self):
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    timeout = Float(
        10.0,
        config=True,
        help="Seconds to wait for af-accounting before saying it is down. Default 10.",
    )

    async def _get(self, path: str) -> dict:
        """af-accounting's JSON answer at ``path``; :class:`PanelError` 503 (not
        configured, or down), 401 (the token refused) or 502 (a wrong answer)."""
        if not self.accounting_url:
            raise PanelError(503, NOT_CONFIGURED)
        url = self.accounting_url.rstrip("/") + "/" + path
        req = HTTPRequest(
            url,
            headers={"Authorization": f"token {self.api_token}"},
            request_timeout=self.timeout,
            follow_redirects=False,
        )
        try:
            r = await AsyncHTTPClient().fetch(req)
        except HTTPClientError as e:
            detail = _error_of(e)
            if e.code in (401, 403):
                raise PanelError(401, REFUSED.format(detail=detail or f"HTTP {e.code}")) from None
            if e.code == 599 or e.code >= 502:
                raise PanelError(503, ACCOUNTING_DOWN) from None
            raise PanelError(502, f"af-accounting answered: {detail or e.code}") from None
        except (OSError, TimeoutError):
            raise PanelError(503, ACCOUNTING_DOWN) from None
        try:
            return json.loads(r.body)
        except ValueError:
            raise PanelError(502, "af-accounting answered something that is not JSON.") from None

    async def report(self) -> dict:
        """``{"usage": ..., "policy": ...}``: af-accounting's ``usage/me`` (this period's
        core-hours, GPU-hours, what runs now) and ``policy/me`` (the limits that apply
        and where each comes from, and ``remaining``). Raises :class:`PanelError`.
        Called by :class:`UsageHandler`."""
        return {"usage": await self._get("usage/me"), "policy": await self._get("policy/me")}


def _error_of(e: HTTPClientError) -> str:
    """af-accounting's own ``{"error": sentence}`` in a refusal, or ``""``."""
    try:
        return str(json.loads(e.response.body)["error"])[:300]
    except Exception:
        return ""


class UsageHandler(PanelHandler):
    """``GET {base_url}jhub-af/usage``, authorized as ``jhub-af:usage``."""

    auth_resource = "jhub-af:usage"

    def initialize(self, usage: PanelUsage):
        """Keep ``usage``, the one given by :func:`usage_handlers`. Called by tornado
        for each request."""
        self.usage = usage

    @panel_api
    async def get(self):
        """The user's :meth:`PanelUsage.report`."""
        self.answer(await self.usage.report())


def usage_handlers(serverapp) -> list[tuple]:
    """The Usage tab's route for ``serverapp.web_app.add_handlers``, with one
    :class:`PanelUsage` configured from ``serverapp``. Called by ``jhub_af.lab``."""
    route = serverapp.base_url.rstrip("/") + "/jhub-af/usage"
    return [(route, UsageHandler, {"usage": PanelUsage(parent=serverapp)})]
