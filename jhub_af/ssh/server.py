"""The asyncssh side: host key, password login, one connection's idle timer."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import asyncssh

from .login import LoginRefused
from .session import Session


def load_host_key(path: Path, log) -> asyncssh.SSHKey:
    """The host key in ``path``, generated (ed25519, mode 0600) on first use and kept."""
    if path.exists():
        return asyncssh.read_private_key(str(path))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = asyncssh.generate_private_key("ssh-ed25519")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.export_private_key())
    log.info("Generated the SSH host key %s (%s)", path, key.get_fingerprint())
    return key


class Connection(asyncssh.SSHServer):
    """One client connection: it logs in with a hub token, then opens sessions.

    Its methods other than :meth:`touch` are asyncssh's ``SSHServer`` hooks, called by
    asyncssh; only password logins are offered.
    """

    def __init__(self, service):
        self.service = service
        self.conn = None
        self.source = "?"
        self.login = None
        self.last_activity = time.monotonic()
        self.watchdog: asyncio.Task | None = None

    def connection_made(self, conn):
        """Keep ``conn`` and the client's address; start the idle timer when
        ``idle_timeout`` is set. Called by asyncssh when a client connects."""
        self.conn = conn
        peer = conn.get_extra_info("peername")
        self.source = peer[0] if peer else "?"
        if self.service.idle_timeout:
            self.watchdog = asyncio.ensure_future(self._watch_idle())

    def connection_lost(self, exc):
        """Stop the idle timer; log the logout of a logged-in user. Called by asyncssh
        when the connection closes (``exc`` is why, or None)."""
        if self.watchdog is not None:
            self.watchdog.cancel()
        if self.login is not None:
            self.service.log.info("SSH logout: %s from %s", self.login.name.user, self.source)

    def touch(self) -> None:
        """Note activity now (input or output), which resets the idle timer."""
        self.last_activity = time.monotonic()

    async def _watch_idle(self) -> None:
        timeout = self.service.idle_timeout
        while True:
            idle = time.monotonic() - self.last_activity
            if idle >= timeout:
                who = self.login.name.user if self.login else "(not logged in)"
                self.service.log.info(
                    "SSH: closing idle connection of %s from %s", who, self.source
                )
                self.conn.disconnect(
                    asyncssh.DISC_BY_APPLICATION, f"Idle for {timeout:.0f} seconds; closing."
                )
                return
            await asyncio.sleep(min(timeout - idle, 5) + 0.05)

    def begin_auth(self, username):
        """True: every user must authenticate. Called by asyncssh when the client
        names ``username``."""
        return True

    def password_auth_supported(self):
        """True: password logins (a hub token) are offered. Called by asyncssh."""
        return True

    async def validate_password(self, username, password):
        """True when the hub token ``password`` may log in as ``username``.

        Called by asyncssh; the decision is :meth:`LoginChecker.check`'s. Raises
        ``asyncssh.PermissionDenied`` with the checker's sentence when it has one for
        the person (:class:`LoginRefused`): asyncssh then ends the connection with that
        sentence as the reason, which OpenSSH prints at any log level.
        """
        self.touch()
        try:
            self.login = await self.service.checker.check(self.source, username, password)
        except LoginRefused as refused:
            raise asyncssh.PermissionDenied(str(refused)) from None
        return self.login is not None

    def session_requested(self):
        """A :class:`Session` for a logged-in connection, else False (refused)."""
        if self.login is None:
            return False
        return Session(self.service, self.login, self.touch)
