"""dask-gateway-server plugin: options by group, a quota-aware backend, housekeeping.

- :class:`QuotaLocalBackend` (and :class:`QuotaBackendMixin` for other backends):
  clusters and workers reserved through af-accounting, a per-user cap on workers
  across all of a user's clusters, released on stop and crash;
- :func:`group_options`: the cluster options each group may choose;
- :func:`gateway_hub_config`: the gateway as a hub service behind the hub's proxy.
"""

from .hubconfig import gateway_hub_config
from .options import group_options
from .quota import QuotaBackendMixin, QuotaLocalBackend

__all__ = ["QuotaBackendMixin", "QuotaLocalBackend", "gateway_hub_config", "group_options"]
