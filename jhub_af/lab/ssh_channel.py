"""A binary-safe channel into the user's server, for af-ssh's commands and SFTP.

The Jupyter terminal websocket decodes output as UTF-8 with replacement, so it
cannot carry files or binary output. This websocket can: it runs one command
(``$SHELL -c CMD``) or the system's ``sftp-server`` as the server's own user, in
the server's home, and pipes bytes both ways.

Protocol, at ``{base_url}jhub-af/ssh/channel``:

- the client's first message is JSON text: ``{"kind": "exec", "command": "ls -l"}``
  or ``{"kind": "sftp"}`` (optional ``"term": "xterm"``; ``"pty": [cols, rows]`` runs
  the command on a pseudo-terminal of that size, as ``ssh -t host CMD`` asks);
- then binary frames whose first byte names the stream: ``0`` stdin (client to
  server), ``1`` stdout, ``2`` stderr (server to client); a lone ``3`` from the
  client closes stdin; ``4`` + two big-endian 16-bit numbers resizes the pty
  (cols, rows);
- the server ends with JSON text ``{"exit_status": N}`` (or ``{"exit_signal": "KILL"}``)
  and closes. A refusal is ``{"error": "..."}``.

Who may open it: jupyter-server's own authentication and ``execute`` on
``terminals`` (as for a terminal), and then only the server's owner, or a hub
service named in ``SSHChannel.allowed_services`` (af-ssh). An admin's token,
which the hub lets into every server, is not enough here.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
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

from .sftp_guard import SFTPGuard

STDIN, STDOUT, STDERR, STDIN_EOF, RESIZE = 0, 1, 2, 3, 4
CHUNK = 256 * 1024
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
        self.channel = channel
        self.owner = owner
        self.home = home
        self.proc: asyncio.subprocess.Process | None = None
        self.guard: SFTPGuard | None = None
        self.pty: int | None = None  # the pty's master fd, for ``ssh -t host CMD``
        self.started = False
        self._tasks: set[asyncio.Future] = set()

    def _allowed(self, user) -> bool:
        hub = getattr(user, "hub_user", None) or {}
        kind, name = hub.get("kind"), hub.get("name")
        if kind == "user":
            return name == self.owner
        return kind == "service" and name in self.channel.allowed_services

    async def get(self, *args, **kwargs):
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
        SSHChannelHandler.running += 1
        self.set_nodelay(True)

    async def _refuse(self, message: str):
        with contextlib.suppress(WebSocketClosedError):
            await self.write_message(json.dumps({"error": message}))
        self.close()

    async def on_message(self, message):
        if not self.started:
            await self._start(message)
            return
        if not isinstance(message, bytes) or not message or self.proc is None:
            return
        if self.pty is not None:
            await self._to_pty(message)
            return
        if message[0] == STDIN and len(message) > 1:
            data = message[1:]
            if self.guard is not None:
                data, answer = self.guard.from_client(data)
                if answer:
                    await self._send(STDOUT, answer)
            if data:
                try:
                    self.proc.stdin.write(data)
                    await self.proc.stdin.drain()
                except (BrokenPipeError, ConnectionResetError):
                    pass
        elif message[0] == STDIN_EOF:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    async def _start(self, message):
        self.started = True
        try:
            request = json.loads(message) if isinstance(message, str) else None
        except ValueError:
            request = None
        if not isinstance(request, dict) or request.get("kind") not in ("exec", "sftp"):
            await self._refuse('The first message must be {"kind": "exec"|"sftp", ...}.')
            return
        # the environment a terminal of this server gets
        env = {**os.environ, "HOME": self.home}
        term = request.get("term")
        if isinstance(term, str) and term.isprintable() and len(term) < 64:
            env["TERM"] = term
        if request["kind"] == "sftp":
            if not self.channel.sftp_server:
                await self._refuse("No sftp-server is installed in this server's image.")
                return
            argv = [self.channel.sftp_server, "-d", self.home]
            self.guard = SFTPGuard(self.home, log=self.log)
        else:
            command = request.get("command")
            if not isinstance(command, str) or not command or "\0" in command:
                await self._refuse("The command must be non-empty text.")
                return
            argv = [env.get("SHELL") or "/bin/sh", "-c", command]
            size = request.get("pty")
            if size is not None:
                if not _is_size(size):
                    await self._refuse("pty must be [cols, rows], each from 1 to 1000.")
                    return
                await self._start_on_pty(argv, env, size)
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
        if message[0] == RESIZE and len(message) == 5:
            cols, rows = struct.unpack(">HH", message[1:])
            if _is_size([cols, rows]):
                _set_size(self.pty, cols, rows)
        elif message[0] == STDIN:
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

        def readable():
            try:
                data = os.read(master, CHUNK)
            except BlockingIOError:
                return
            except OSError:  # EIO: no process holds the pty any more
                data = b""
            if not data or queue.qsize() > 16:
                loop.remove_reader(master)  # at the end, or until the client catches up
            queue.put_nowait(data)

        loop.add_reader(master, readable)
        try:
            while True:
                data = await queue.get()
                if not data:
                    return
                await self._send(STDOUT, data)
                if queue.empty():
                    loop.add_reader(master, readable)
        finally:
            loop.remove_reader(master)

    async def _send(self, stream: int, data: bytes) -> None:
        await self.write_message(bytes([stream]) + data, binary=True)

    async def _pump(self, reader: asyncio.StreamReader, stream: int) -> None:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                return
            if self.guard is not None and stream == STDOUT:
                data = self.guard.from_server(data)
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
                    self._pump(proc.stdout, STDOUT), self._pump(proc.stderr, STDERR)
                )
            status = await proc.wait()
            if self.guard is not None:
                self.guard.finish()
            if status < 0:
                result = {"exit_signal": signal.Signals(-status).name.removeprefix("SIG")}
            else:
                result = {"exit_status": status}
            await self.write_message(json.dumps(result))
            self.close()
        except WebSocketClosedError:
            pass  # on_close stops the process

    def on_close(self):
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


def _is_size(size) -> bool:
    return (
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 1000 for n in size)
    )


def _set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _controlling_tty() -> None:
    """In the child (a new session): make its stdin, the pty, the controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def channel_handlers(serverapp, owner: str) -> list[tuple]:
    """The channel's route, for ``web_app.add_handlers``."""
    channel = SSHChannel(parent=serverapp)
    home = os.path.abspath(os.path.expanduser(serverapp.root_dir))
    route = serverapp.base_url.rstrip("/") + "/jhub-af/ssh/channel"
    return [(route, SSHChannelHandler, {"channel": channel, "owner": owner, "home": home})]
