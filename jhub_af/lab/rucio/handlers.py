"""The Data tab's handlers under ``{base_url}jhub-af/rucio/`` (:func:`rucio_handlers`),
sharing one :class:`RucioState`; errors in the panel's shape (:mod:`jhub_af.lab.api`)."""

from __future__ import annotations

import asyncio
import getpass
import os
from pathlib import Path

from jupyter_server.utils import url_path_join
from traitlets import TraitError

from ..api import PanelError, PanelHandler, panel_api
from .client import RucioClient
from .config import ConfigError, InstanceConfig, RucioPanel
from .downloads import Downloads
from .paths import TargetRefused, confine_target
from .snippet import preferred_pfn, scheme, uproot_snippet

DID_TYPES = ("all", "container", "dataset", "file")
DOWNLOAD_SCHEMES = ("https", "davs", "http", "file")


class RucioState:
    """What the handlers share: the parsed instances, their clients, the downloads.

    ``panel`` is None and ``error`` the sentence to answer when the settings are wrong.
    """

    def __init__(self, panel: RucioPanel | None, error: str = "", log=None):
        self.panel = panel
        self.config_error = error
        self.log = log
        user = os.environ.get("JUPYTERHUB_USER") or getpass.getuser()
        self.instances: dict[str, InstanceConfig] = panel.parsed_instances(user) if panel else {}
        self.clients: dict[str, RucioClient] = {}
        self.downloads = Downloads(log=log)

    def client(self, name: str) -> RucioClient:
        """The client of the instance ``name``, made on first use; :class:`PanelError`
        503 when the settings are wrong, 404 when no instance has that name."""
        if self.config_error:
            raise PanelError(503, self.config_error)
        if name not in self.instances:
            raise PanelError(
                404,
                f"No Rucio instance named {name!r} is configured here; "
                f"the instances are: {sorted(self.instances) or 'none'}.",
            )
        if name not in self.clients:
            self.clients[name] = RucioClient(
                self.instances[name], timeout=self.panel.timeout_seconds, log=self.log
            )
        return self.clients[name]


def bad_request(message: str) -> PanelError:
    """The 400 answer for a request a physicist (or the panel) got wrong."""
    return PanelError(400, message)


class RucioHandler(PanelHandler):
    """The Data tab's base: the shared :class:`RucioState`, authorized as
    ``jhub-af:rucio``, and the checks of query arguments and bodies (400 each)."""

    auth_resource = "jhub-af:rucio"

    def initialize(self, state: RucioState):
        """Keep ``state``, the one given by :func:`rucio_handlers`. Called by tornado
        for each request."""
        self.state = state

    def text_arg(self, key: str, limit: int = 1000) -> str:
        """The query argument ``key``: required, at most ``limit`` characters, no
        control characters."""
        value = self.get_argument(key, "")
        if not value.strip():
            raise bad_request(f"'{key}' is required.")
        if len(value) > limit or any(ord(c) < 32 for c in value):
            raise bad_request(f"'{key}' is too long or holds control characters.")
        return value

    def paging(self) -> tuple[int, int]:
        """``(page, page_size)`` from the query, within the panel's ``max_page_size``."""
        panel = self.state.panel
        try:
            page = int(self.get_argument("page", "0"))
            size = int(self.get_argument("page_size", str(panel.page_size)))
        except ValueError:
            raise bad_request("'page' and 'page_size' must be whole numbers.") from None
        if page < 0 or not 1 <= size <= panel.max_page_size:
            raise bad_request(
                f"'page' must be 0 or more and 'page_size' 1 to {panel.max_page_size}."
            )
        return page, size

    @staticmethod
    def body_text(data: dict, key: str) -> str:
        """``data[key]``: a required string, as :meth:`text_arg` checks it."""
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise bad_request(f"'{key}' is required.")
        if len(value) > 1000 or any(ord(c) < 32 for c in value):
            raise bad_request(f"'{key}' is too long or holds control characters.")
        return value


class InstancesHandler(RucioHandler):
    """``{base_url}jhub-af/rucio/instances``: GET; 503 when the settings are wrong."""

    @panel_api
    async def get(self):
        """``GET instances``: ``{"instances": [...]}``, each without its secrets."""
        if self.state.config_error:
            raise PanelError(503, self.state.config_error)
        self.answer({"instances": [i.public() for i in self.state.instances.values()]})


