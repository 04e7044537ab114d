"""The batch job's call-back to the hub, accepting the port and nothing else.

:class:`JobCallbackHandler` takes the place of batchspawner's
``/hub/api/batchspawner`` handler once the hub config calls
:func:`install_job_callback`; :func:`job_callback_installed` tells the batch
spawners whether it did.
"""

from __future__ import annotations

import json

from jupyterhub import apihandlers
from jupyterhub.apihandlers import APIHandler
from tornado import web

ROUTE = r"/api/batchspawner"

NOT_INSTALLED = (
    "This hub does not guard the batch job's call-back, so it refuses to submit batch "
    "jobs: the facility's admin must add `from jhub_af.spawner import "
    "install_job_callback; install_job_callback()` to jupyterhub_config.py "
    "(see docs/admin/profiles.md)."
)


class JobCallbackHandler(APIHandler):
    """``POST /hub/api/batchspawner`` from a batch job: ``{"port": N}`` and nothing else.

    batchspawner's own handler sets *any* attribute of the spawner that the job
    posts, so a user's job could rewrite its spawner's command, IP or state. This
    one answers 403 when the token belongs to no server of the user, 400 when the
    body is anything but ``{"port": N}`` with N a TCP port, and otherwise gives
    the port to the backend spawner behind the ProfileSpawner through
    ``accept_job_port`` (201).
    """

    @web.authenticated
    def post(self):
        """Called by tornado for the job's POST (see the class)."""
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


def install_job_callback() -> None:
    """Serve the batch job's call-back with :class:`JobCallbackHandler`, not batchspawner's.

    Patches ``jupyterhub.apihandlers.default_handlers``: imports batchspawner
    (whose import appends its own handler there), removes every handler of
    ``/api/batchspawner`` and appends ours. The hub builds its web application
    from that list once, after reading its config, so this must be called from
    ``jupyterhub_config.py``; called later it changes nothing the hub serves.
    Idempotent; returns nothing.

    Called by the hub config of every facility with slurm or condor profiles
    (the demo's and the Helm values' included). Without it the guarded batch
    spawners refuse to start (:func:`job_callback_installed`).
    """
    import batchspawner  # noqa: F401 (registers its handler, which we replace)

    handlers = apihandlers.default_handlers
    handlers[:] = [h for h in handlers if h[0] != ROUTE]
    handlers.append((ROUTE, JobCallbackHandler))


def job_callback_installed() -> bool:
    """Whether :func:`install_job_callback` is the only handler of the job's call-back.

    Called by :meth:`jhub_af.spawner.batch.BatchGuards.start` before submitting a job.
    """
    served = [h[1] for h in apihandlers.default_handlers if h[0] == ROUTE]
    return served == [JobCallbackHandler]
