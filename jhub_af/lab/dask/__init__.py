"""The Dask tab of the JupyterLab panel: the user's Dask Gateway clusters.

- :func:`dask_handlers`: the routes under ``{base_url}jhub-af/dask/``
  (:mod:`.handlers`), which ``jhub_af.lab`` adds to the user's server;
- :class:`PanelGateway`: the calls to the gateway behind them (:mod:`.gateway`);
- :mod:`.options`: the browser's option values checked against the gateway's.

Errors are the panel's shape (:mod:`jhub_af.lab.api`).
"""

from __future__ import annotations

from .gateway import PanelGateway
from .handlers import AdaptHandler, ClusterHandler, ClustersHandler, OptionsHandler, ScaleHandler

__all__ = ["PanelGateway", "dask_handlers"]

CLUSTER_IN_PATH = r"([^/]+)"


def dask_handlers(serverapp) -> list[tuple]:
    """The Dask tab's routes for ``serverapp.web_app.add_handlers``, sharing one
    :class:`PanelGateway`. Called by ``jhub_af.lab`` when jupyter-server loads it."""
    base = serverapp.base_url.rstrip("/") + "/jhub-af/dask"
    kw = {"gateway": PanelGateway(log=serverapp.log)}
    return [
        (base + "/options", OptionsHandler, kw),
        (base + "/clusters", ClustersHandler, kw),
        (base + f"/clusters/{CLUSTER_IN_PATH}", ClusterHandler, kw),
        (base + f"/clusters/{CLUSTER_IN_PATH}/scale", ScaleHandler, kw),
        (base + f"/clusters/{CLUSTER_IN_PATH}/adapt", AdaptHandler, kw),
    ]
