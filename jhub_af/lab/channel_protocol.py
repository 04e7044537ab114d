"""af-ssh's wire protocol with the user's server, defined once for both sides.

The server side is :mod:`.ssh_channel` and :mod:`.terminal_exit` (served by this
extension); the client side is ``jhub_af.ssh``'s bridges, which import these names
from ``jhub_af.lab``. Standard library only: af-ssh loads no jupyter-server.

- Routes, under the server's base URL: :data:`CHANNEL_ROUTE` (a websocket) and
  :data:`TERMINAL_EXIT_ROUTE` (``GET`` -> ``{"exit_status": N}``).
- A channel opens with one JSON text message, a :class:`ChannelRequest`.
- Then binary frames: one :class:`ChannelFrame` byte, then the payload.
- It ends with one JSON text message: :func:`exit_message` or :func:`error_message`,
  read back by :func:`parse_channel_end`.
"""

from __future__ import annotations

import json
import signal
import struct
from dataclasses import dataclass
from enum import IntEnum

CHANNEL_ROUTE = "/jhub-af/ssh/channel"
TERMINAL_EXIT_ROUTE = "/jhub-af/ssh/terminals/{name}/exit"
REQUEST_KINDS = ("exec", "sftp")
MAX_PTY_SIDE = 1000  # columns or rows; more is a mistake, not a screen
_SIZE = struct.Struct(">HH")  # a resize frame's payload: cols, rows


class ChannelFrame(IntEnum):
    """The first byte of a binary frame: which stream its payload belongs to."""

    STDIN = 0  # client -> server
    STDOUT = 1  # server -> client
    STDERR = 2  # server -> client
    STDIN_EOF = 3  # client -> server, alone: close the command's stdin
    RESIZE = 4  # client -> server, + cols, rows (big-endian 16-bit): resize the pty


EOF_FRAME = bytes([ChannelFrame.STDIN_EOF])


def data_frame(stream: ChannelFrame, data: bytes) -> bytes:
    """The frame carrying ``data`` on ``stream`` (STDIN, STDOUT or STDERR): one byte + data.

    Called by af-ssh's ``ChannelBridge.send`` and by ``SSHChannelHandler`` for output.
    """
    return bytes((stream,)) + data


def is_pty_size(size) -> bool:
    """True if ``size`` is ``[cols, rows]``: a list of two ints, each 1 to MAX_PTY_SIDE.

    Called on both sides before a size is sent or applied; bools are not sizes.
    """
    return (
        isinstance(size, list)
        and len(size) == 2
        and all(
            isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX_PTY_SIDE for n in size
        )
    )


def clamp_pty_size(cols: int, rows: int) -> list[int]:
    """``[cols, rows]`` brought within 1..MAX_PTY_SIDE (an ssh client may say 0 or 5000)."""
    return [min(max(n, 1), MAX_PTY_SIDE) for n in (cols, rows)]


def resize_frame(cols: int, rows: int) -> bytes:
    """The RESIZE frame: five bytes. Raises ValueError unless ``is_pty_size([cols, rows])``.

    Called by af-ssh's ``ChannelBridge.resize`` (``ssh -t host CMD``).
    """
    if not is_pty_size([cols, rows]):
        raise ValueError(f"not a pty size: {cols}x{rows}")
    return bytes([ChannelFrame.RESIZE]) + _SIZE.pack(cols, rows)


def parse_resize_frame(frame: bytes) -> tuple[int, int] | None:
    """(cols, rows) from a RESIZE frame, or None if it is not a well-formed one.

    Called by ``SSHChannelHandler``, which ignores a frame this refuses.
    """
    if len(frame) != 1 + _SIZE.size or frame[0] != ChannelFrame.RESIZE:
        return None
    cols, rows = _SIZE.unpack(frame[1:])
    return (cols, rows) if is_pty_size([cols, rows]) else None


class BadChannelRequest(ValueError):
    """The channel's first message is not a request; ``str(e)`` is the refusal sent."""


@dataclass(frozen=True)
class ChannelRequest:
    """What a channel runs: a command (``exec``) or the SFTP server (``sftp``).

    ``term`` is the client's TERM; ``pty`` (``[cols, rows]``, exec only) runs the
    command on a pseudo-terminal of that size, as ``ssh -t host CMD`` asks.
    """

    kind: str
    command: str | None = None
    term: str | None = None
    pty: list[int] | None = None

    def to_message(self) -> str:
        """The JSON text af-ssh sends first, e.g. ``{"kind": "exec", "command": "ls"}``."""
        fields = {"kind": self.kind, "command": self.command, "term": self.term, "pty": self.pty}
        return json.dumps({k: v for k, v in fields.items() if v is not None})


def parse_channel_request(message) -> ChannelRequest:
    """The request in the channel's first message (text); raises BadChannelRequest.

    A ``term`` that is not short printable text is dropped, not refused. Called by
    ``SSHChannelHandler`` on the first message.
    """
    try:
        request = json.loads(message) if isinstance(message, str) else None
    except ValueError:
        request = None
    if not isinstance(request, dict) or request.get("kind") not in REQUEST_KINDS:
        raise BadChannelRequest('The first message must be {"kind": "exec"|"sftp", ...}.')
    term = request.get("term")
    if not (isinstance(term, str) and term.isprintable() and len(term) < 64):
        term = None
    if request["kind"] == "sftp":
        return ChannelRequest("sftp", term=term)
    command = request.get("command")
    if not isinstance(command, str) or not command or "\0" in command:
        raise BadChannelRequest("The command must be non-empty text.")
    size = request.get("pty")
    if size is not None and not is_pty_size(size):
        raise BadChannelRequest(f"pty must be [cols, rows], each from 1 to {MAX_PTY_SIDE}.")
    return ChannelRequest("exec", command, term, size)


def exit_message(returncode: int) -> str:
    """The channel's last message for a process that ended with ``returncode``.

    ``{"exit_status": N}``, or ``{"exit_signal": "KILL"}`` for a negative returncode
    (asyncio's "killed by that signal"). Called by ``SSHChannelHandler``.
    """
    if returncode < 0:
        return json.dumps({"exit_signal": signal.Signals(-returncode).name.removeprefix("SIG")})
    return json.dumps({"exit_status": returncode})


def error_message(sentence: str) -> str:
    """The channel's last message when it refuses a request: ``{"error": sentence}``."""
    return json.dumps({"error": sentence})


@dataclass(frozen=True)
class ChannelEnd:
    """How a channel ended: an exit status, a signal name, or a refusal's sentence."""

    exit_status: int | None = None
    exit_signal: str | None = None
    error: str | None = None


def parse_channel_end(message: str) -> ChannelEnd:
    """The :class:`ChannelEnd` in the channel's last (text) message.

    Raises ValueError if it is not JSON (the server sends only the two shapes above).
    Called by af-ssh's ``ChannelBridge.run``.
    """
    end = json.loads(message)
    if "error" in end:
        return ChannelEnd(error=str(end["error"]))
    return ChannelEnd(end.get("exit_status"), end.get("exit_signal"))


def terminal_exit_body(status: int) -> str:
    """The answer of :data:`TERMINAL_EXIT_ROUTE`: ``{"exit_status": N}``."""
    return json.dumps({"exit_status": status})


def parse_terminal_exit(body: bytes | str) -> int:
    """The exit status in :data:`TERMINAL_EXIT_ROUTE`'s answer; raises ValueError/KeyError."""
    return int(json.loads(body)["exit_status"])
