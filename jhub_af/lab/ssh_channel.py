"""A binary-safe channel into the user's server, for af-ssh's commands and SFTP.

The Jupyter terminal websocket decodes output as UTF-8 with replacement, so it
cannot carry files or binary output. This websocket can: it runs one command
(``$SHELL -c CMD``, on a pty if asked) or the system's ``sftp-server`` as the
server's own user, in the server's home, and pipes bytes both ways. Its wire
format is :mod:`.channel_protocol`; who may open it, :meth:`SSHChannelHandler.get`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import struct
import termios

from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.websocket import WebSocketClosedError, WebSocketHandler
from traitlets import Int, List, Unicode, default
from traitlets.config import LoggingConfigurable

from .channel_protocol import (
    CHANNEL_ROUTE,
    BadChannelRequest,
    ChannelFrame,
    data_frame,
    error_message,
    exit_message,
    parse_channel_request,
    parse_resize_frame,
)
from .sftp_guard import SFTPGuard

CHUNK = 256 * 1024  # the most output read (and sent in one frame) at a time
SFTP_SERVER_PATHS = (
    "/usr/lib/openssh/sftp-server",
    "/usr/libexec/openssh/sftp-server",
    "/usr/libexec/sftp-server",
    "/usr/lib/ssh/sftp-server",
)


class SSHChannel(LoggingConfigurable):
    """Settings of the binary channel, e.g. ``c.SSHChannel.allowed_services = ["af-ssh"]``."""

    allowed_services = List(
        Unicode(),
        default_value=["af-ssh"],
        config=True,
        help="""Hub services (by name) that may open the channel besides the server's owner.

        Default ``["af-ssh"]``. Users, admins included, may open only their own server's
        channel.
        """,
    )
    sftp_server = Unicode(
        config=True,
        help="""The sftp-server program run for SFTP, as the server's user.

        Default: OpenSSH's, found at /usr/lib/openssh/sftp-server (Debian) or the other
        usual places. Example: ``"/usr/libexec/openssh/sftp-server"``.
        """,
    )
    max_sessions = Int(
        32,
        min=1,
        config=True,
        help="At most this many channels (commands, SFTP) run at once in this server.",
    )

    @default("sftp_server")
    def _default_sftp_server(self):
        for path in SFTP_SERVER_PATHS:
            if os.access(path, os.X_OK):
                return path
        return shutil.which("sftp-server") or ""


class SSHChannelHandler(WebSocketMixin, WebSocketHandler, JupyterHandler):
    """One command or SFTP session, bridged over a binary websocket."""

    auth_resource = "terminals"
    running = 0

    def initialize(self, channel: SSHChannel, owner: str, home: str):
        """Keep the settings, the server owner's name and the home the command runs
        in, as :func:`channel_handlers` gives them. Called by tornado for each request."""
        self.channel = channel
        self.owner = owner
        self.home = home
        self.proc: asyncio.subprocess.Process | None = None
        self.guard: SFTPGuard | None = None
        self.pty: int | None = None  # the pty's master fd, for ``ssh -t host CMD``
        self.started = False
        self._tasks: set[asyncio.Future] = set()

    def _allowed(self, user) -> bool:
        """True for the server's owner or an allowed service; never for another user."""
        hub = getattr(user, "hub_user", None) or {}
        kind, name = hub.get("kind"), hub.get("name")
        if kind == "user":
            return name == self.owner
        return kind == "service" and name in self.channel.allowed_services

    async def get(self, *args, **kwargs):
        """Open the websocket for the server's owner or an allowed hub service.

        Needs jupyter-server's authentication and ``execute`` on ``terminals`` (as a
        terminal does), and then only the owner or one of
        ``SSHChannel.allowed_services`` (af-ssh): an admin's token, which the hub lets
        into every server, is not enough. Raises HTTPError 403 otherwise, 503 when
        ``max_sessions`` channels run. Called by tornado for the upgrade request.
        """
        user = self.current_user
        if not user:
            raise web.HTTPError(403, "Not signed in.")
        allowed = self.authorizer.is_authorized(self, user, "execute", "terminals")
        if not await ensure_async(allowed):
            raise web.HTTPError(403, "Not allowed to run commands in this server.")
        if not self._allowed(user):
            self.log.warning("jhub_af ssh channel: refused %s", getattr(user, "username", "?"))
            raise web.HTTPError(403, "Only the server's owner (or af-ssh) may open this channel.")
        if SSHChannelHandler.running >= self.channel.max_sessions:
            raise web.HTTPError(503, "Too many SSH sessions in this server; close some.")
        return await super().get(*args, **kwargs)

    def open(self, *args, **kwargs):
        """Count the channel; it waits for its request. Called by tornado."""
        SSHChannelHandler.running += 1
        self.set_nodelay(True)

    async def _refuse(self, sentence: str):
        with contextlib.suppress(WebSocketClosedError):
            await self.write_message(error_message(sentence))
        self.close()

    async def on_message(self, message):
        """Start on the first message (a ChannelRequest); then stdin, EOF and resize frames.

        Frames for the wrong kind of channel, or after the process ended, are ignored.
        Called by tornado.
        """
        if not self.started:
            await self._start(message)
            return
        if not isinstance(message, bytes) or not message or self.proc is None:
            return
        if self.pty is not None:
            await self._to_pty(message)
            return
        if message[0] == ChannelFrame.STDIN and len(message) > 1:
            data, answer = message[1:], b""
            if self.guard is not None:
                try:
                    data, answer = self.guard.from_client(data)
                except ValueError as e:  # a packet too large, too much held back
                    await self._refuse(f"SFTP session ended: {e}.")
                    return
            await self._to_server(data, answer)
        elif message[0] == ChannelFrame.STDIN_EOF:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    async def _to_server(self, data: bytes, answer: bytes = b"") -> None:
        """Write ``data`` to the process (before any await, so that the guard's order
        holds), then send the guard's ``answer`` to the client."""
        try:
            if data:
                self.proc.stdin.write(data)
            if answer:
                await self._send(ChannelFrame.STDOUT, answer)
            if data:
                await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _guard_woken(self) -> None:
        """The SFTP guard's turn has come: send what it held back (soon, not re-entrantly)."""
        self._tasks.add(asyncio.ensure_future(self._guard_pending()))

    async def _guard_pending(self) -> None:
        if self.guard is not None and self.proc is not None:
            with contextlib.suppress(WebSocketClosedError):
                await self._to_server(*self.guard.pending())

    async def _start(self, message):
        self.started = True
        try:
            request = parse_channel_request(message)
        except BadChannelRequest as e:
            await self._refuse(str(e))
            return
        # the environment a terminal of this server gets
        env = {**os.environ, "HOME": self.home}
        if request.term is not None:
            env["TERM"] = request.term
        if request.kind == "sftp":
            if not self.channel.sftp_server:
                await self._refuse("No sftp-server is installed in this server's image.")
                return
            argv = [self.channel.sftp_server, "-d", self.home]
            self.guard = SFTPGuard(self.home, log=self.log)
            self.guard.wake = self._guard_woken
        else:
            argv = [env.get("SHELL") or "/bin/sh", "-c", request.command]
            if request.pty is not None:
                await self._start_on_pty(argv, env, request.pty)
                return
        self.proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self.home,
            env=env,
            start_new_session=True,
        )
        self._tasks.add(asyncio.ensure_future(self._pump_until_exit()))

    async def _start_on_pty(self, argv: list[str], env: dict, size: list[int]) -> None:
        master, slave = os.openpty()
        _set_size(master, *size)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=self.home,
                env=env,
                start_new_session=True,
                preexec_fn=_controlling_tty,  # only an ioctl, in the child
            )
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        self.pty = master
        self._tasks.add(asyncio.ensure_future(self._pump_until_exit()))

    async def _to_pty(self, message: bytes) -> None:
        if message[0] == ChannelFrame.RESIZE:
            size = parse_resize_frame(message)
            if size is not None:
                _set_size(self.pty, *size)
        elif message[0] == ChannelFrame.STDIN:
            data = memoryview(message)[1:]
            while data:
                try:
                    data = data[os.write(self.pty, data) :]
                except BlockingIOError:
                    await asyncio.sleep(0.01)
                except OSError:
                    return  # the command has ended

    async def _pump_pty(self) -> None:
        """Copy the pty's output until the command and its children let go of it."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        master = self.pty

        def on_readable():
            try:
                data = os.read(master, CHUNK)
            except BlockingIOError:
                return
            except OSError:  # EIO: no process holds the pty any more
                data = b""
            if not data or queue.qsize() > 16:
                loop.remove_reader(master)  # at the end, or until the client catches up
            queue.put_nowait(data)

        loop.add_reader(master, on_readable)
        try:
            while True:
                data = await queue.get()
                if not data:
                    return
                await self._send(ChannelFrame.STDOUT, data)
                if queue.empty():
                    loop.add_reader(master, on_readable)
        finally:
            loop.remove_reader(master)

    async def _send(self, stream: ChannelFrame, data: bytes) -> None:
        await self.write_message(data_frame(stream, data), binary=True)

    async def _pump(self, reader: asyncio.StreamReader, stream: ChannelFrame) -> None:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                return
            if self.guard is not None and stream == ChannelFrame.STDOUT:
                data, forward = self.guard.from_server(data)
                if forward:
                    await self._to_server(forward)
                if not data:
                    continue
            await self._send(stream, data)

    async def _pump_until_exit(self) -> None:
        proc = self.proc
        try:
            if self.pty is not None:
                await self._pump_pty()
            else:
                await asyncio.gather(
                    self._pump(proc.stdout, ChannelFrame.STDOUT),
                    self._pump(proc.stderr, ChannelFrame.STDERR),
                )
            status = await proc.wait()
            if self.guard is not None:
                self.guard.finish()
            await self.write_message(exit_message(status))
            self.close()
        except WebSocketClosedError:
            pass  # on_close stops the process

    def on_close(self):
        """The client went away: hang up the command (SIGHUP, then SIGKILL) and drop a
        half-done upload. Called by tornado."""
        SSHChannelHandler.running -= 1
        if self.pty is not None:
            # the command sees its terminal hang up, as with ssh -t
            self._tasks.add(asyncio.ensure_future(self._close_pty_later()))
        proc = self.proc
        if proc is not None and proc.returncode is None:
            # the client went away: end the command (and a half-done upload)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGHUP)
            self._tasks.add(asyncio.ensure_future(self._reap(proc)))
        elif self.guard is not None:
            self.guard.abort()

    async def _reap(self, proc) -> None:
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        if self.guard is not None:
            self.guard.abort()

    async def _close_pty_later(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.proc.wait(), 10)
        with contextlib.suppress(OSError):
            os.close(self.pty)


def _set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _controlling_tty() -> None:
    """In the child (a new session): make its stdin, the pty, the controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def channel_handlers(serverapp, owner: str) -> list[tuple]:
    """The channel's route, for ``web_app.add_handlers``."""
    channel = SSHChannel(parent=serverapp)
    home = os.path.abspath(os.path.expanduser(serverapp.root_dir))
    route = serverapp.base_url.rstrip("/") + CHANNEL_ROUTE
    return [(route, SSHChannelHandler, {"channel": channel, "owner": owner, "home": home})]
