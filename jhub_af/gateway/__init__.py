"""dask-gateway-server plugin: options by group, a quota-aware backend, housekeeping.

- :class:`QuotaLocalBackend`, :class:`QuotaSlurmBackend`, :class:`QuotaKubeBackend`
  (and :class:`QuotaBackendMixin` for other database backends): clusters and workers
  reserved through af-accounting, a per-user cap on workers across all of a user's
  clusters, released on stop and crash;
- :func:`group_options`: the cluster options each group may choose;
- :func:`gateway_hub_config`: the gateway as a hub service behind the hub's proxy.
"""

# Set (to "quota") on the 422 that refuses a cluster over the user's quota. 422, not
# 403: dask_gateway's client raises ValueError(sentence) for a 422, so a notebook shows
# accounting's reason, while for a 403 it keeps only "Forbidden". The panel's server
# reads the header to tell a quota refusal from bad options.
QUOTA_REFUSAL_HEADER = "X-JHub-AF-Refused"

__all__ = [
    "QUOTA_REFUSAL_HEADER",
    "QuotaBackendMixin",
    "QuotaKubeBackend",
    "QuotaLocalBackend",
    "QuotaSlurmBackend",
    "gateway_hub_config",
    "group_options",
]


def __getattr__(name: str):
    # everything is imported where it is used: the hub config pulls in af-accounting's
    # handlers (JupyterHub), the backends dask-gateway-server; a user's server that
    # needs only QUOTA_REFUSAL_HEADER (the panel) imports none of it
    if name == "gateway_hub_config":
        from .hubconfig import gateway_hub_config

        return gateway_hub_config
    # the backend and options pull in dask-gateway-server (aiohttp, ...): import them
    # only where they run (the gateway), not in the hub's config or the CLI
    if name in ("QuotaBackendMixin", "QuotaLocalBackend"):
        from . import quota

        return getattr(quota, name)
    if name == "QuotaKubeBackend":
        from .kube import QuotaKubeBackend

        return QuotaKubeBackend
    if name == "QuotaSlurmBackend":
        from .slurm import QuotaSlurmBackend

        return QuotaSlurmBackend
    if name == "group_options":
        from .options import group_options

        return group_options
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
