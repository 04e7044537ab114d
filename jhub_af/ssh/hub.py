"""af-ssh's calls to the hub's REST API, always with the token the user logged in with."""

from __future__ import annotations

import json
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from jhub_af.hub import spawn_body


class HubError(Exception):
    """The hub refused or failed; the message is for the person at the ssh prompt."""


class HubClient:
    """The hub's REST API at ``api_url``; every call takes the token to act with.

    Raises :class:`HubError` with a sentence for the user when the hub refuses.
    """

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
        """The token's owner (``GET /user``: name, kind, admin, scopes), or None.

        None when the hub does not know the token (401, 403, 404); raises HubError for
        other HTTP errors, OSError when the hub cannot be reached. Called by
        :meth:`jhub_af.ssh.login.LoginChecker.check`.
        """
        try:
            response = await self._call(token, "GET", "/user")
        except HTTPClientError as e:
            if e.code in (401, 403, 404):
                return None
            raise HubError(f"The hub answered HTTP {e.code}") from e
        return json.loads(response.body)

    async def version(self, token: str) -> str:
        """The hub's version (``GET /``), asked once and remembered."""
        if self._version is None:
            response = await self._call(token, "GET", "/")
            self._version = json.loads(response.body)["version"]
        return self._version

    async def user(self, token: str, name: str) -> dict:
        """The user's model (``GET /users/NAME``: servers, pending); raises HubError."""
        try:
            response = await self._call(token, "GET", f"/users/{quote(name, safe='')}")
        except HTTPClientError as e:
            raise HubError(f"Cannot read the state of {name}'s server (HTTP {e.code}).") from e
        return json.loads(response.body)

    async def start(self, token: str, name: str, options: dict) -> None:
        """Ask the hub to start the user's default server with ``options``.

        The body is shaped for the hub's version (``jhub_af.hub.spawn_body``). Raises
        HubError with the hub's own message when it refuses (e.g. a quota).
        """
        body = spawn_body(options, await self.version(token))
        try:
            await self._call(token, "POST", f"/users/{quote(name, safe='')}/server", body)
        except HTTPClientError as e:
            raise HubError(_refusal(e, "Your server could not be started")) from e

    async def progress(self, token: str, name: str, on_event, timeout: float) -> None:
        """Call ``on_event(event)`` for each progress event of the spawn until it ends.

        Events are JupyterHub's (``progress``, ``message``, ``failed``, ``ready``).
        Raises HubError if the stream is refused or cut, including after ``timeout``
        seconds. Called by :func:`jhub_af.ssh.starting.server_url`.
        """
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
    """``what``, followed by the hub's JSON ``message`` when it gave one, else the code."""
    message = ""
    if error.response is not None and error.response.body:
        try:
            message = json.loads(error.response.body).get("message", "")
        except (ValueError, AttributeError):
            message = ""
    return f"{what}: {message}" if message else f"{what} (HTTP {error.code})."
