"""The af-accounting reservations a quota backend holds for each cluster.

Shared by the database backends (:mod:`jhub_af.gateway.db_base`) and Kubernetes
(:mod:`jhub_af.gateway.kube`): each cluster's reservations are a
:class:`HeldReservations`; the cap on workers, the refusal messages, confirm and
release are :class:`QuotaReservationsMixin`'s; where the reservations are kept and
what a worker costs are each backend's.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

from aiohttp import web
from traitlets import Float, Instance
from traitlets.config import Configurable

from jhub_af.accounting import (
    AccountingClient,
    AccountingRefused,
    AccountingUnavailable,
    QuotaDenied,
    Reservation,
)

from .refusal import QUOTA_REFUSAL_HEADER

# the reason a scale/adapt request was capped, read by the middleware of the same request
_capped_reason: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "jhub_af_capped_reason", default=None
)


@dataclass
class HeldReservations:
    """The af-accounting reservation ids one cluster holds.

    Saved (:meth:`to_saved`) in the cluster's state or its DaskCluster's annotation as
    a JSON object with these five keys, so a restarted gateway reads it back
    (:meth:`from_saved`).
    """

    #: the cluster's own ``dask-cluster`` reservation (None once released)
    cluster: str | None = None
    #: ``dask-worker`` reservations granted but not yet bound to a worker
    free: list[str] = field(default_factory=list)
    #: worker name -> the ``dask-worker`` reservation bound to it
    workers: dict[str, str] = field(default_factory=dict)
    #: reservations confirmed in af-accounting (core-hours counting): renewed by heartbeats
    confirmed: list[str] = field(default_factory=list)
    #: the cluster's maximum lifetime in seconds (0: none; None: the backend's default)
    lifetime: float | None = None

    @classmethod
    def from_saved(cls, saved: dict | None) -> HeldReservations:
        """The record saved by :meth:`to_saved` (missing keys empty; None: all empty)."""
        saved = saved or {}
        return cls(
            cluster=saved.get("cluster"),
            free=list(saved.get("free", [])),
            workers=dict(saved.get("workers", {})),
            confirmed=list(saved.get("confirmed", [])),
            lifetime=saved.get("lifetime"),
        )

    def to_saved(self) -> dict:
        """A JSON-ready copy: ``{"cluster", "free", "workers", "confirmed", "lifetime"}``."""
        return asdict(self)

    def count(self) -> int:
        """The worker reservations held, bound or not."""
        return len(self.free) + len(self.workers)

    def unconfirmed_cluster(self) -> str | None:
        """The cluster's own reservation if it is held and not yet confirmed."""
        if self.cluster and self.cluster not in self.confirmed:
            return self.cluster
        return None

    def take_all(self) -> list[str]:
        """Every reservation id held (workers', free, the cluster's); empties the record."""
        ids = [*self.workers.values(), *self.free, self.cluster]
        self.cluster, self.free, self.workers, self.confirmed = None, [], {}, []
        return [rid for rid in ids if rid]


class Refusal(NamedTuple):
    """af-accounting's last refusal of a worker for one cluster."""

    at: float  # time.monotonic() of the refusal
    reason: str


