"""The Dask Gateway as the panel's server sees it (:class:`PanelGateway`): dask_gateway's
own client with the notebook server's credentials, run off the event loop, its
failures turned into :class:`PanelError` sentences (:func:`_translate`)."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from jhub_af.gateway import QUOTA_REFUSAL_HEADER

from ..api import PanelError
from .options import OptionsError, apply_options, options_spec

# dask-gateway-server names clusters "<namespace>.<hex>"; anything else is refused
CLUSTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}(\.[A-Za-z0-9_-]{1,64}){0,2}$")
MAX_WORKERS = 10_000

GATEWAY_DOWN = (
    "The Dask Gateway cannot be reached right now, so nothing was changed. Your running "
    "clusters are not affected; try again in a minute, and tell the facility's admins "
    "if it lasts."
)
NOT_CONFIGURED = (
    "This notebook server does not know the facility's Dask Gateway (DASK_GATEWAY__ADDRESS "
    "is not set). Restart your server from the hub's home page; if that does not help, "
    "tell the facility's admins."
)
CREDENTIALS = (
    "The Dask Gateway refused this notebook server's credentials (they expire when the "
    "server is stopped or the token is revoked). Save your work, then stop and start your "
    "server from the hub's home page (File > Hub Control Panel) to get fresh ones."
)


def check_name(name: str) -> str:
    """``name`` if it looks like a gateway cluster name, so that it cannot change the
    gateway API's path; else :class:`PanelError` (400). Called by :class:`PanelGateway`."""
    if not isinstance(name, str) or not CLUSTER_NAME.match(name):
        raise PanelError(400, "That is not a Dask cluster name (like dask-gateway.1a2b3c).")
    return name


def check_count(value, what: str, allow_none: bool = False) -> int | None:
    """``value`` if it is a whole number of workers from 0 to ``MAX_WORKERS`` (or None
    when ``allow_none``); else :class:`PanelError` (400) naming ``what``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_WORKERS:
        raise PanelError(400, f"{what} must be a whole number of workers from 0 to {MAX_WORKERS}.")
    return value


class GatewayRefused(Exception):
    """What the gateway said when it refused a request: its own status (401, 403, or
    403 for a quota refusal) and the sentence of its JSON body. Raised by the client's
    ``_request``; turned into the panel's :class:`PanelError` by :func:`_translate`."""

    def __init__(self, gateway_status: int, sentence: str):
        super().__init__(sentence)
        self.gateway_status = gateway_status
        self.sentence = sentence


def _client_class():
    import aiohttp
    from dask_gateway import Gateway
    from dask_gateway.client import GatewayClusterError, GatewayServerError

    class PanelGatewayClient(Gateway):
        """dask_gateway's ``Gateway`` that keeps the gateway's sentence for a 401 or 403,
        and tells the quota backend's refusal of a cluster (a 422 with
        ``QUOTA_REFUSAL_HEADER``) from bad options; its own request method keeps the
        body only for 404, 409, 422 and 500, and does not read headers."""

        async def _request(self, method, url, json=None):
            if self._session is None:
                self._session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
            kwargs = self._request_kwargs
            resp = await self._session.request(method, url, json=json, **kwargs)
            if resp.status == 401:
                headers, context = self.auth.pre_request(resp)
                resp = await self._session.request(
                    method, url, json=json, headers=headers, **kwargs
                )
                self.auth.post_response(resp, context)
            if resp.status < 400:
                return resp
            try:
                msg = (await resp.json())["error"]
            except Exception:
                msg = (await resp.text())[:500]
            if resp.status in (401, 403):
                raise GatewayRefused(resp.status, str(msg))
            if resp.status == 422 and resp.headers.get(QUOTA_REFUSAL_HEADER):
                raise GatewayRefused(403, str(msg))  # over the quota, not bad options
            if resp.status in (404, 422):
                raise ValueError(msg)
            if resp.status == 409:
                raise GatewayClusterError(msg)
            if resp.status == 500:
                raise GatewayServerError(msg)
            resp.raise_for_status()

        async def post_action(self, cluster_name: str, action: str, body: dict) -> str | None:
            """POST ``clusters/{name}/{action}``; the reason when the gateway capped it."""
            url = f"{self.address}/api/v1/clusters/{cluster_name}/{action}"
            resp = await self._request("POST", url, json=body)
            try:
                msg = await resp.json()
            except Exception:
                return None
            if isinstance(msg, dict) and not msg.get("ok", True):
                return str(msg.get("msg") or "The request was capped by your Dask quota.")
            return None

    return PanelGatewayClient


