"""The two ways into the user's server: a Jupyter terminal, and jhub_af's binary channel.

- :class:`TerminalBridge`: the jupyter-server terminals REST API and websocket,
  for interactive shells. The websocket carries text (JSON ``["stdin", ...]``,
  ``["stdout", ...]``, ``["set_size", rows, cols]``); the shell's exit status
  comes from jhub_af's server extension, since terminado never sends it.
- :class:`ChannelBridge`: the binary websocket of :mod:`jhub_af.lab.ssh_channel`,
  for commands and SFTP (bytes both ways, stdout and stderr apart, exit status).
"""

from __future__ import annotations

import codecs
import contextlib
import json
import struct
from collections.abc import Awaitable, Callable

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from .hub import HubError

Output = Callable[[bytes], Awaitable[None]]
STDIN, STDOUT, STDERR, STDIN_EOF, RESIZE = 0, 1, 2, 3, 4


async def _connect(url: str, token: str, timeout: float) -> WebSocketClientConnection:
    request = HTTPRequest(
        url.replace("http", "ws", 1),
        headers={"Authorization": f"token {token}"},
        request_timeout=timeout,
    )
    try:
        return await websocket_connect(request, max_message_size=16 * 1024 * 1024)
    except HTTPClientError as e:
        raise HubError(_explain(e.code, "open a session in your server")) from e


def _explain(code: int, what: str) -> str:
    if code == 403:
        return f"Your token may not {what} (HTTP 403)."
    if code == 404:
        return f"Cannot {what}: jhub_af is not installed in your server's image (HTTP 404)."
    return f"Cannot {what} (HTTP {code})."


class TerminalBridge:
    """An interactive shell in a new Jupyter terminal of the user's server."""

    def __init__(self, server_url: str, token: str, timeout: float = 30):
        self.server_url = server_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.name: str | None = None
        self.ws: WebSocketClientConnection | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    async def _rest(self, method: str, path: str, body=None):
        request = HTTPRequest(
            f"{self.server_url}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
            body=body,
            request_timeout=self.timeout,
        )
        return await AsyncHTTPClient().fetch(request)

    async def open(self, cols: int, rows: int) -> None:
        try:
            response = await self._rest("POST", "/api/terminals", body="{}")
        except HTTPClientError as e:
            raise HubError(_explain(e.code, "open a terminal in your server")) from e
        self.name = json.loads(response.body)["name"]
        url = f"{self.server_url}/terminals/websocket/{self.name}"
        self.ws = await _connect(url, self.token, self.timeout)
        await self.resize(cols, rows)

    async def resize(self, cols: int, rows: int) -> None:
        if self.ws is not None and cols > 0 and rows > 0:
            await self.ws.write_message(json.dumps(["set_size", rows, cols]))

    async def send(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if text and self.ws is not None:
            await self.ws.write_message(json.dumps(["stdin", text]))

    async def run(self, out: Output) -> int:
        """Copy the terminal's output until its shell exits; return the exit status."""
        while True:
            raw = await self.ws.read_message()
            if raw is None:
                break
            message = json.loads(raw)
            if message[0] == "stdout":
                await out(message[1].encode("utf-8"))
            elif message[0] == "disconnect":
                break
        return await self.exit_status()

    async def exit_status(self) -> int:
        try:
            response = await self._rest("GET", f"/jhub-af/ssh/terminals/{self.name}/exit")
        except (HTTPClientError, OSError):
            return 255  # like OpenSSH when the status is unknown
        return int(json.loads(response.body)["exit_status"])

    async def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
        if self.name is not None:
            with contextlib.suppress(HTTPClientError, OSError):
                await self._rest("DELETE", f"/api/terminals/{self.name}")


class ChannelBridge:
    """A command or SFTP over jhub_af's binary channel in the user's server."""

    def __init__(self, server_url: str, token: str, timeout: float = 30):
        self.url = f"{server_url.rstrip('/')}/jhub-af/ssh/channel"
        self.token = token
        self.timeout = timeout
        self.ws: WebSocketClientConnection | None = None

    async def open(self, request: dict) -> None:
        self.ws = await _connect(self.url, self.token, self.timeout)
        await self.ws.write_message(json.dumps(request))

    async def send(self, data: bytes) -> None:
        await self.ws.write_message(bytes([STDIN]) + data, binary=True)

    async def resize(self, cols: int, rows: int) -> None:
        """For a command on a pty (``ssh -t host CMD``)."""
        if 1 <= cols <= 1000 and 1 <= rows <= 1000:
            await self.ws.write_message(bytes([RESIZE]) + struct.pack(">HH", cols, rows), True)

    async def send_eof(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.write_message(bytes([STDIN_EOF]), binary=True)

    async def run(self, out: Output, err: Output) -> tuple[int | None, str | None]:
        """Copy stdout and stderr until the end; return (exit status, exit signal)."""
        while True:
            message = await self.ws.read_message()
            if message is None:
                return None, "PIPE"  # the server went away
            if isinstance(message, bytes):
                if message[:1] == bytes([STDOUT]):
                    await out(message[1:])
                elif message[:1] == bytes([STDERR]):
                    await err(message[1:])
                continue
            end = json.loads(message)
            if "error" in end:
                await err(f"af-ssh: {end['error']}\r\n".encode())
                return 1, None
            return end.get("exit_status"), end.get("exit_signal")

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
