"""What one demo run needs to know: where it listens and where it keeps its files."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from jhub_af.hub import write_private


@dataclass(frozen=True)
class DemoSettings:
    """The demo's settings, written by `jhub-af demo` next to the hub's config.

    ``ip``/``port`` are the public address (the proxy); ``hub_port`` and
    ``proxy_api_port`` are internal loopback ports picked at each start;
    ``ssh_port`` is where af-ssh listens (on ``ip``).
    """

    ip: str
    port: int
    data_dir: str
    hub_port: int
    proxy_api_port: int
    proxy_command: list[str] = field(default_factory=list)
    # "demo" (the table of demo users) or "iam" (IAMAuthenticator against issuer)
    login: str = "demo"
    issuer: str = ""
    client_id: str = ""
    client_secret_file: str = ""
    # af-ssh, the SSH-on-demand service, listens on ip:ssh_port
    ssh_port: int = 8022

    @property
    def public_url(self) -> str:
        """The facility's address as a browser opens it, e.g. ``http://127.0.0.1:8000``."""
        return f"http://{self.ip}:{self.port}"

    @property
    def data_path(self) -> Path:
        """``data_dir`` as a Path: the database, secrets, homes and services' state."""
        return Path(self.data_dir)

    def dump(self, path: Path) -> None:
        """Write the settings as JSON to ``path``, 0600 (``prepare`` does, before the hub
        starts); returns nothing, raises ``OSError`` when ``path`` cannot be written."""
        write_private(path, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> DemoSettings:
        """The settings :meth:`dump` wrote; called by the hub config the demo writes."""
        return cls(**json.loads(Path(path).read_text()))
