"""The hub's side of the panel: what each notebook server needs from the hub config."""

from __future__ import annotations

from jhub_af.hub import server_role

# where the Usage tab finds af-accounting (set in every spawned server's environment)
ACCOUNTING_URL_ENV = "JHUB_AF_ACCOUNTING_URL"


def usage_hub_config(c) -> list[dict]:
    """Let every notebook server of the hub config ``c`` read its user's own usage.

    Sets ``JHUB_AF_ACCOUNTING_URL`` in ``c.Spawner.environment`` to
    ``c.AccountingClient.url`` (so call it after
    :func:`jhub_af.accounting.accounting_hub_config`). Returns the roles to merge into
    ``c.JupyterHub.load_roles`` (:func:`jhub_af.hub.add_roles`): the ``server`` role with
    JupyterHub's default scopes plus access to af-accounting, which itself decides what
    the token may read (the user's own usage only).

    Called by the demo's hub config and by facility hub configs.
    """
    c.Spawner.environment = {
        **c.Spawner.get("environment", {}),
        ACCOUNTING_URL_ENV: c.AccountingClient.url,
    }
    return [server_role(["access:services!service=af-accounting"])]