def _translate(e: BaseException, name: str | None = None) -> PanelError:
    """The :class:`PanelError` for what dask_gateway's client raised while working on
    cluster ``name`` (if any): 400 bad options, 401 credentials to renew, 403 refused
    (the quota's reason), 404 no such cluster of this user (another user's included),
    409 not running, 502/503 the gateway failed or is down. Called by
    :meth:`PanelGateway._run`."""
    import aiohttp
    from dask_gateway.client import GatewayClusterError, GatewayServerError

    if isinstance(e, PanelError):
        return e
    if isinstance(e, OptionsError):
        return PanelError(400, str(e))
    if isinstance(e, GatewayRefused):
        if e.gateway_status == 401:
            return PanelError(401, CREDENTIALS)
        if name and "lacks permissions" in e.sentence:
            # another user's cluster: the same answer as for no cluster at all
            return PanelError(404, f"You have no Dask cluster named {name}.")
        # the quota backend refuses a cluster with af-accounting's reason
        return PanelError(403, e.sentence or "The Dask Gateway refused this request.")
    if isinstance(e, aiohttp.ClientResponseError):
        if e.status in (502, 503, 504):
            return PanelError(503, GATEWAY_DOWN)
        return PanelError(502, f"The Dask Gateway answered HTTP {e.status}: {e.message}")
    if isinstance(e, aiohttp.ClientError | OSError | asyncio.TimeoutError):
        return PanelError(503, GATEWAY_DOWN)
    if isinstance(e, GatewayClusterError):
        # "cluster X is not running": still starting, or already stopped
        return PanelError(
            409,
            f"Dask cluster {name or ''} is not running (still starting, or stopped); "
            "wait until the panel shows it running, then try again.".replace("  ", " "),
        )
    if isinstance(e, GatewayServerError):
        return PanelError(502, f"The Dask Gateway failed: {str(e)[:300]}")
    if isinstance(e, ValueError):
        text = str(e)
        if name and ("not found" in text.lower() or "does not exist" in text.lower()):
            return PanelError(404, f"You have no Dask cluster named {name}.")
        return PanelError(400, text[:500])
    return PanelError(500, f"The Dask Gateway request failed: {type(e).__name__}")


def _report(r) -> dict:
    return {
        "name": r.name,
        "status": r.status.name.lower(),
        "options": dict(r.options or {}),
        "dashboard_link": r.dashboard_link,
        "start_time": r.start_time.timestamp() if r.start_time else None,
        "stop_time": r.stop_time.timestamp() if r.stop_time else None,
        "workers": None,
        "cores": None,
        "memory": None,
    }


