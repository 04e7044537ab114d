"""The Data tab's REST handlers under ``{base_url}jhub-af/rucio/`` (see the panel contract).

Every handler is a jupyter-server APIHandler behind ``@tornado.web.authenticated``
(jupyter-server's auth, and its XSRF check on every POST). Rucio is asked with
the credentials of the instance's configuration, asynchronously; errors come back
as ``{"error": sentence}`` with 400/401/403/404/409/503.
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import json
import os
from pathlib import Path

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from traitlets import TraitError

from .client import RucioClient, RucioError
from .config import ConfigError, InstanceConfig, RucioPanel
from .downloads import Downloads
from .paths import TargetRefused, confine_target
from .snippet import preferred_pfn, scheme, uproot_snippet

DID_TYPES = ("all", "container", "dataset", "file")
DOWNLOAD_SCHEMES = ("https", "davs", "http", "file")


class RucioState:
    """What the handlers share: the parsed instances, their clients, the downloads."""

    def __init__(self, panel: RucioPanel | None, error: str = "", log=None):
        self.panel = panel
        self.config_error = error
        self.log = log
        user = os.environ.get("JUPYTERHUB_USER") or getpass.getuser()
        self.instances: dict[str, InstanceConfig] = panel.parsed_instances(user) if panel else {}
        self.clients: dict[str, RucioClient] = {}
        self.downloads = Downloads(log=log)

    def client(self, name: str) -> RucioClient:
        if self.config_error:
            raise RucioError(503, self.config_error)
        if name not in self.instances:
            raise RucioError(
                404,
                f"No Rucio instance named {name!r} is configured here; "
                f"the instances are: {sorted(self.instances) or 'none'}.",
            )
        if name not in self.clients:
            self.clients[name] = RucioClient(
                self.instances[name], timeout=self.panel.timeout_seconds, log=self.log
            )
        return self.clients[name]


class BadRequest(Exception):
    pass


def api(method):
    """Turn the errors a physicist can act on into ``{"error": ...}`` answers."""

    @functools.wraps(method)
    async def wrapper(self, *args, **kwargs):
        try:
            return await method(self, *args, **kwargs)
        except RucioError as e:
            self._error(e.status, e.message)
        except (BadRequest, TargetRefused) as e:
            self._error(400, str(e))

    return wrapper


class RucioHandler(APIHandler):
    @property
    def state(self) -> RucioState:
        return self.settings["jhub_af_rucio"]

    def _error(self, status: int, message: str) -> None:
        self.set_status(status)
        self.finish({"error": message})

    def write_error(self, status_code, **kwargs):
        # jupyter-server's own refusals (no login, no XSRF) in the panel's shape too
        exc = kwargs.get("exc_info", (None, None, None))[1]
        reason = getattr(exc, "log_message", None) or self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": reason, "message": reason}))

    def text_arg(self, key: str, limit: int = 1000) -> str:
        value = self.get_argument(key, "")
        if not value.strip():
            raise BadRequest(f"'{key}' is required.")
        if len(value) > limit or any(ord(c) < 32 for c in value):
            raise BadRequest(f"'{key}' is too long or holds control characters.")
        return value

    def paging(self) -> tuple[int, int]:
        panel = self.state.panel
        try:
            page = int(self.get_argument("page", "0"))
            size = int(self.get_argument("page_size", str(panel.page_size)))
        except ValueError:
            raise BadRequest("'page' and 'page_size' must be whole numbers.") from None
        if page < 0 or not 1 <= size <= panel.max_page_size:
            raise BadRequest(
                f"'page' must be 0 or more and 'page_size' 1 to {panel.max_page_size}."
            )
        return page, size

    def body(self) -> dict:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise BadRequest("The request body must be JSON.") from None
        if not isinstance(data, dict):
            raise BadRequest("The request body must be a JSON object.")
        return data

    @staticmethod
    def body_text(data: dict, key: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise BadRequest(f"'{key}' is required.")
        if len(value) > 1000 or any(ord(c) < 32 for c in value):
            raise BadRequest(f"'{key}' is too long or holds control characters.")
        return value


class InstancesHandler(RucioHandler):
    @tornado.web.authenticated
    @api
    async def get(self):
        if self.state.config_error:
            raise RucioError(503, self.state.config_error)
        self.finish({"instances": [i.public() for i in self.state.instances.values()]})


class DidsHandler(RucioHandler):
    @tornado.web.authenticated
    @api
    async def get(self, instance):
        client = self.state.client(instance)
        scope = self.text_arg("scope", 100)
        pattern = self.get_argument("pattern", "*") or "*"
        did_type = self.get_argument("type", "all")
        if did_type not in DID_TYPES:
            raise BadRequest(f"'type' must be one of {', '.join(DID_TYPES)}.")
        page, size = self.paging()
        items, more = await client.search(scope, pattern, did_type, page, size)
        self.finish({"items": items, "page": page, "page_size": size, "has_more": more})


class ContentsHandler(RucioHandler):
    @tornado.web.authenticated
    @api
    async def get(self, instance):
        client = self.state.client(instance)
        scope, name = self.text_arg("scope", 100), self.text_arg("name")
        page, size = self.paging()
        did = await client.get_did(scope, name, totals=False)
        if did["type"] == "file":
            raise BadRequest(
                f"{scope}:{name} is a file; it has no contents (ask for its replicas)."
            )
        # Rucio sums a large dataset's bytes while the page is read
        totals = asyncio.ensure_future(client.get_did(scope, name))
        try:
            items, more = await client.children(scope, name, did["type"], page, size)
            if did["type"] == "dataset":
                found = await client.replicas(items)
                for item in items:
                    item["replicas"] = found.get((item["scope"], item["name"]), [])
            did = await totals
        finally:
            totals.cancel()
        self.finish({"did": did, "items": items, "page": page, "page_size": size, "has_more": more})


async def _file_replicas(client: RucioClient, scope: str, name: str) -> tuple[dict, list[dict]]:
    did = await client.get_did(scope, name)
    if did["type"] != "file":
        raise BadRequest(f"{scope}:{name} is a {did['type']}; open it to see its files.")
    return did, (await client.replicas([did]))[(scope, name)]


def _chosen_pfn(replicas: list[dict], pfn: str | None, schemes=None) -> str | None:
    """The PFN asked for, which must be one of the file's replicas (never a URL the
    browser made up), or the preferred one."""
    pfns = [p for r in replicas for p in r["pfns"]]
    if pfn:
        if pfn not in pfns:
            raise BadRequest(
                "That PFN is not one of this file's replicas; pick one the panel lists."
            )
        return pfn
    if schemes:
        pfns = [p for p in pfns if scheme(p) in schemes]
    return preferred_pfn(pfns)


class ReplicasHandler(RucioHandler):
    @tornado.web.authenticated
    @api
    async def get(self, instance):
        client = self.state.client(instance)
        scope, name = self.text_arg("scope", 100), self.text_arg("name")
        _, replicas = await _file_replicas(client, scope, name)
        self.finish({"replicas": replicas})


class SnippetHandler(RucioHandler):
    @tornado.web.authenticated
    @api
    async def get(self, instance):
        client = self.state.client(instance)
        scope, name = self.text_arg("scope", 100), self.text_arg("name")
        _, replicas = await _file_replicas(client, scope, name)
        pfn = _chosen_pfn(replicas, self.get_argument("pfn", "") or None)
        if not pfn:
            raise RucioError(404, f"{scope}:{name} has no replica to open yet.")
        self.finish({"code": uproot_snippet(scope, name, pfn), "pfn": pfn})


class DownloadsHandler(RucioHandler):
    @tornado.web.authenticated
    @api
    async def post(self, instance):
        client = self.state.client(instance)
        data = self.body()
        scope, name = self.body_text(data, "scope"), self.body_text(data, "name")
        target = data.get("target")
        if not isinstance(target, str):
            raise BadRequest("'target' is required: a path relative to your home.")
        root = Path(self.state.panel.download_root)
        # checked before anything is asked or written (off the loop: homes may be on NFS)
        path = await asyncio.to_thread(confine_target, root, target, name)
        did, replicas = await _file_replicas(client, scope, name)
        pfn = _chosen_pfn(replicas, data.get("pfn") or None, DOWNLOAD_SCHEMES)
        if not pfn:
            raise BadRequest(
                f"{scope}:{name} has no replica the server can download (https or file); "
                "open it over XRootD with the snippet instead."
            )
        if scheme(pfn) not in DOWNLOAD_SCHEMES:
            raise BadRequest(
                f"Downloads read https:// or file:// replicas; for {scheme(pfn)}:// "
                "use the snippet."
            )
        real_root = Path(os.path.realpath(root))
        dl = self.state.downloads.start(client, pfn, path, real_root, did["bytes"])
        self.set_status(202)
        self.finish({"id": dl.id, "path": dl.public()["path"]})


class DownloadHandler(RucioHandler):
    @tornado.web.authenticated
    @api
    async def get(self, download_id):
        dl = self.state.downloads.get(download_id)
        if dl is None:
            raise RucioError(404, "No such download in this server (it may have restarted).")
        self.finish(dl.public())


class RulesHandler(RucioHandler):
    @tornado.web.authenticated
    @api
    async def post(self, instance):
        client = self.state.client(instance)
        data = self.body()
        scope, name = self.body_text(data, "scope"), self.body_text(data, "name")
        rse = self.body_text(data, "rse")
        conf = client.config
        if not conf.replica_requests:
            raise RucioError(
                403,
                f"Replica requests are not enabled for Rucio '{conf.name}' at this facility; "
                "ask your facility's admins.",
            )
        if rse not in conf.destination_rses:
            raise RucioError(
                403,
                f"Replicas may be requested only to {', '.join(conf.destination_rses)}, "
                f"not to {rse!r}.",
            )
        rule_id = await client.add_rule(scope, name, rse)
        self.set_status(201)
        self.finish({"rule_id": rule_id})


def rucio_handlers(serverapp) -> list[tuple]:
    """The Data tab's routes, with their shared state in the app's settings."""
    try:
        panel = RucioPanel(parent=serverapp)
        state = RucioState(panel, log=serverapp.log)
    except (ConfigError, ValueError, TraitError) as e:
        serverapp.log.error("jhub_af: the Rucio settings are wrong: %s", e)
        state = RucioState(
            None,
            error=f"The facility's Rucio settings are wrong ({e}); tell your facility's admins.",
            log=serverapp.log,
        )
    serverapp.web_app.settings["jhub_af_rucio"] = state
    base = url_path_join(serverapp.base_url, "jhub-af", "rucio")
    inst = r"(?P<instance>[A-Za-z0-9][A-Za-z0-9_.-]*)"
    return [
        (url_path_join(base, "instances"), InstancesHandler),
        (url_path_join(base, r"downloads/(?P<download_id>[0-9a-f]+)"), DownloadHandler),
        (url_path_join(base, inst, "dids"), DidsHandler),
        (url_path_join(base, inst, "contents"), ContentsHandler),
        (url_path_join(base, inst, "replicas"), ReplicasHandler),
        (url_path_join(base, inst, "snippet"), SnippetHandler),
        (url_path_join(base, inst, "downloads"), DownloadsHandler),
        (url_path_join(base, inst, "rules"), RulesHandler),
    ]
