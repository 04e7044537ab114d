"""The Dask Gateway plugin: dask-gateway-server with af-accounting quotas.

This face is light (no dask-gateway-server, no Kubernetes client): the hub's config
and the users' servers import it. It holds:

- :data:`QUOTA_REFUSAL_HEADER`: marks a cluster refused for quota (the panel reads it);
- :func:`gateway_hub_config`: the hub's side, the gateway as a hub service.

The gateway's own classes are named by their module, as dask-gateway-server names
its backends (``dask_gateway_server.backends.kubernetes.KubeBackend``), so that only
the gateway process loads dask-gateway-server:

- :class:`jhub_af.gateway.local.QuotaLocalBackend`, processes of the gateway's user;
- :class:`jhub_af.gateway.slurm.QuotaSlurmBackend`, Slurm jobs of each user;
- :class:`jhub_af.gateway.kube.QuotaKubeBackend`, pods made by dask-gateway's
  controller;
- :class:`jhub_af.gateway.db_base.QuotaBackendMixin`, the same for any other
  database backend (mixed in before it);
- :func:`jhub_af.gateway.options.group_options`, the cluster options each group may
  choose;
- :class:`jhub_af.gateway.auth.HubAuthenticator`, JupyterHub tokens with a 401 and a
  sentence for a refused one.
"""

from .hubconfig import gateway_hub_config
from .refusal import QUOTA_REFUSAL_HEADER

__all__ = ["QUOTA_REFUSAL_HEADER", "gateway_hub_config"]