class PanelGateway:
    """The Dask tab's calls to the gateway: one ``dask_gateway.Gateway`` per notebook
    server, called from worker threads.

    ``Gateway()`` needs no arguments, as in a notebook: the spawner sets
    ``DASK_GATEWAY__ADDRESS``, ``DASK_GATEWAY__AUTH__TYPE=jupyterhub`` and the
    server's ``JUPYTERHUB_API_TOKEN``. The gateway decides which clusters are the
    user's. Every method raises :class:`PanelError`; the Dask tab's handlers call them.
    """

    def __init__(self, log=None):
        self.log = log
        self._gateway = None
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="jhub-af-dask")

    def gateway(self):
        """The shared client, made on first use; :class:`PanelError` (503) when this
        server's environment names no gateway or has no token."""
        with self._lock:
            if self._gateway is None:
                import dask

                if not dask.config.get("gateway.address", None):
                    raise PanelError(503, NOT_CONFIGURED)
                try:
                    self._gateway = _client_class()()
                except ValueError:  # no address or no token in this server's environment
                    raise PanelError(503, NOT_CONFIGURED) from None
            return self._gateway

    async def _run(self, fn, *args, name: str | None = None):
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, lambda: fn(*args))
        except Exception as e:
            err = _translate(e, name)
            if err.status >= 500 and self.log:
                self.log.warning("jhub_af dask: %s (%s: %s)", err.message, type(e).__name__, e)
            raise err from None

    # ---- the calls behind the handlers ---------------------------------------

    async def options(self) -> list[dict]:
        """The gateway's cluster options for this user, as ``options_spec`` lists them."""
        return await self._run(
            lambda: options_spec(self.gateway().cluster_options(use_local_defaults=False))
        )

    async def clusters(self) -> list[dict]:
        """The user's clusters (notebooks' included), oldest first, each as
        :func:`_report` with workers, cores and memory when the dashboard answers."""
        reports = await self._run(lambda: self.gateway().list_clusters())
        out = [_report(r) for r in reports]
        await asyncio.gather(*(self._add_workers(c) for c in out))
        return sorted(out, key=lambda c: c["start_time"] or 0)

    async def cluster(self, name: str) -> dict:
        """One of the user's clusters, as in :meth:`clusters`; 404 if it is not theirs."""
        check_name(name)
        out = _report(await self._run(lambda: self.gateway().get_cluster(name), name=name))
        await self._add_workers(out)
        return out

    async def create(self, values) -> dict:
        """A new cluster with the option ``values`` (a dict from the browser, checked
        against the gateway's options); answers it as :meth:`cluster` does."""

        def submit():
            g = self.gateway()
            options = apply_options(g.cluster_options(use_local_defaults=False), values)
            return g.submit(cluster_options=options)

        name = await self._run(submit)
        return await self.cluster(name)

    async def stop(self, name: str) -> None:
        """Stop the user's cluster ``name``; 404 if there is none."""
        check_name(name)

        def stop():
            g = self.gateway()
            g.get_cluster(name)  # the gateway stops unknown names silently: say so instead
            g.stop_cluster(name)

        await self._run(stop, name=name)

    async def scale(self, name: str, n) -> dict:
        """Ask for ``n`` workers; ``{"capped", "reason"}`` as :meth:`_capped` says."""
        check_name(name)
        n = check_count(n, "n")
        body = {"count": n}
        return await self._capped(name, "scale", body)

    async def adapt(self, name: str, minimum, maximum) -> dict:
        """Adapt between ``minimum`` and ``maximum`` workers (either may be None);
        ``{"capped", "reason"}`` as :meth:`_capped` says."""
        check_name(name)
        minimum = check_count(minimum, "minimum", allow_none=True)
        maximum = check_count(maximum, "maximum", allow_none=True)
        if minimum is not None and maximum is not None and minimum > maximum:
            raise PanelError(400, "The minimum must not be larger than the maximum.")
        body = {"minimum": minimum, "maximum": maximum, "active": True}
        return await self._capped(name, "adapt", body)

    async def _capped(self, name: str, action: str, body: dict) -> dict:
        """POST the scale/adapt request; the gateway answers ``{"ok": false, "msg": reason}``
        when the quota held it back (dask_gateway's own client only warns about it)."""

        def run():
            g = self.gateway()
            return g.sync(g.post_action, name, action, body)

        reason = await self._run(run, name=name)
        return {"capped": reason is not None, "reason": reason}

    async def _add_workers(self, cluster: dict) -> None:
        """Workers, cores and memory from the scheduler's dashboard (identity.json), read
        through the gateway's proxy; left empty when the dashboard does not answer."""
        link = cluster["dashboard_link"]
        if cluster["status"] != "running" or not link:
            return
        if not CLUSTER_NAME.match(cluster["name"]):
            return
        # the same route as the link, through the gateway's own (internal) address
        url = f"{self.gateway().address}/clusters/{cluster['name']}/json/identity.json"
        try:
            r = await AsyncHTTPClient().fetch(url, request_timeout=3, follow_redirects=False)
            workers = json.loads(r.body).get("workers", {})
        except (HTTPClientError, OSError, ValueError, asyncio.TimeoutError):
            return
        cluster["workers"] = len(workers)
        cluster["cores"] = sum(int(w.get("nthreads") or 0) for w in workers.values())
        cluster["memory"] = sum(int(w.get("memory_limit") or 0) for w in workers.values())
