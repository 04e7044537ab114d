"""af-accounting's RBAC scopes: who may reserve, who may read everyone's usage.

Light on purpose (no JupyterHub, no SQLAlchemy): the hub config, the gateway and
the service itself all import these names.
"""

RESERVE_SCOPE = "custom:jhub-af:accounting-reserve"
READ_SCOPE = "custom:jhub-af:accounting-read"
# for c.JupyterHub.custom_scopes
ACCOUNTING_SCOPES = {
    RESERVE_SCOPE: {
        "description": "Make, confirm, renew and release quota reservations for any user "
        "(the hub's spawner and the Dask Gateway).",
    },
    READ_SCOPE: {"description": "Read every user's and group's usage and the metrics."},
}
