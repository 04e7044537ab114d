"""dask-gateway-server plugin: options by group, a quota-aware backend, housekeeping.

- :class:`QuotaLocalBackend`, :class:`QuotaSlurmBackend` (and
  :class:`QuotaBackendMixin` for other backends): clusters and workers reserved
  through af-accounting, a per-user cap on workers across all of a user's clusters,
  released on stop and crash;
- :func:`group_options`: the cluster options each group may choose;
- :func:`gateway_hub_config`: the gateway as a hub service behind the hub's proxy.
"""

from .hubconfig import gateway_hub_config

__all__ = [
    "QuotaBackendMixin",
    "QuotaLocalBackend",
    "QuotaSlurmBackend",
    "gateway_hub_config",
    "group_options",
]


def __getattr__(name: str):
    # the backend and options pull in dask-gateway-server (aiohttp, ...): import them
    # only where they run (the gateway), not in the hub's config or the CLI
    if name in ("QuotaBackendMixin", "QuotaLocalBackend"):
        from . import quota

        return getattr(quota, name)
    if name == "QuotaSlurmBackend":
        from .slurm import QuotaSlurmBackend

        return QuotaSlurmBackend
    if name == "group_options":
        from .options import group_options

        return group_options
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
