"""The Dask tab's REST API under ``{base_url}jhub-af/dask/`` (see :mod:`jhub_af.lab.dask`)."""

from __future__ import annotations

import json

from jupyter_server.base.handlers import APIHandler
from tornado import web

from .gateway import GatewayError, PanelGateway

MAX_BODY = 16 * 1024


class DaskHandler(APIHandler):
    """jupyter-server auth (token or cookie + XSRF) on every method; JSON errors."""

    def initialize(self, gateway: PanelGateway):
        self.gateway = gateway

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = self._reason
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message}))

    def answer(self, body, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def body(self) -> dict:
        if len(self.request.body) > MAX_BODY:
            raise GatewayError(400, "The request is too large.")
        try:
            body = json.loads(self.request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise GatewayError(400, "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise GatewayError(400, "The request body must be a JSON object.")
        return body

    async def call(self, coro_fn, *args, status: int = 200):
        try:
            result = await coro_fn(*args)
        except GatewayError as e:
            return self.answer({"error": e.message}, e.status)
        self.answer(result if result is not None else {}, status)


class OptionsHandler(DaskHandler):
    @web.authenticated
    async def get(self):
        async def options():
            return {"cluster_options": await self.gateway.options()}

        await self.call(options)


class ClustersHandler(DaskHandler):
    @web.authenticated
    async def get(self):
        async def clusters():
            return {"clusters": await self.gateway.clusters()}

        await self.call(clusters)

    @web.authenticated
    async def post(self):
        async def create():
            body = self.body()
            return await self.gateway.create(body.get("cluster_options", body))

        await self.call(create, status=201)


class ClusterHandler(DaskHandler):
    @web.authenticated
    async def get(self, name):
        await self.call(self.gateway.cluster, name)

    @web.authenticated
    async def delete(self, name):
        async def stop():
            await self.gateway.stop(name)
            return {"name": name, "stopped": True}

        await self.call(stop)


class ScaleHandler(DaskHandler):
    @web.authenticated
    async def post(self, name):
        async def scale():
            return await self.gateway.scale(name, self.body().get("n"))

        await self.call(scale)


class AdaptHandler(DaskHandler):
    @web.authenticated
    async def post(self, name):
        async def adapt():
            body = self.body()
            return await self.gateway.adapt(name, body.get("minimum"), body.get("maximum"))

        await self.call(adapt)
