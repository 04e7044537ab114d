"""The hub-config toolkit: what every component's ``*_hub_config`` function needs.

Each component that joins the hub (af-accounting, the Dask Gateway, the bearer
token, the panel's usage tab, the demo) writes its secrets, its roles and the
scopes of the single-user server's token the same way, with these functions.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from pathlib import Path

# JupyterHub's own scopes of the ``server`` role (the token in each single-user
# server's environment): a role of that name in ``load_roles`` replaces them, so a
# component that adds scopes to it must repeat these
SERVER_DEFAULT_SCOPES = ("users:activity!user", "access:servers!server")


def secret_file(path: str | Path, make: Callable[[], str] = lambda: secrets.token_hex(32)) -> str:
    """The secret kept in ``path``, made once with ``make()`` (64 hex digits by default).

    The file is created readable by its owner only (0600) *before* the secret is
    written into it. Returns the file's text without surrounding whitespace. Raises
    ``OSError`` when the file cannot be made or read.

    Called by the ``*_hub_config`` functions of accounting, the gateway and the demo.
    """
    path = Path(path)
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(make())
    return path.read_text().strip()


def server_role(extra_scopes: Iterable[str]) -> dict:
    """The ``server`` role: JupyterHub's default scopes of the single-user server's
    token plus ``extra_scopes`` (each once, in order).

    Returns a role dict for ``c.JupyterHub.load_roles``; merge roles of several
    components with :func:`add_roles`.
    """
    scopes = list(SERVER_DEFAULT_SCOPES)
    scopes += [s for s in extra_scopes if s not in scopes]
    return {"name": "server", "scopes": scopes}


def add_roles(c, roles: Iterable[dict]) -> None:
    """Merge ``roles`` into ``c.JupyterHub.load_roles`` of the hub config ``c``.

    A role whose name is already there gets the new scopes added to its own (each
    once), and its other keys (``users``, ``groups``, ``services``) kept; a new name
    is added as it is. Changes ``c`` in place; returns nothing.

    Called by the demo's hub config and by facility configs that combine components.
    """
    merged = {r["name"]: dict(r) for r in c.JupyterHub.get("load_roles", [])}
    for role in roles:
        if role["name"] in merged:
            scopes = list(merged[role["name"]].get("scopes", []))
            merged[role["name"]]["scopes"] = scopes + [
                x for x in role.get("scopes", []) if x not in scopes
            ]
        else:
            merged[role["name"]] = dict(role)
    c.JupyterHub.load_roles = list(merged.values())
