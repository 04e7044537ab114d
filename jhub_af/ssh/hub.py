"""af-ssh's calls to the hub's REST API, always with the token the user logged in with."""

from __future__ import annotations

import json
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from jhub_af.hub import spawn_body


class HubError(Exception):
    """The hub refused or failed; the message is for the person at the ssh prompt."""


class HubClient:
    def __init__(self, api_url: str, timeout: float = 30):
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self._version: str | None = None

    async def _call(self, token: str, method: str, path: str, body=None, **kwargs):
        request = HTTPRequest(
            f"{self.api_url}{path}",
            method=method,
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
            body=None if body is None else json.dumps(body),
            request_timeout=kwargs.pop("request_timeout", self.timeout),
            **kwargs,
        )
        return await AsyncHTTPClient().fetch(request)

    async def identify(self, token: str) -> dict | None:
        """The token's owner (``GET /user``: name, kind, admin, scopes), or None."""
        try:
            response = await self._call(token, "GET", "/user")
        except HTTPClientError as e:
            if e.code in (401, 403, 404):
                return None
            raise HubError(f"The hub answered HTTP {e.code}") from e
        return json.loads(response.body)

    async def version(self, token: str) -> str:
        if self._version is None:
            response = await self._call(token, "GET", "/")
            self._version = json.loads(response.body)["version"]
        return self._version

    async def user(self, token: str, name: str) -> dict:
        try:
            response = await self._call(token, "GET", f"/users/{quote(name, safe='')}")
        except HTTPClientError as e:
            raise HubError(f"Cannot read the state of {name}'s server (HTTP {e.code}).") from e
        return json.loads(response.body)

    async def start(self, token: str, name: str, options: dict) -> None:
        body = spawn_body(options, await self.version(token))
        try:
            await self._call(token, "POST", f"/users/{quote(name, safe='')}/server", body)
        except HTTPClientError as e:
            raise HubError(_refusal(e, "Your server could not be started")) from e

    async def progress(self, token: str, name: str, on_event, timeout: float) -> None:
        """Follow the spawn's progress events (server-sent events) until it ends."""
        buffer = b""

        def on_chunk(chunk: bytes) -> None:
            nonlocal buffer
            buffer += chunk
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                for line in event.splitlines():
                    if line.startswith(b"data:"):
                        on_event(json.loads(line[5:]))

        try:
            await self._call(
                token,
                "GET",
                f"/users/{quote(name, safe='')}/server/progress",
                streaming_callback=on_chunk,
                request_timeout=timeout,
            )
        except HTTPClientError as e:
            raise HubError(_refusal(e, "Lost the progress of your server's start")) from e


def _refusal(error: HTTPClientError, what: str) -> str:
    message = ""
    if error.response is not None and error.response.body:
        try:
            message = json.loads(error.response.body).get("message", "")
        except (ValueError, AttributeError):
            message = ""
    return f"{what}: {message}" if message else f"{what} (HTTP {error.code})."
