"""The hub as every component sees it, at no import cost.

Nothing here imports JupyterHub, so af-ssh, the user's server and the CLI can use
it without loading the hub:

- :mod:`.api`: the hub's REST API where JupyterHub 5 and 6 differ
  (:func:`spawn_body`, :func:`unwrap_spawn_body`);
- :mod:`.config`: the hub-config toolkit every component's ``*_hub_config`` uses
  (:func:`secret_file`, :func:`private_dir`, :func:`private_file`,
  :func:`write_private`, :func:`server_role`, :func:`add_roles`,
  :data:`SERVER_DEFAULT_SCOPES`).
"""

from .api import BadSpawnBody, spawn_body, unwrap_spawn_body
from .config import (
    SERVER_DEFAULT_SCOPES,
    add_roles,
    private_dir,
    private_file,
    secret_file,
    server_role,
    write_private,
)

__all__ = [
    "SERVER_DEFAULT_SCOPES",
    "BadSpawnBody",
    "add_roles",
    "private_dir",
    "private_file",
    "secret_file",
    "server_role",
    "spawn_body",
    "unwrap_spawn_body",
    "write_private",
]
