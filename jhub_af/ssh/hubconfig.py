"""The hub's side of af-ssh: the SSH scope and who holds it (:func:`ssh_hub_config`)."""

from __future__ import annotations

from .scopes import SSH_SCOPE, SSH_SCOPES


def ssh_hub_config(c) -> list[dict]:
    """Define af-ssh's scope in the hub config ``c``; return the role that grants it.

    Adds :data:`~jhub_af.ssh.scopes.SSH_SCOPES` to ``c.JupyterHub.custom_scopes``
    (keeping the scopes already there) and returns the ``user`` role with
    ``custom:jhub-af:ssh!user``, so every token a user makes on the hub's token page
    (which inherits the user's scopes) is an SSH password for that user. The
    ``server`` role does not get it: the single-user server's own token, which
    services such as af-accounting and the Dask Gateway receive, opens no SSH session.
    Changes ``c`` in place; merge the roles with :func:`jhub_af.hub.add_roles`.
    Raises nothing.

    Called by the demo's ``ssh`` part and by facility configs that run af-ssh.
    """
    c.JupyterHub.custom_scopes = {**c.JupyterHub.get("custom_scopes", {}), **SSH_SCOPES}
    return [{"name": "user", "scopes": ["self", f"{SSH_SCOPE}!user"]}]
