"""The two ways into the user's server: a Jupyter terminal, and jhub_af's binary channel.

- :class:`TerminalBridge`: interactive shells, over jupyter-server's terminals API;
- :class:`ChannelBridge`: commands and SFTP, over the channel whose protocol
  ``jhub_af.lab`` defines (``ChannelFrame``, ``ChannelRequest``, ...).
"""

from __future__ import annotations

import codecs
import contextlib
import json
from collections.abc import Awaitable, Callable

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from jhub_af.lab import (
    CHANNEL_ROUTE,
    EOF_FRAME,
    TERMINAL_EXIT_ROUTE,
    ChannelFrame,
    ChannelRequest,
    data_frame,
    is_pty_size,
    parse_channel_end,
    parse_terminal_exit,
    resize_frame,
)

from .hub import HubError

Output = Callable[[bytes], Awaitable[None]]
UNKNOWN_EXIT_STATUS = 255  # what OpenSSH reports when it cannot know
MAX_MESSAGE_SIZE = 16 * 1024 * 1024


async def _connect(url: str, token: str, timeout: float) -> WebSocketClientConnection:
    request = HTTPRequest(
        url.replace("http", "ws", 1),
        headers={"Authorization": f"token {token}"},
        request_timeout=timeout,
    )
    try:
        return await websocket_connect(request, max_message_size=MAX_MESSAGE_SIZE)
    except HTTPClientError as e:
        raise HubError(_refusal_sentence(e.code, "open a session in your server")) from e


def _refusal_sentence(code: int, what: str) -> str:
    """What the user is told when the server answers HTTP ``code`` to ``what``."""
    if code == 403:
        return f"Your token may not {what} (HTTP 403)."
    if code == 404:
        return f"Cannot {what}: jhub_af is not installed in your server's image (HTTP 404)."
    return f"Cannot {what} (HTTP {code})."


class TerminalBridge:
    """An interactive shell in a new Jupyter terminal of the user's server.

    The terminal websocket carries terminado's JSON text (``["stdin", ...]``,
    ``["stdout", ...]``, ``["set_size", rows, cols]``); the shell's exit status comes
    from jhub_af's extension (``TERMINAL_EXIT_ROUTE``), since terminado never sends it.
    Used by af-ssh's ``Session`` in the order open, run (with send/resize), close.
    """

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
        """Create a terminal and connect to it at this size; raises HubError if refused."""
        try:
            response = await self._rest("POST", "/api/terminals", body="{}")
        except HTTPClientError as e:
            raise HubError(_refusal_sentence(e.code, "open a terminal in your server")) from e
        self.name = json.loads(response.body)["name"]
        url = f"{self.server_url}/terminals/websocket/{self.name}"
        self.ws = await _connect(url, self.token, self.timeout)
        await self.resize(cols, rows)

    async def resize(self, cols: int, rows: int) -> None:
        """Tell the terminal its new size; sizes of zero (unknown) are not sent."""
        if self.ws is not None and cols > 0 and rows > 0:
            await self.ws.write_message(json.dumps(["set_size", rows, cols]))

    async def send(self, data: bytes) -> None:
        """Type ``data`` (UTF-8, possibly cut mid-character) into the terminal."""
        text = self._decoder.decode(data)
        if text and self.ws is not None:
            await self.ws.write_message(json.dumps(["stdin", text]))

    async def run(self, out: Output) -> int:
        """Copy the terminal's output to ``out`` until its shell exits; return its status."""
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
        """The ended shell's exit status, or 255 when the server cannot say."""
        path = TERMINAL_EXIT_ROUTE.format(name=self.name)
        try:
            response = await self._rest("GET", path)
        except (HTTPClientError, OSError):
            return UNKNOWN_EXIT_STATUS
        return parse_terminal_exit(response.body)

    async def close(self) -> None:
        """Disconnect and delete the terminal (errors ignored: it may be gone already)."""
        if self.ws is not None:
            self.ws.close()
        if self.name is not None:
            with contextlib.suppress(HTTPClientError, OSError):
                await self._rest("DELETE", f"/api/terminals/{self.name}")


class ChannelBridge:
    """A command or SFTP over jhub_af's binary channel in the user's server.

    Used by af-ssh's ``Session`` in the order open, run (with send/resize/send_eof),
    close.
    """

    def __init__(self, server_url: str, token: str, timeout: float = 30):
        self.url = server_url.rstrip("/") + CHANNEL_ROUTE
        self.token = token
        self.timeout = timeout
        self.ws: WebSocketClientConnection | None = None

    async def open(self, request: ChannelRequest) -> None:
        """Connect and send ``request``; raises HubError if the server refuses the connection."""
        self.ws = await _connect(self.url, self.token, self.timeout)
        await self.ws.write_message(request.to_message())

    async def send(self, data: bytes) -> None:
        """Send ``data`` to the command's stdin."""
        await self.ws.write_message(data_frame(ChannelFrame.STDIN, data), binary=True)

    async def resize(self, cols: int, rows: int) -> None:
        """Resize the command's pty (``ssh -t host CMD``); sizes out of range are not sent."""
        if is_pty_size([cols, rows]):
            await self.ws.write_message(resize_frame(cols, rows), binary=True)

    async def send_eof(self) -> None:
        """Close the command's stdin (errors ignored: the channel may be closing)."""
        with contextlib.suppress(Exception):
            await self.ws.write_message(EOF_FRAME, binary=True)

    async def run(self, out: Output, err: Output) -> tuple[int | None, str | None]:
        """Copy stdout to ``out`` and stderr to ``err`` until the end.

        Returns (exit status, exit signal): (None, "PIPE") if the server went away,
        (1, None) after writing a refusal to ``err``.
        """
        while True:
            message = await self.ws.read_message()
            if message is None:
                return None, "PIPE"  # the server went away
            if isinstance(message, bytes):
                stream = message[0] if message else None
                if stream == ChannelFrame.STDOUT:
                    await out(message[1:])
                elif stream == ChannelFrame.STDERR:
                    await err(message[1:])
                continue
            end = parse_channel_end(message)
            if end.error is not None:
                await err(f"af-ssh: {end.error}\r\n".encode())
                return 1, None
            return end.exit_status, end.exit_signal

    def close(self) -> None:
        """Close the websocket; the server then ends the command."""
        if self.ws is not None:
            self.ws.close()
