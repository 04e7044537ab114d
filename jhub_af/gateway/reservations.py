"""The af-accounting reservations a quota backend holds for each cluster, shared by
the database backends (:mod:`jhub_af.gateway.db_base`) and Kubernetes
(:mod:`jhub_af.gateway.kube`).

Each cluster holds ``{"cluster": rid, "free": [rid], "workers": {name: rid},
"confirmed": [rid], "lifetime": seconds}``: its ``dask-cluster`` reservation, worker
reservations granted but not yet bound to a worker, the ones bound to a worker, and
those confirmed (core-hours counting). A backend says where the held reservations
are kept (:meth:`QuotaReservationsMixin._saved_reservations`, ``_save_reservations``:
the cluster's state in the gateway's database, or an annotation of the DaskCluster
object) and what one worker costs (``_worker_resources``); the cap, the refusal
messages, confirm and release are here, once.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import time

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


def empty_held(saved: dict | None = None) -> dict:
    """A cluster's held reservations, from what was saved (or nothing)."""
    saved = saved or {}
    return {
        "cluster": saved.get("cluster"),
        "free": list(saved.get("free", [])),
        "workers": dict(saved.get("workers", {})),
        "confirmed": list(saved.get("confirmed", [])),
        "lifetime": saved.get("lifetime"),
    }


class QuotaReservationsMixin(Configurable):
    """The reservation bookkeeping of a quota backend (mixed in before the backend);
    expects ``self.log``."""

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

    # ---- what each backend provides -------------------------------------------------

    def _saved_reservations(self, cluster) -> dict | None:
        """The held reservations saved for ``cluster`` (after a restart), if any."""
        return None

    async def _save_reservations(self, cluster, held: dict) -> None:
        """Keep ``held`` where a restarted gateway finds it."""
        raise NotImplementedError

    def _worker_resources(self, cluster) -> dict:
        """What one worker of ``cluster`` reserves: ``{"cores": .., "memory": ..}``."""
        raise NotImplementedError

    def _clusters_to_renew(self) -> list:
        """The clusters whose confirmed reservations the heartbeat loop renews."""
        raise NotImplementedError

    # ---- the reservations each cluster holds -------------------------------------

    def _held(self, cluster) -> dict:
        if not hasattr(self, "_af_held"):
            self._af_held = {}
        if cluster.name not in self._af_held:
            self._af_held[cluster.name] = empty_held(self._saved_reservations(cluster))
        return self._af_held[cluster.name]

    async def _save(self, cluster) -> None:
        await self._save_reservations(cluster, json.loads(json.dumps(self._held(cluster))))

    def _lock(self, cluster) -> asyncio.Lock:
        if not hasattr(self, "_af_locks"):
            self._af_locks = {}
        return self._af_locks.setdefault(cluster.name, asyncio.Lock())

    async def _release(self, rid: str | None, what: str) -> None:
        if not rid:
            return
        try:
            await self.accounting.release(rid)
        except Exception as e:  # logged and left to accounting's heartbeat_ttl
            self.log.warning("Could not release the reservation of %s: %s", what, e)

    async def _reserve_cluster(self, username: str, cores: float, memory: int) -> Reservation:
        """The ``dask-cluster`` reservation of a new cluster, or the HTTP error a
        dask_gateway client shows: 422 with the sentence (and QUOTA_REFUSAL_HEADER)
        over the quota, 503 when accounting cannot be reached."""
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
        """Hold exactly as many worker reservations as granted up to ``wanted``; return
        (count, reason): the count the cluster may have, and why it is less, if it is."""
        async with self._lock(cluster):
            held = self._held(cluster)
            have = len(held["free"]) + len(held["workers"])
            reason = None
            now = time.monotonic()
            last_denied = getattr(self, "_af_denied", {}).get(cluster.name)
            recently = last_denied and now - last_denied[0] < self.denied_retry_interval
            if wanted > have and recently and not asked:
                return have, last_denied[1]
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
                    if not hasattr(self, "_af_denied"):
                        self._af_denied = {}
                    self._af_denied[cluster.name] = (now, reason)
                    break
                held["free"].append(r.id)
                have += 1
                changed = True
            while wanted < have and held["free"]:
                await self._release(held["free"].pop(), f"a worker of {cluster.name}")
                have -= 1
                changed = True
            if changed:
                await self._save(cluster)
            return min(wanted, have), reason

    async def _cap_request(self, cluster, msg: dict) -> None:
        """Cap a scale/adapt message's count; if capped, the route answers
        ``{"ok": false, "msg": sentence}`` (through :func:`capped_middleware`). The
        scheduler gets the user's wish unchanged and repeats it in every heartbeat,
        where it is capped again: more workers start as the user's others stop."""
        op = msg.get("op")
        wanted = msg.get("count") if op == "scale" else msg.get("minimum")
        if op not in ("scale", "adapt") or not isinstance(wanted, int):
            return
        count, reason = await self._cap(cluster, wanted, asked=True)
        if count < wanted:
            what = f"Scale request of {wanted}" if op == "scale" else f"Adapt minimum of {wanted}"
            _capped_reason.set(
                f"{what} workers exceeds your Dask quota: {reason} "
                f"Scaling to {count} instead; more start when your other workers stop."
            )

    async def _confirm(self, cluster, rid: str, what: str) -> None:
        try:
            await self.accounting.confirm(rid)
        except Exception as e:
            self.log.warning("Could not confirm the reservation of %s: %s", what, e)
            return
        self._held(cluster)["confirmed"].append(rid)
        await self._save(cluster)

    async def _release_worker(self, cluster, name: str) -> None:
        """Release the reservation bound to worker ``name`` (stopped, closed, gone)."""
        async with self._lock(cluster):
            held = self._held(cluster)
            rid = held["workers"].pop(name, None)
            if rid in held["confirmed"]:
                held["confirmed"].remove(rid)
            if rid:
                await self._save(cluster)
        await self._release(rid, f"worker {name}")

    async def _release_all(self, cluster) -> None:
        """Release every reservation ``cluster`` holds (it stopped or failed)."""
        async with self._lock(cluster):
            held = self._held(cluster)
            rids = list(held["workers"].values()) + held["free"] + [held["cluster"]]
            held.update(cluster=None, free=[], workers={}, confirmed=[])
            await self._save(cluster)
        for rid in rids:
            await self._release(rid, f"cluster {cluster.name}")
        self._af_held.pop(cluster.name, None)
        getattr(self, "_af_denied", {}).pop(cluster.name, None)

    async def _accounting_heartbeat_loop(self):
        while True:
            await asyncio.sleep(self.accounting_heartbeat_interval)
            await self._renew_reservations()

    async def _renew_reservations(self) -> None:
        for cluster in list(self._clusters_to_renew()):
            for rid in list(self._held(cluster)["confirmed"]):
                try:
                    await self.accounting.heartbeat(rid)
                except Exception as e:
                    self.log.warning("af-accounting heartbeat failed: %s", e)


@web.middleware
async def capped_middleware(request, handler):
    """Answer a capped scale/adapt request with ``{"ok": false, "msg": sentence}``."""
    token = _capped_reason.set(None)
    try:
        response = await handler(request)
        reason = _capped_reason.get()
        if reason and response.status == 200 and request.path.endswith(("/scale", "/adapt")):
            return web.json_response({"ok": False, "msg": reason})
        return response
    finally:
        _capped_reason.reset(token)
