"""`af-ssh`: the SSH-on-demand service, configured with traitlets, run by the hub.

Run as a hub-managed service (the hub passes ``JUPYTERHUB_API_URL`` and the
service's own ``JUPYTERHUB_API_TOKEN``)::

    c.JupyterHub.services = [{
        "name": "af-ssh",
        "command": ["python", "-m", "jhub_af.ssh", "--port=8022",
                    "--hub-url=https://hub.example.org",
                    "--host-key-file=/srv/af-ssh/ssh_host_ed25519_key"],
    }]
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import ClassVar

import asyncssh
from traitlets import Bool, Float, Int, List, Unicode, default
from traitlets.config import Application

from jhub_af import __version__

from .hub import HubClient
from .limits import SourceLimiter
from .login import LoginChecker
from .server import Connection, load_host_key


class AFSSH(Application):
    """SSH on demand: ``ssh alice@hub -p 8022`` with a hub token as the password."""

    name = "af-ssh"
    version = __version__
    description = "SSH into your JupyterHub server with a hub token as the password."

    aliases: ClassVar[dict] = {
        "ip": "AFSSH.ip",
        "port": "AFSSH.port",
        "hub-url": "AFSSH.hub_url",
        "hub-api-url": "AFSSH.hub_api_url",
        "host-key-file": "AFSSH.host_key_file",
        "idle-timeout": "AFSSH.idle_timeout",
        "config": "AFSSH.config_file",
        "log-level": "Application.log_level",
    }
    flags: ClassVar[dict] = {
        "allow-admin-access": (
            {"AFSSH": {"allow_admin_access": True}},
            "Let admins' tokens open other users' servers.",
        )
    }

    config_file = Unicode(
        "", config=True, help="A Python config file (``c.AFSSH.port = 8022``), loaded at start."
    )
    ip = Unicode(
        "127.0.0.1",
        config=True,
        help="Address to listen on (default 127.0.0.1; ``0.0.0.0`` for every interface).",
    )
    port = Int(8022, min=1, max=65535, config=True, help="Port to listen on (default 8022).")
    hub_url = Unicode(
        config=True,
        help="""The hub's public URL (the proxy), through which users' servers are reached.

        Default: ``$JUPYTERHUB_PUBLIC_URL``, else http://127.0.0.1:8000.
        Example: ``"https://hub.example.org"``.
        """,
    )
    hub_api_url = Unicode(
        config=True,
        help="The hub's REST API. Default: ``$JUPYTERHUB_API_URL`` (set by the hub).",
    )
    service_token = Unicode(
        config=True,
        help="""af-ssh's own hub token. Default: ``$JUPYTERHUB_API_TOKEN`` (set by the hub).

        Used only with ``allow_admin_access``, to reach another user's server (its
        channel accepts only the owner or af-ssh); give af-ssh ``access:servers`` then.
        """,
    )
    host_key_file = Unicode(
        "ssh_host_ed25519_key",
        config=True,
        help="""The host key file, generated (ed25519) at the first start and kept after.

        Relative paths are from the working directory. Default ``ssh_host_ed25519_key``.
        """,
    )
    encryption_algs = List(
        Unicode(),
        default_value=["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"],
        config=True,
        help="""The ciphers offered to clients, in order (asyncssh names).

        Default: AES-GCM only, which every OpenSSH since 6.2 speaks and which the
        ``cryptography`` library runs with the CPU's AES instructions (about twice as
        fast here as chacha20-poly1305 for SFTP and terminals). Empty: asyncssh's defaults.
        Example: ``["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com"]``.
        """,
    )
    allow_admin_access = Bool(
        False,
        config=True,
        help="""Let an admin's token log in as another user (``ssh bob@...`` with the
        token of admin ``root``). Off by default: a token opens only its owner's server.
        """,
    )
    idle_timeout = Float(
        3600,
        min=0,
        config=True,
        help="Close a connection after this many seconds without input or output (0: never).",
    )
    login_timeout = Float(
        60, min=1, config=True, help="Seconds a client has to log in before it is disconnected."
    )
    start_timeout = Float(
        300, min=1, config=True, help="Seconds to wait for the user's server to start."
    )
    max_failures_per_source = Int(
        20,
        min=1,
        config=True,
        help="""Failed logins from one address within ``failure_window`` after which
        that address is rate-limited (default 20).

        A rate-limited address is told so at the ssh prompt, with how long it lasts;
        each wrong token from it ends the connection, and its logins are checked with
        the hub one at a time. A valid token from it still logs in: failures are never
        held against a token, and never against a login name (a hub token cannot be
        guessed, so locking a name would only let anyone lock its owner out).
        Example: ``c.AFSSH.max_failures_per_source = 50`` for a site behind one NAT.
        (It replaces the per-name lockout of earlier versions, whose options
        ``max_failures_per_user`` and ``lockout_seconds`` are gone.)
        """,
    )
    failure_window = Float(
        300,
        min=1,
        config=True,
        help="""Seconds over which an address's failed logins are counted (default 300).

        An address stays rate-limited until fewer than ``max_failures_per_source`` of
        its failures are this recent; the ssh prompt says how many seconds that is.
        Example: ``c.AFSSH.failure_window = 60``.
        """,
    )
    max_tracked_sources = Int(
        10_000,
        min=1,
        config=True,
        help="""How many addresses' failures are remembered at most (default 10000).

        Each address keeps at most ``max_failures_per_source`` times, so the memory
        for failures is bounded whatever a flood of addresses sends; beyond this many
        addresses, the one whose last failure is oldest is forgotten first.
        Example: ``c.AFSSH.max_tracked_sources = 100_000``.
        """,
    )

    @default("log_level")
    def _default_log_level(self):
        return logging.INFO

    @default("log_format")
    def _default_log_format(self):
        return "[%(levelname)1.1s %(asctime)s.%(msecs).03d %(name)s] %(message)s"

    @default("hub_url")
    def _default_hub_url(self):
        return os.environ.get("JUPYTERHUB_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

    @default("hub_api_url")
    def _default_hub_api_url(self):
        return os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")

    @default("service_token")
    def _default_service_token(self):
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    def initialize(self, argv=None):
        """Read the command line and config file; build the hub client and login checker.

        Called by traitlets' ``launch_instance`` (``python -m jhub_af.ssh``).
        """
        super().initialize(argv)
        if self.config_file:
            self.load_config_file(self.config_file)
        self.hub_url = self.hub_url.rstrip("/")
        self.hub = HubClient(self.hub_api_url)
        limiter = SourceLimiter(
            self.max_failures_per_source, self.failure_window, self.max_tracked_sources
        )
        self.checker = LoginChecker(
            self.hub,
            limiter,
            allow_admin_access=self.allow_admin_access,
            service_token=self.service_token,
            token_page=f"{self.hub_url}/hub/token",
            log=self.log,
        )

    async def serve(self) -> asyncssh.SSHAcceptor:
        """Start listening (the host key is created on first use); return the acceptor.

        Raises OSError when the port cannot be bound. Called by :meth:`run`, and by
        tests that run af-ssh in their own event loop.
        """
        host_key = load_host_key(Path(self.host_key_file), self.log)
        acceptor = await asyncssh.create_server(
            lambda: Connection(self),
            self.ip,
            self.port,
            server_host_keys=[host_key],
            encoding=None,
            login_timeout=self.login_timeout,
            allow_pty=True,
            agent_forwarding=False,
            x11_forwarding=False,
            **({"encryption_algs": list(self.encryption_algs)} if self.encryption_algs else {}),
        )
        self.log.info(
            "af-ssh listening on %s:%s (host key %s), hub %s",
            self.ip,
            self.port,
            host_key.get_fingerprint(),
            self.hub_url,
        )
        return acceptor

    async def run(self) -> None:
        """Serve until SIGTERM or SIGINT, then stop listening."""
        acceptor = await self.serve()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        self.log.info("af-ssh stopping")
        acceptor.close()
        await acceptor.wait_closed()

    def start(self):
        """Run the service in a new event loop. Called by ``launch_instance``."""
        asyncio.run(self.run())


main = AFSSH.launch_instance
