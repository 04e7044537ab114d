"""The Dask tab's handlers under ``{base_url}jhub-af/dask/``, each a thin call to
:class:`PanelGateway`; routes in :func:`jhub_af.lab.dask.dask_handlers`."""

from __future__ import annotations

from ..api import PanelHandler, panel_api
from .gateway import PanelGateway


class DaskHandler(PanelHandler):
    """The Dask tab's base: the server's one :class:`PanelGateway`, authorized as
    ``jhub-af:dask``."""

    auth_resource = "jhub-af:dask"

    def initialize(self, gateway: PanelGateway):
        """Keep ``gateway``, the one given by :func:`jhub_af.lab.dask.dask_handlers`.
        Called by tornado for each request."""
        self.gateway = gateway


class OptionsHandler(DaskHandler):
    """``{base_url}jhub-af/dask/options``: GET; errors are the ``PanelError``
    of :class:`PanelGateway` (or of the body) as :func:`~jhub_af.lab.api.panel_api` answers it."""

    @panel_api
    async def get(self):
        """``GET options``: ``{"cluster_options": [{"field", "label", "default", "spec"}]}``,
        the gateway's options for this user with their bounds."""
        self.answer({"cluster_options": await self.gateway.options()})


class ClustersHandler(DaskHandler):
    """``{base_url}jhub-af/dask/clusters``: GET (list) and POST (create); errors are the
    ``PanelError`` of :class:`PanelGateway` (or of the body) as
    :func:`~jhub_af.lab.api.panel_api` answers it."""

    @panel_api
    async def get(self):
        """``GET clusters``: ``{"clusters": [...]}``, the user's pending and running
        clusters with status, workers, cores, memory and the dashboard link."""
        self.answer({"clusters": await self.gateway.clusters()})

    @panel_api
    async def post(self):
        """``POST clusters`` ``{"cluster_options": {...}}``: a new cluster (201)."""
        body = self.json_body()
        self.answer(await self.gateway.create(body.get("cluster_options", body)), 201)


class ClusterHandler(DaskHandler):
    """``{base_url}jhub-af/dask/clusters/{name}``: GET and DELETE; errors are the ``PanelError``
    of :class:`PanelGateway` (or of the body) as :func:`~jhub_af.lab.api.panel_api` answers it."""

    @panel_api
    async def get(self, name):
        """``GET clusters/{name}``: one cluster of the user's, or 404."""
        self.answer(await self.gateway.cluster(name))

    @panel_api
    async def delete(self, name):
        """``DELETE clusters/{name}``: stop it; ``{"name", "stopped": true}``."""
        await self.gateway.stop(name)
        self.answer({"name": name, "stopped": True})


class ScaleHandler(DaskHandler):
    """``{base_url}jhub-af/dask/clusters/{name}/scale``: POST; errors are the ``PanelError``
    of :class:`PanelGateway` (or of the body) as :func:`~jhub_af.lab.api.panel_api` answers it."""

    @panel_api
    async def post(self, name):
        """``POST clusters/{name}/scale`` ``{"n"}``: ``{"capped", "reason"}``, the reason
        being the gateway's when the user's Dask quota held the request back."""
        self.answer(await self.gateway.scale(name, self.json_body().get("n")))


class AdaptHandler(DaskHandler):
    """``{base_url}jhub-af/dask/clusters/{name}/adapt``: POST; errors are the ``PanelError``
    of :class:`PanelGateway` (or of the body) as :func:`~jhub_af.lab.api.panel_api` answers it."""

    @panel_api
    async def post(self, name):
        """``POST clusters/{name}/adapt`` ``{"minimum", "maximum"}``: as ``scale``."""
        body = self.json_body()
        self.answer(await self.gateway.adapt(name, body.get("minimum"), body.get("maximum")))
