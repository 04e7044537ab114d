"""The batch job's call-back to the hub, accepting the port and nothing else.

batchspawner's own handler (``/hub/api/batchspawner``) sets *any* attribute of
the spawner that the job posts, so a user's job could rewrite its spawner's
command, IP or state. This handler takes the place of that route: the body
must be exactly ``{"port": N}`` with N a TCP port, and it goes to the backend
spawner behind the ProfileSpawner through ``accept_job_port``.
"""

from __future__ import annotations

import json

from jupyterhub import apihandlers
from jupyterhub.apihandlers import APIHandler
from tornado import web

ROUTE = r"/api/batchspawner"


class JobCallbackHandler(APIHandler):
    @web.authenticated
    def post(self):
        token = self.get_auth_token()
        spawners = getattr(self.current_user, "spawners", None) or {}  # services have none
        spawner = next((s for s in spawners.values() if token and s.api_token == token), None)
        if spawner is None:
            raise web.HTTPError(403, "This token belongs to no server of this user.")
        backend = getattr(spawner, "backend_spawner", spawner)
        data = self.get_json_body()
        if not isinstance(data, dict) or set(data) != {"port"}:
            raise web.HTTPError(400, 'The job may send only {"port": N}.')
        port = data["port"]
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise web.HTTPError(400, "port must be a whole number from 1 to 65535.")
        if not hasattr(backend, "accept_job_port"):
            raise web.HTTPError(400, "This server is not a batch job.")
        backend.accept_job_port(port)
        self.set_status(201)
        self.finish(json.dumps({"message": "port received"}))


def install() -> None:
    """Put JobCallbackHandler where batchspawner's handler is (or would be)."""
    import batchspawner  # noqa: F401 (registers its handler, which we replace)

    handlers = apihandlers.default_handlers
    handlers[:] = [h for h in handlers if h[0] != ROUTE]
    handlers.append((ROUTE, JobCallbackHandler))
