"""What the accounting service asks the hub (:class:`HubAPI`): a user's groups and admin
flag, whether a group exists, and which servers run."""

from __future__ import annotations

import json
import time
from datetime import datetime
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .ledger import Running


class HubUnavailable(Exception):
    """The hub's API did not answer (or answered an error other than 404)."""


def _epoch(iso: str | None) -> float:
    if not iso:
        return time.time()
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class HubAPI:
    """The hub's REST API, with the service's own token (``$JUPYTERHUB_API_TOKEN``),
    whose role needs only ``list:users``, ``read:users``, ``read:servers``,
    ``list:groups`` and ``read:groups:name``. Names and groups in requests are
    checked here against the hub itself, never taken from a request body. Answers
    are cached for ``cache_seconds``. Methods raise :class:`HubUnavailable`."""

    def __init__(self, api_url: str, token: str, cache_seconds: float = 30.0):
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, object]] = {}
        # its own client: tornado's shared one allows 10 requests in flight
        self.client = AsyncHTTPClient(force_instance=True, max_clients=64)

    async def _get(self, path: str, **params):
        url = f"{self.api_url}{path}"
        if params:
            url += "?" + urlencode(params)
        request = HTTPRequest(
            url,
            headers={
                "Authorization": f"token {self._token}",
                "Accept": "application/jupyterhub-pagination+json",
            },
            request_timeout=20,
        )
        try:
            response = await self.client.fetch(request)
        except HTTPClientError as e:
            if e.code == 404:
                return None
            raise HubUnavailable(f"hub API {path}: HTTP {e.code}") from None
        except OSError as e:
            raise HubUnavailable(f"hub API {path}: {e}") from None
        return json.loads(response.body)

    async def _cached(self, key: str, fetch):
        hit = self._cache.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        value = await fetch()
        if value is None:
            return None  # a user who does not exist yet may sign in a second later
        self._cache[key] = (time.monotonic() + self.cache_seconds, value)
        return value

    async def user(self, name: str) -> dict | None:
        """The hub's model of a user (name, groups, admin), or None if there is no such user."""
        return await self._cached(
            f"user:{name}", lambda: self._get(f"/users/{quote(name, safe='')}")
        )

    async def group_exists(self, name: str) -> bool:
        """Whether the hub has a group ``name`` (cached). Called by ``usage/groups/{group}``."""
        model = await self._cached(
            f"group:{name}", lambda: self._get(f"/groups/{quote(name, safe='')}")
        )
        return model is not None

    async def running_servers(self) -> list[Running]:
        """Every server the hub has running or starting, with its owner's groups."""
        out: list[Running] = []
        offset = 0
        while True:
            page = await self._get("/users", state="active", offset=offset, limit=200)
            items = page.get("items", []) if isinstance(page, dict) else (page or [])
            for user in items:
                for name, server in (user.get("servers") or {}).items():
                    out.append(
                        Running(
                            user=user["name"],
                            server=name,
                            started=_epoch(server.get("started")),
                            groups=tuple(user.get("groups") or ()),
                            ready=bool(server.get("ready")) and server.get("pending") != "spawn",
                        )
                    )
            nxt = page.get("_pagination", {}).get("next") if isinstance(page, dict) else None
            if not nxt:
                return out
            offset = nxt["offset"]