class DidsHandler(RucioHandler):
    """``{base_url}jhub-af/rucio/{instance}/dids``: GET; 400 for a bad query, 404 for
    an unknown instance, 503 when the settings are wrong, else the client's errors."""

    @panel_api
    async def get(self, instance):
        """``GET {instance}/dids?scope&pattern&type&page&page_size``: one page of a
        search, ``{"items", "page", "page_size", "has_more"}``."""
        client = self.state.client(instance)
        scope = self.text_arg("scope", 100)
        pattern = self.get_argument("pattern", "*") or "*"
        did_type = self.get_argument("type", "all")
        if did_type not in DID_TYPES:
            raise bad_request(f"'type' must be one of {', '.join(DID_TYPES)}.")
        page, size = self.paging()
        items, more = await client.search(scope, pattern, did_type, page, size)
        self.answer({"items": items, "page": page, "page_size": size, "has_more": more})


class ContentsHandler(RucioHandler):
    """``{base_url}jhub-af/rucio/{instance}/contents``: GET; 400 for a bad query or a
    file, 404 for an unknown instance, 503 when the settings are wrong, else the
    client's errors."""

    @panel_api
    async def get(self, instance):
        """``GET {instance}/contents?scope&name&page&page_size``: a collection with its
        totals and one page of its children (a dataset's files with their replicas)."""
        client = self.state.client(instance)
        scope, name = self.text_arg("scope", 100), self.text_arg("name")
        page, size = self.paging()
        did = await client.get_did(scope, name, totals=False)
        if did["type"] == "file":
            raise bad_request(
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
        self.answer({"did": did, "items": items, "page": page, "page_size": size, "has_more": more})


async def _file_replicas(client: RucioClient, scope: str, name: str) -> tuple[dict, list[dict]]:
    did = await client.get_did(scope, name)
    if did["type"] != "file":
        raise bad_request(f"{scope}:{name} is a {did['type']}; open it to see its files.")
    return did, (await client.replicas([did]))[(scope, name)]


def _chosen_pfn(replicas: list[dict], pfn: str | None, schemes=None) -> str | None:
    """The PFN asked for, which must be one of the file's replicas (never a URL the
    browser made up), or the preferred one."""
    pfns = [p for r in replicas for p in r["pfns"]]
    if pfn:
        if pfn not in pfns:
            raise bad_request(
                "That PFN is not one of this file's replicas; pick one the panel lists."
            )
        return pfn
    if schemes:
        pfns = [p for p in pfns if scheme(p) in schemes]
    return preferred_pfn(pfns)


class ReplicasHandler(RucioHandler):
    """``{base_url}jhub-af/rucio/{instance}/replicas``: GET; 400 for a bad query or
    not a file, 404 for an unknown instance, 503 when the settings are wrong, else the
    client's errors."""

    @panel_api
    async def get(self, instance):
        """``GET {instance}/replicas?scope&name``: ``{"replicas": [{"rse", "pfns"}]}``
        of one file."""
        client = self.state.client(instance)
        scope, name = self.text_arg("scope", 100), self.text_arg("name")
        _, replicas = await _file_replicas(client, scope, name)
        self.answer({"replicas": replicas})


class SnippetHandler(RucioHandler):
    """``{base_url}jhub-af/rucio/{instance}/snippet``: GET; 400 for a bad query, not a
    file or a PFN not among its replicas, 404 for an unknown instance or no replica,
    503 when the settings are wrong, else the client's errors."""

    @panel_api
    async def get(self, instance):
        """``GET {instance}/snippet?scope&name[&pfn]``: ``{"code", "pfn"}``, the uproot
        code that opens the file (the PFN asked for, or the preferred one)."""
        client = self.state.client(instance)
        scope, name = self.text_arg("scope", 100), self.text_arg("name")
        _, replicas = await _file_replicas(client, scope, name)
        pfn = _chosen_pfn(replicas, self.get_argument("pfn", "") or None)
        if not pfn:
            raise PanelError(404, f"{scope}:{name} has no replica to open yet.")
        self.answer({"code": uproot_snippet(scope, name, pfn), "pfn": pfn})


class DownloadsHandler(RucioHandler):
    """``{base_url}jhub-af/rucio/{instance}/downloads``: POST; 400 for a bad body,
    target or PFN, or not a file, 404 for an unknown instance, 503 when the settings
    are wrong, else the client's errors."""

    @panel_api
    async def post(self, instance):
        """``POST {instance}/downloads`` ``{"scope", "name", "target"[, "pfn"]}``: start
        downloading the file to ``target`` inside the download root (202, ``{"id",
        "path"}``); the target is checked before anything is asked or written."""
        client = self.state.client(instance)
        data = self.json_body()
        scope, name = self.body_text(data, "scope"), self.body_text(data, "name")
        target = data.get("target")
        if not isinstance(target, str):
            raise bad_request("'target' is required: a path relative to your home.")
        root = Path(self.state.panel.download_root)
        # checked before anything is asked or written (off the loop: homes may be on NFS)
        try:
            path = await asyncio.to_thread(confine_target, root, target, name)
        except TargetRefused as e:
            raise bad_request(str(e)) from None
        did, replicas = await _file_replicas(client, scope, name)
        pfn = _chosen_pfn(replicas, data.get("pfn") or None, DOWNLOAD_SCHEMES)
        if not pfn:
            raise bad_request(
                f"{scope}:{name} has no replica the server can download (https, davs, http "
                "or file); "
                "open it over XRootD with the snippet instead."
            )
        if scheme(pfn) not in DOWNLOAD_SCHEMES:
            raise bad_request(
                f"Downloads read https://, davs://, http:// or file:// replicas; for "
                f"{scheme(pfn)}:// use the snippet."
            )
        real_root = Path(os.path.realpath(root))
        dl = self.state.downloads.start(client, pfn, path, real_root, did["bytes"])
        self.answer({"id": dl.id, "path": dl.public()["path"]}, 202)


class DownloadHandler(RucioHandler):
    """``{base_url}jhub-af/rucio/downloads/{id}``: GET; 404 for a download this server
    does not know."""

    @panel_api
    async def get(self, download_id):
        """``GET downloads/{id}``: the download's state, bytes and error."""
        dl = self.state.downloads.get(download_id)
        if dl is None:
            raise PanelError(404, "No such download in this server (it may have restarted).")
        self.answer(dl.public())


class RulesHandler(RucioHandler):
    """``{base_url}jhub-af/rucio/{instance}/rules``: POST; 400 for a bad body, 403 when
    the instance does not allow it, 404 for an unknown instance, 503 when the settings
    are wrong, else the client's errors."""

    @panel_api
    async def post(self, instance):
        """``POST {instance}/rules`` ``{"scope", "name", "rse"}``: a replica rule (201,
        ``{"rule_id"}``), if the instance allows requests to that RSE (else 403)."""
        client = self.state.client(instance)
        data = self.json_body()
        scope, name = self.body_text(data, "scope"), self.body_text(data, "name")
        rse = self.body_text(data, "rse")
        conf = client.config
        if not conf.replica_requests:
            raise PanelError(
                403,
                f"Replica requests are not enabled for Rucio '{conf.name}' at this facility; "
                "ask your facility's admins.",
            )
        if rse not in conf.destination_rses:
            raise PanelError(
                403,
                f"Replicas may be requested only to {', '.join(conf.destination_rses)}, "
                f"not to {rse!r}.",
            )
        rule_id = await client.add_rule(scope, name, rse)
        self.answer({"rule_id": rule_id}, 201)


def rucio_handlers(serverapp) -> list[tuple]:
    """The Data tab's routes for ``serverapp.web_app.add_handlers``, sharing one
    :class:`RucioState` from ``c.RucioPanel``; when those settings are wrong, every
    route answers 503 with a sentence naming the setting. Called by ``jhub_af.lab``."""
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
    kw = {"state": state}
    base = url_path_join(serverapp.base_url, "jhub-af", "rucio")
    inst = r"(?P<instance>[A-Za-z0-9][A-Za-z0-9_.-]*)"
    return [
        (url_path_join(base, "instances"), InstancesHandler, kw),
        (url_path_join(base, r"downloads/(?P<download_id>[0-9a-f]+)"), DownloadHandler, kw),
        (url_path_join(base, inst, "dids"), DidsHandler, kw),
        (url_path_join(base, inst, "contents"), ContentsHandler, kw),
        (url_path_join(base, inst, "replicas"), ReplicasHandler, kw),
        (url_path_join(base, inst, "snippet"), SnippetHandler, kw),
        (url_path_join(base, inst, "downloads"), DownloadsHandler, kw),
        (url_path_join(base, inst, "rules"), RulesHandler, kw),
    ]
