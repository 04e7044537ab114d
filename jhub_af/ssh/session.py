"""One SSH session channel: an interactive shell, a command, or the SFTP subsystem."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncssh

from jhub_af.lab import ChannelRequest, clamp_pty_size

from .bridges import UNKNOWN_EXIT_STATUS, ChannelBridge, TerminalBridge
from .hub import HubError
from .starting import server_url

QUEUE_HIGH = 32  # client messages queued before reading from the client pauses


class Session(asyncssh.SSHServerSession):
    """One session of a logged-in connection, bridged into the user's server.

    Interactive shells (with a pty) go to a Jupyter terminal (``TerminalBridge``);
    commands (on a pty of their own with ``ssh -t``), SFTP and shells without a pty go
    over jhub_af's binary channel (``ChannelBridge``). Its public methods are
    asyncssh's ``SSHServerSession`` hooks, called by asyncssh.
    """

    def __init__(self, service, login, activity):
        self.service = service
        self.login = login
        self.activity = activity  # called on every byte in or out (idle timeout)
        self.log: logging.Logger = service.log
        self.chan = None
        self.kind = None
        self.command = None
        self.term_type = None
        self.size = (80, 24)
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.writable = asyncio.Event()
        self.writable.set()
        self.bridge = None
        self.task: asyncio.Task | None = None
        self.paused = False

    # -- requests
    def connection_made(self, chan):
        """Keep ``chan``. Called by asyncssh when the session channel opens."""
        self.chan = chan

    def pty_requested(self, term_type, term_size, term_modes):
        """Keep the terminal type and its size (when both are non-zero); True (always
        granted). Called by asyncssh when the client asks for a pty."""
        self.term_type = term_type
        if term_size[0] and term_size[1]:
            self.size = (term_size[0], term_size[1])
        return True

    def shell_requested(self):
        """Note a shell session; True. Called by asyncssh when the client asks for one."""
        self.kind = "shell"
        return True

    def exec_requested(self, command):
        """Note ``command`` to run; True. Called by asyncssh for ``ssh host CMD``."""
        self.kind, self.command = "exec", command
        return True

    def subsystem_requested(self, subsystem):
        """True for ``sftp`` (noted), False (refused) for any other subsystem. Called by
        asyncssh when the client asks for one."""
        if subsystem != "sftp":
            return False
        self.kind = "sftp"
        return True

    def session_started(self):
        """Start the session's work (:meth:`_run`) as a task. Called by asyncssh once
        the shell, command or subsystem is accepted."""
        self.task = asyncio.ensure_future(self._run())

    # -- data from the client
    def data_received(self, data, datatype):
        """Queue the client's data, in order; stop reading from it while the queue is long."""
        self.activity()
        self.inbox.put_nowait(data)
        if self.inbox.qsize() > QUEUE_HIGH and not self.paused:
            self.paused = True
            self.chan.pause_reading()

    def eof_received(self):
        """Queue the client's EOF after its data; True keeps the channel half-open for
        output. Called by asyncssh when the client sends EOF."""
        self.inbox.put_nowait(None)
        return True  # keep sending output after the client's EOF

    def terminal_size_changed(self, width, height, pixwidth, pixheight):
        """Keep the new size and queue it with the input (pixel sizes ignored). Called
        by asyncssh when the client's window changes size."""
        self.size = (width, height)
        # queued with the input, so the shell sees the new size before what was typed after
        self.inbox.put_nowait((width, height))

    def pause_writing(self):
        """The client's window is full: output waits (so large transfers stream)."""
        self.writable.clear()

    def resume_writing(self):
        """The client's window has room again: output goes on. Called by asyncssh."""
        self.writable.set()

    def connection_lost(self, exc):
        """Cancel the session's task if it still runs. Called by asyncssh when the
        channel closes (``exc`` is why, or None)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()

    # -- the work
    async def _write_stdout(self, data: bytes) -> None:
        self.activity()
        await self.writable.wait()
        self.chan.write(data)

    async def _write_stderr(self, data: bytes) -> None:
        self.activity()
        await self.writable.wait()
        self.chan.write_stderr(data)

    async def _say(self, text: str) -> None:
        await self._write_stderr(text.encode())

    async def _pump_input(self, send, send_eof=None) -> None:
        while True:
            data = await self.inbox.get()
            if self.paused and self.inbox.qsize() < QUEUE_HIGH // 2:
                self.paused = False
                self.chan.resume_reading()
            if data is None:
                if send_eof is not None:
                    await send_eof()
                return
            if isinstance(data, tuple):
                if self.bridge is not None and self.term_type:
                    await self.bridge.resize(*data)
                continue
            await send(data)

    async def _run(self) -> None:
        """Find (or start) the server, bridge the session into it, exit with its status."""
        service = self.service
        pump = None
        try:
            url = await server_url(
                service.hub, service.hub_url, self.login, self._say, service.start_timeout
            )
            if self.kind == "shell" and self.term_type is None:
                # `ssh -T host < script`: a shell reading stdin, no terminal
                self.kind, self.command = "exec", 'exec "${SHELL:-/bin/sh}"'
            if self.kind == "shell":
                self.bridge = TerminalBridge(url, self.login.server_token)
                await self.bridge.open(*self.size)
                pump = asyncio.ensure_future(self._pump_input(self.bridge.send))
                status = await self.bridge.run(self._write_stdout)
                self.chan.exit(status)
                return
            self.bridge = ChannelBridge(url, self.login.server_token)
            if self.kind == "sftp":
                request = ChannelRequest("sftp")
            elif self.term_type:  # ssh -t host CMD: the command gets a pty
                request = ChannelRequest(
                    "exec", self.command, self.term_type, clamp_pty_size(*self.size)
                )
            else:
                request = ChannelRequest("exec", self.command)
            await self.bridge.open(request)
            pump = asyncio.ensure_future(self._pump_input(self.bridge.send, self.bridge.send_eof))
            status, signal = await self.bridge.run(self._write_stdout, self._write_stderr)
            if signal:
                self.chan.exit_with_signal(signal)
            else:
                self.chan.exit(status if status is not None else UNKNOWN_EXIT_STATUS)
        except HubError as e:
            await self._say(f"af-ssh: {e}\r\n")
            self.chan.exit(1)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.log.exception("SSH session of %s failed", self.login.name.user)
            with contextlib.suppress(Exception):
                await self._say("af-ssh: internal error; the facility's admins can see why.\r\n")
                self.chan.exit(1)
        finally:
            if pump is not None:
                pump.cancel()
            if self.bridge is not None:
                result = self.bridge.close()
                if asyncio.iscoroutine(result):
                    with contextlib.suppress(Exception):
                        await result
