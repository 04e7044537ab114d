"""The hub's side of the set-up: run af-accounting as a hub-managed service
(:func:`accounting_hub_config`, built from :mod:`jhub_af.hub`'s toolkit)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from jhub_af.hub import private_dir, private_file, secret_file, server_role, write_private

from .scopes import ACCOUNTING_SCOPES, RESERVE_SCOPE

SERVICE = "af-accounting"
SPAWNER_CLIENT = "af-spawner"
ACCESS = f"access:services!service={SERVICE}"
# to reconcile: the users, their groups and admin flag, their running servers
SERVICE_SCOPES = ["list:users", "read:users", "read:servers", "list:groups", "read:groups:name"]


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

    Writes the service's config file into ``data_dir`` (with the ledger's SQLite
    file unless ``db_url`` names another database), adds the services
    ``af-accounting`` (managed; shown in the hub's Services menu, the home page's
    link to the usage pages) and ``af-spawner`` (token only: the hub's spawners
    reserve with its token, kept in ``data_dir/af-spawner-token``), the custom
    scopes, and points ``c.AccountingClient`` at the service. ``policy`` is the
    ``QuotaPolicy`` settings (defaults, groups, users, group_totals, period,
    warn_at); ``admin_groups`` see everyone's usage; ``service_settings`` are more
    ``AccountingService`` settings.

    ``data_dir`` is made 0700 and every file with a secret in it 0600: the config
    file (``db_url`` may hold a password), the token, and the SQLite ledger, created
    empty and 0600 here before the service opens it.

    Returns the roles to merge with :func:`jhub_af.hub.add_roles`, each with the
    narrowest scopes its holder needs: ``af-accounting`` (:data:`SERVICE_SCOPES`),
    ``af-spawner`` (reserve and access), ``user`` (access: their own usage, the
    service checks) and ``server`` (JupyterHub's default scopes plus access, so the
    JupyterLab panel reads the user's ``usage/me`` and ``policy/me``). Raises
    ``OSError`` when ``data_dir`` cannot be written.

    Called by the demo's and the Helm chart's hub config, and by facility configs.
    """
    data = private_dir(data_dir)
    if not db_url:
        db_url = f"sqlite:///{private_file(data / 'af-accounting.sqlite')}"
    config_file = _write_service_config(
        data,
        policy,
        {
            "db_url": db_url,
            "admin_groups": list(admin_groups),
            **(service_settings or {}),
        },
    )
    url = f"http://127.0.0.1:{port}"
    spawner_token = secret_file(data / "af-spawner-token")
    _add_services(c, url, config_file, spawner_token)
    c.JupyterHub.custom_scopes = {**c.JupyterHub.get("custom_scopes", {}), **ACCOUNTING_SCOPES}
    c.AccountingClient.url = f"{url}/services/{SERVICE}/api/v1/"
    c.AccountingClient.api_token = spawner_token
    c.AccountingClient.fail_open = fail_open
    return [
        {"name": SERVICE, "services": [SERVICE], "scopes": list(SERVICE_SCOPES)},
        {"name": SPAWNER_CLIENT, "services": [SPAWNER_CLIENT], "scopes": [RESERVE_SCOPE, ACCESS]},
        {"name": "user", "scopes": ["self", ACCESS]},
        server_role([ACCESS]),
    ]


def _write_service_config(data: Path, policy: dict, settings: dict) -> Path:
    """The service's own config file (``--config``): its settings and the policy, 0600."""
    text = json.dumps({"AccountingService": settings, "QuotaPolicy": policy}, indent=2) + "\n"
    return write_private(data / "af-accounting.json", text)


def _add_services(c, url: str, config_file: Path, spawner_token: str) -> None:
    """Add (or replace) the services af-accounting and af-spawner in ``c``."""
    services = [
        s for s in c.JupyterHub.get("services", []) if s["name"] not in (SERVICE, SPAWNER_CLIENT)
    ]
    services += [
        {
            "name": SERVICE,
            "url": url,
            "command": [sys.executable, "-m", "jhub_af.accounting", "--config", str(config_file)],
            "cwd": str(config_file.parent),
            "oauth_no_confirm": True,
            "display": True,
        },
        {"name": SPAWNER_CLIENT, "api_token": spawner_token},
    ]
    c.JupyterHub.services = services
