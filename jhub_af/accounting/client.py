"""The client the hub and the Dask Gateway use to ask af-accounting for reservations:
:class:`AccountingClient`, the :class:`Reservation` it grants, and its three errors."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Bool, Float, Integer, Unicode
from traitlets.config import LoggingConfigurable

UNREACHABLE = (
    "The facility's quota service cannot be reached, so nothing can be started right now. "
    "Try again in a few minutes; if it lasts, tell the facility's admins."
)


class QuotaDenied(web.HTTPError):
    """403: the reservation would exceed a limit; ``message`` names it."""

    def __init__(self, message: str, reason: str = ""):
        super().__init__(403, "%s", message, reason="Quota exceeded")
        self.message = message
        self.quota_reason = reason
        # JupyterHub shows this on the spawn-pending page instead of a traceback
        self.jupyterhub_message = message


class AccountingUnavailable(web.HTTPError):
    """503: the service is unreachable (or its database is) and the client fails closed."""

    def __init__(self, message: str = UNREACHABLE, *, refused: bool = False):
        super().__init__(503, "%s", message, reason="Quota service unavailable")
        self.message = message
        # the connection was refused: nothing listens (yet), so a retry cannot double-book
        self.refused = refused
        self.jupyterhub_message = message


class AccountingRefused(web.HTTPError):
    """Another refusal from the service (bad request, not yours, replayed release)."""

    def __init__(self, status: int, message: str):
        super().__init__(status, "%s", message)
        self.message = message


@dataclass(frozen=True)
class Reservation:
    """A granted reservation; ``id`` is None when the client failed open."""

    id: str | None
    user: str
    kind: str
    resources: dict = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def degraded(self) -> bool:
        """Granted without the service (fail open): nothing to confirm, renew or release."""
        return self.id is None


class AccountingClient(LoggingConfigurable):
    """The REST API of af-accounting, configured by ``c.AccountingClient.*``.

    When the service cannot be reached it fails closed (the default:
    :class:`AccountingUnavailable`, a sentence a physicist can read; nothing starts)
    or, with ``fail_open``, logs a warning and grants a :class:`Reservation` whose
    ``id`` is None; the service's next reconcile records what runs. A refusal is
    :class:`QuotaDenied`, a 403 whose message names the limit.
    """

    url = Unicode(
        "",
        config=True,
        help="""
        The af-accounting API, e.g. http://127.0.0.1:10101/services/af-accounting/api/v1/
        (the service's own address, or the hub's public URL + /services/af-accounting/api/v1/).
        """,
    )
    api_token = Unicode(
        "",
        config=True,
        help="""
        A hub token with the scope custom:jhub-af:accounting-reserve (and
        access:services!service=af-accounting): the api_token of a token-only service
        such as af-spawner, or the Dask Gateway's. Never logged.
        """,
    )
    fail_open = Bool(
        False,
        config=True,
        help="""
        What to do when the service cannot be reached. False (the default): refuse to
        start anything, with a clear message (fail closed). True: start anyway, log a
        warning, and let the service's reconcile with the hub record the server later.
        """,
    )
    timeout = Float(
        30.0,
        config=True,
        help="""
        Seconds to wait for the service (default 30). It asks the hub who the user is, and
        a hub busy with a burst of spawns can take seconds to answer: a spawn that waits
        is better than one refused as unreachable.
        """,
    )
    starting_wait = Float(
        10.0,
        config=True,
        help="""
        Seconds a reservation keeps retrying while the service refuses connections
        (default 10): the hub starts af-accounting as a managed service and answers
        requests a moment before the service listens, and restarts it if it crashes.
        Only then is the service unreachable (fail closed or open). 0 does not retry.
        """,
    )
    heartbeat_interval = Float(
        300.0,
        config=True,
        help="""
        Seconds between a running server's heartbeats (sent from the spawner's poll,
        so never more often than c.Spawner.poll_interval). Default 300: well inside
        the service's heartbeat_ttl (900), whose reconcile also renews every server
        the hub lists.
        """,
    )
    max_requests = Integer(
        64,
        config=True,
        help="""
        Requests to the service in flight at once, per client (default 64). Each client
        has its own HTTP client: tornado's shared one allows only 10, and a burst of
        spawns would otherwise wait in its queue behind the hub's own requests and time
        out. (Each spawner's SpawnReservation holds its own client, which sends one
        request at a time; the Dask Gateway's client sends many.)
        """,
    )

    @property
    def http(self) -> AsyncHTTPClient:
        """This client's own tornado HTTP client (``max_requests`` at once), made on first use."""
        if getattr(self, "_http", None) is None:
            self._http = AsyncHTTPClient(force_instance=True, max_clients=self.max_requests)
        return self._http

    async def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        if not self.url:
            raise AccountingUnavailable("AccountingClient.url is not set; tell the admins.")
        request = HTTPRequest(
            self.url.rstrip("/") + "/" + path,
            method=method,
            headers={
                "Authorization": f"token {self.api_token}",
                "Content-Type": "application/json",
            },
            body=json.dumps(body) if body is not None else (b"" if method == "POST" else None),
            request_timeout=self.timeout,
            connect_timeout=self.timeout,
            allow_nonstandard_methods=True,
        )
        try:
            response = await self.http.fetch(request)
        except HTTPClientError as e:
            if e.code == 599 or e.response is None:
                raise AccountingUnavailable() from None
            try:
                data = json.loads(e.response.body)
                message = data.get("error", "")
            except (ValueError, AttributeError):
                data, message = {}, e.response.body[:200].decode("utf8", "replace")
            if e.code == 403 and "reason" in data:
                raise QuotaDenied(message, data["reason"]) from None
            if e.code in (502, 503, 504):
                raise AccountingUnavailable() from None
            raise AccountingRefused(e.code, message) from None
        except ConnectionRefusedError:
            raise AccountingUnavailable(refused=True) from None
        except OSError:
            raise AccountingUnavailable() from None
        return json.loads(response.body)

    async def _reserve_call(self, body: dict) -> dict:
        deadline = time.monotonic() + self.starting_wait
        while True:
            try:
                return await self._call("POST", "reservations", body)
            except AccountingUnavailable as e:
                if not e.refused or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(0.5)

    async def reserve(self, user: str, kind: str, resources: dict, server: str = "") -> Reservation:
        """Ask for a reservation of ``resources`` (``{"cores", "memory", "gpus"}``) for
        ``user``'s ``kind`` (``server``, ``dask-cluster``, ``dask-worker``) named ``server``.

        Retries for ``starting_wait`` seconds while the service refuses connections.
        Returns the granted :class:`Reservation` (``id`` None when it failed open); logs
        the service's quota warnings. Raises :class:`QuotaDenied` (403),
        :class:`AccountingUnavailable` (503, fail closed) or :class:`AccountingRefused`.
        Called by :class:`jhub_af.accounting.SpawnReservation` and the Dask Gateway.
        """
        body = {"user": user, "kind": kind, "resources": resources, "server": server}
        try:
            data = await self._reserve_call(body)
        except AccountingUnavailable:
            if not self.fail_open:
                raise
            self.log.warning(
                "af-accounting unreachable: starting %s of %s without a reservation (fail-open)",
                kind,
                user,
            )
            return Reservation(None, user, kind, resources)
        for warning in data.get("warnings", []):
            self.log.info("Quota warning for %s: %s", user, warning)
        return Reservation(data["id"], user, kind, data["resources"], tuple(data["warnings"]))

    async def _follow_up(self, method: str, path: str, rid: str | None) -> dict | None:
        if rid is None:
            return None  # a fail-open start: nothing to confirm, renew or release
        try:
            return await self._call(method, path)
        except AccountingUnavailable:
            if not self.fail_open:
                raise
            self.log.warning("af-accounting unreachable for %s %s (fail-open)", method, path)
            return None

    async def confirm(self, rid: str | None) -> dict | None:
        """The reserved thing started. Returns the reservation's JSON, or None when
        ``rid`` is None or the service is unreachable and the client fails open.
        Raises :class:`AccountingUnavailable` (fail closed) or :class:`AccountingRefused`
        (e.g. 409: it lapsed). Called by SpawnReservation and the Dask Gateway."""
        return await self._follow_up("POST", f"reservations/{rid}/confirm", rid)

    async def heartbeat(self, rid: str | None) -> dict | None:
        """The reserved thing still runs: renew it. Returns and raises as :meth:`confirm`."""
        return await self._follow_up("POST", f"reservations/{rid}/heartbeat", rid)

    async def release(self, rid: str | None) -> dict | None:
        """The reserved thing stopped (or never started): close it. Returns and raises as
        :meth:`confirm` (a second release is a 409 :class:`AccountingRefused`)."""
        return await self._follow_up("DELETE", f"reservations/{rid}", rid)
