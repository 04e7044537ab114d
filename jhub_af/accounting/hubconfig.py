"""The hub's side of the set-up: run af-accounting as a hub-managed service.

``accounting_hub_config(c, ...)`` writes the service's own config file, adds the
services ``af-accounting`` (managed; shown in the hub's Services menu, which is
the home page's link to the usage pages) and ``af-spawner`` (a token-only
service whose token the hub's spawner uses), the custom scopes, and points
``c.AccountingClient`` at the service. It returns the roles to merge into
``c.JupyterHub.load_roles``; each has the narrowest scopes its holder needs:

- ``af-accounting``: ``list:users``, ``read:users`` (groups and the admin flag),
  ``read:servers`` (to reconcile), ``list:groups``, ``read:groups:name``;
- ``af-spawner``: reserve, plus access to the service;
- ``user``: access to the service (their own usage only; the service checks);
- ``server`` (the token of each single-user server, ``$JUPYTERHUB_API_TOKEN``):
  JupyterHub's default scopes plus access to the service, so that the JupyterLab
  panel can read the user's own ``usage/me`` and ``policy/me`` from the server.
"""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

from .scopes import ACCOUNTING_SCOPES, RESERVE_SCOPE

SERVICE = "af-accounting"
SPAWNER_CLIENT = "af-spawner"
ACCESS = f"access:services!service={SERVICE}"
SERVICE_SCOPES = ["list:users", "read:users", "read:servers", "list:groups", "read:groups:name"]
# JupyterHub's own scopes of the server role: a role of that name in load_roles replaces them
SERVER_DEFAULT_SCOPES = ["users:activity!user", "access:servers!server"]


def _token(path: Path) -> str:
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


def accounting_hub_config(
    c,
    *,
    data_dir: str | Path,
    port: int,
    policy: dict,
    db_url: str = "",
    admin_groups: list[str] | tuple[str, ...] = (),
    fail_open: bool = False,
    service_settings: dict | None = None,
) -> list[dict]:
    """Configure the hub ``c`` to run af-accounting on 127.0.0.1:``port``; return its roles.

    ``policy`` is the ``QuotaPolicy`` settings (defaults, groups, users, group_totals,
    period, warn_at); ``service_settings`` more ``AccountingService`` settings.
    """
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    settings = {
        "db_url": db_url or f"sqlite:///{data / 'af-accounting.sqlite'}",
        "admin_groups": list(admin_groups),
        **(service_settings or {}),
    }
    config_file = data / "af-accounting.json"
    config_file.write_text(
        json.dumps({"AccountingService": settings, "QuotaPolicy": policy}, indent=2) + "\n"
    )
    url = f"http://127.0.0.1:{port}"
    services = [
        s for s in c.JupyterHub.get("services", []) if s["name"] not in (SERVICE, SPAWNER_CLIENT)
    ]
    services += [
        {
            "name": SERVICE,
            "url": url,
            "command": [sys.executable, "-m", "jhub_af.accounting", "--config", str(config_file)],
            "cwd": str(data),
            "oauth_no_confirm": True,
            "display": True,
        },
        {"name": SPAWNER_CLIENT, "api_token": _token(data / "af-spawner-token")},
    ]
    c.JupyterHub.services = services
    c.JupyterHub.custom_scopes = {**c.JupyterHub.get("custom_scopes", {}), **ACCOUNTING_SCOPES}
    c.AccountingClient.url = f"{url}/services/{SERVICE}/api/v1/"
    c.AccountingClient.api_token = _token(data / "af-spawner-token")
    c.AccountingClient.fail_open = fail_open
    return [
        {"name": SERVICE, "services": [SERVICE], "scopes": list(SERVICE_SCOPES)},
        {"name": SPAWNER_CLIENT, "services": [SPAWNER_CLIENT], "scopes": [RESERVE_SCOPE, ACCESS]},
        {"name": "user", "scopes": ["self", ACCESS]},
        {"name": "server", "scopes": [*SERVER_DEFAULT_SCOPES, ACCESS]},
    ]