class QuotaReservationsMixin(Configurable):
    """The reservation bookkeeping of a quota backend, mixed in before the backend.

    Expects ``self.log``. A backend provides :meth:`_saved_reservations`,
    :meth:`_save_reservations`, :meth:`_worker_resources` and
    :meth:`_clusters_to_renew`, sets :attr:`accounting` in its ``setup`` and runs
    :meth:`_accounting_heartbeat_loop`; it calls :meth:`_reserve_cluster` in
    ``start_cluster``, :meth:`_cap` where dask-gateway-server decides a worker
    count, :meth:`_confirm` when a worker or cluster runs and the ``_release_*``
    methods when they stop.
    """

    accounting = Instance(AccountingClient, help="The af-accounting client (c.AccountingClient).")

    accounting_heartbeat_interval = Float(
        300.0,
        min=1.0,
        config=True,
        help="""
        Seconds between heartbeats that tell af-accounting the gateway's clusters and
        workers still run. Keep it well below the service's ``heartbeat_ttl`` (900 s by
        default): a reservation not renewed within that time ends at its last heartbeat.
        Default 300.
        """,
    )
    denied_retry_interval = Float(
        30.0,
        min=0.0,
        config=True,
        help="""
        After af-accounting refused a worker for a cluster, seconds before the gateway
        asks again for that cluster (the scheduler repeats its wish in every heartbeat;
        each refusal is counted in accounting's metrics). A scale request always asks at
        once. Default 30.
        """,
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # cluster name -> what it holds; read from where the backend saved it on first use
        self._held_by_cluster: dict[str, HeldReservations] = {}
        # cluster name -> its lock: a scale request and a heartbeat may cap at once
        self._locks: dict[str, asyncio.Lock] = {}
        # cluster name -> af-accounting's last refusal of a worker for it
        self._last_refusal: dict[str, Refusal] = {}

    # ---- what each backend provides -------------------------------------------------

    def _saved_reservations(self, cluster) -> dict | None:
        """The record saved for ``cluster`` (:meth:`HeldReservations.to_saved`) by an
        earlier gateway process, or None. Called the first time a cluster is seen."""
        return None

    async def _save_reservations(self, cluster, saved: dict) -> None:
        """Keep ``saved`` (:meth:`HeldReservations.to_saved`) where a restarted gateway
        finds it. Called after every change of ``cluster``'s reservations."""
        raise NotImplementedError

    def _worker_resources(self, cluster) -> dict:
        """What one worker of ``cluster`` reserves: ``{"cores": float, "memory": int}``."""
        raise NotImplementedError

    def _clusters_to_renew(self) -> list:
        """The clusters whose confirmed reservations the heartbeat loop renews."""
        raise NotImplementedError

    # ---- the reservations each cluster holds -------------------------------------

    def _held(self, cluster) -> HeldReservations:
        """What ``cluster`` holds (read from its saved record the first time)."""
        if cluster.name not in self._held_by_cluster:
            saved = self._saved_reservations(cluster)
            self._held_by_cluster[cluster.name] = HeldReservations.from_saved(saved)
        return self._held_by_cluster[cluster.name]

    async def _save(self, cluster) -> None:
        await self._save_reservations(cluster, self._held(cluster).to_saved())

    def _lock(self, cluster) -> asyncio.Lock:
        return self._locks.setdefault(cluster.name, asyncio.Lock())

    async def _release(self, rid: str | None, holder: str) -> None:
        """Release reservation ``rid`` (None: nothing) of ``holder`` (for the log)."""
        if not rid:
            return
        try:
            await self.accounting.release(rid)
        except Exception as e:  # logged and left to accounting's heartbeat_ttl
            self.log.warning("Could not release the reservation of %s: %s", holder, e)

    async def _reserve_cluster(self, username: str, cores: float, memory: int) -> Reservation:
        """Reserve the ``dask-cluster`` of a new cluster of ``username``.

        Returns the reservation. Raises the HTTP error a dask_gateway client shows:
        422 with accounting's sentence (and :data:`QUOTA_REFUSAL_HEADER`) over the
        quota, 422 for a size accounting will not record, 503 when accounting cannot
        be reached. Called by the backends' ``start_cluster``, before anything is made.
        """
        try:
            return await self.accounting.reserve(
                username, "dask-cluster", {"cores": float(cores), "memory": int(memory)}
            )
        except QuotaDenied as e:
            self.log.info("Cluster of %s refused by af-accounting: %s", username, e.message)
            # 422 with the sentence: dask_gateway's client shows it (ValueError)
            raise web.HTTPUnprocessableEntity(
                reason=e.message, headers={QUOTA_REFUSAL_HEADER: "quota"}
            ) from None
        except AccountingUnavailable as e:
            raise web.HTTPServiceUnavailable(reason=e.message) from None
        except AccountingRefused as e:  # e.g. a size accounting will not record
            raise web.HTTPUnprocessableEntity(reason=e.message) from None

    async def _cap(self, cluster, wanted: int, *, asked: bool = False) -> tuple[int, str | None]:
        """Hold exactly as many worker reservations as af-accounting grants, up to
        ``wanted``.

        Returns ``(count, reason)``: the workers ``cluster`` may have, and
        accounting's sentence when that is fewer than ``wanted``. ``asked``: a user's
        scale request, which asks accounting even right after a refusal (a heartbeat
        waits ``denied_retry_interval``). Never raises for accounting's answers.
        Called where dask-gateway-server decides a cluster's worker count.
        """
        async with self._lock(cluster):
            held = self._held(cluster)
            have = held.count()
            refusal = self._last_refusal.get(cluster.name)
            now = time.monotonic()
            recently = refusal is not None and now - refusal.at < self.denied_retry_interval
            if wanted > have and recently and not asked:
                return have, refusal.reason
            reason = None
            changed = False
            while wanted > have:
                try:
                    r = await self.accounting.reserve(
                        cluster.username,
                        "dask-worker",
                        self._worker_resources(cluster),
                        server=cluster.name,
                    )
                except (QuotaDenied, AccountingUnavailable, AccountingRefused) as e:
                    reason = e.message
                    self._last_refusal[cluster.name] = Refusal(now, reason)
                    break
                held.free.append(r.id)
                have += 1
                changed = True
            while wanted < have and held.free:
                await self._release(held.free.pop(), f"a worker of {cluster.name}")
                have -= 1
                changed = True
            if changed:
                await self._save(cluster)
            return min(wanted, have), reason

    async def _cap_request(self, cluster, msg: dict) -> None:
        """Cap a scale/adapt message's count; if capped, the route answers
        ``{"ok": false, "msg": sentence}`` (through :func:`capped_middleware`).

        The scheduler gets the user's wish unchanged and repeats it in every
        heartbeat, where it is capped again: more workers start as the user's others
        stop. Called by the backends' ``forward_message_to_scheduler``.
        """
        op = msg.get("op")
        wanted = msg.get("count") if op == "scale" else msg.get("minimum")
        if op not in ("scale", "adapt") or not isinstance(wanted, int):
            return
        count, reason = await self._cap(cluster, wanted, asked=True)
        if count < wanted:
            request = (
                f"Scale request of {wanted}" if op == "scale" else f"Adapt minimum of {wanted}"
            )
            _capped_reason.set(
                f"{request} workers exceeds your Dask quota: {reason} "
                f"Scaling to {count} instead; more start when your other workers stop."
            )

    async def _confirm(self, cluster, rid: str, holder: str) -> None:
        """Confirm ``rid`` (core-hours count from now) and record it as confirmed; on
        failure log it and leave it unconfirmed (tried again at the next chance)."""
        try:
            await self.accounting.confirm(rid)
        except Exception as e:
            self.log.warning("Could not confirm the reservation of %s: %s", holder, e)
            return
        self._held(cluster).confirmed.append(rid)
        await self._save(cluster)

    async def _release_worker(self, cluster, name: str) -> None:
        """Release the reservation bound to worker ``name`` (stopped, closed, gone)."""
        async with self._lock(cluster):
            held = self._held(cluster)
            rid = held.workers.pop(name, None)
            if rid in held.confirmed:
                held.confirmed.remove(rid)
            if rid:
                await self._save(cluster)
        await self._release(rid, f"worker {name}")

    async def _release_all(self, cluster) -> None:
        """Release every reservation ``cluster`` holds (it stopped or failed) and
        forget it."""
        async with self._lock(cluster):
            rids = self._held(cluster).take_all()
            await self._save(cluster)
        for rid in rids:
            await self._release(rid, f"cluster {cluster.name}")
        self._held_by_cluster.pop(cluster.name, None)
        self._last_refusal.pop(cluster.name, None)

    async def _accounting_heartbeat_loop(self):
        """Renew the confirmed reservations every ``accounting_heartbeat_interval``;
        runs until cancelled. Spawned by the backends' ``setup``."""
        while True:
            await asyncio.sleep(self.accounting_heartbeat_interval)
            await self._renew_reservations()

    async def _renew_reservations(self) -> None:
        for cluster in list(self._clusters_to_renew()):
            for rid in list(self._held(cluster).confirmed):
                try:
                    await self.accounting.heartbeat(rid)
                except Exception as e:
                    self.log.warning("af-accounting heartbeat failed: %s", e)


@web.middleware
async def capped_middleware(request, handler):
    """Answer a capped scale/adapt request with ``{"ok": false, "msg": sentence}``.

    An aiohttp middleware, added to dask-gateway-server's app by the backends'
    ``setup``; the sentence is the one :meth:`QuotaReservationsMixin._cap_request`
    set while handling the same request. Other responses pass unchanged.
    """
    token = _capped_reason.set(None)
    try:
        response = await handler(request)
        reason = _capped_reason.get()
        if reason and response.status == 200 and request.path.endswith(("/scale", "/adapt")):
            return web.json_response({"ok": False, "msg": reason})
        return response
    finally:
        _capped_reason.reset(token)
