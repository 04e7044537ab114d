"""The quota backend that runs clusters as processes of the gateway's own user."""

from __future__ import annotations

from dask_gateway_server.backends.local import UnsafeLocalBackend

from .db_base import QuotaBackendMixin


class QuotaLocalBackend(QuotaBackendMixin, UnsafeLocalBackend):
    """dask-gateway-server's ``UnsafeLocalBackend`` (clusters run as the gateway's own
    user: the demo and the tests) with af-accounting reservations and the per-user cap.

    Named in the gateway's config as
    ``c.DaskGateway.backend_class = "jhub_af.gateway.local.QuotaLocalBackend"``.
    """
