"""The Dask tab of the JupyterLab panel: the user's Dask Gateway clusters.

Handlers under ``{base_url}jhub-af/dask/`` in the user's server, each behind
jupyter-server's authentication (a token, or the session cookie with XSRF):

- ``GET options``: the gateway's cluster options for this user, with their bounds
  (``{"cluster_options": [{"field", "label", "default", "spec"}]}``);
- ``GET clusters``: the user's pending and running clusters, notebooks' included,
  with status, workers, cores, memory and the dashboard link;
- ``POST clusters`` ``{"cluster_options": {...}}``: a new cluster (201);
- ``GET`` / ``DELETE clusters/{name}``: one cluster; stop it;
- ``POST clusters/{name}/scale`` ``{"n"}`` and ``clusters/{name}/adapt``
  ``{"minimum", "maximum"}``: answer ``{"capped", "reason"}``, the reason being the
  gateway's when the user's Dask quota held the request back.

Errors are ``{"error": sentence}`` with 400 (bad input), 401 (credentials to renew),
403 (refused by the quota), 404 (no such cluster), 503 (gateway down).
"""

from __future__ import annotations

from .gateway import GatewayError, PanelGateway
from .handlers import AdaptHandler, ClusterHandler, ClustersHandler, OptionsHandler, ScaleHandler

__all__ = ["GatewayError", "PanelGateway", "dask_handlers"]

_NAME = r"([^/]+)"


def dask_handlers(serverapp) -> list[tuple]:
    """The Dask tab's routes for ``serverapp.web_app.add_handlers``."""
    base = serverapp.base_url.rstrip("/") + "/jhub-af/dask"
    kw = {"gateway": PanelGateway(log=serverapp.log)}
    return [
        (base + "/options", OptionsHandler, kw),
        (base + "/clusters", ClustersHandler, kw),
        (base + f"/clusters/{_NAME}", ClusterHandler, kw),
        (base + f"/clusters/{_NAME}/scale", ScaleHandler, kw),
        (base + f"/clusters/{_NAME}/adapt", AdaptHandler, kw),
    ]
