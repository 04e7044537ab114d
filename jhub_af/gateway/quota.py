"""A quota-aware dask-gateway-server backend: every cluster and worker is reserved
through af-accounting, and a user's workers across all their clusters are capped.

dask-gateway-server clamps a cluster's worker count to ``cluster_max_workers`` in
three places: the scale and adapt routes (``forward_message_to_scheduler``), the
scheduler's heartbeat (``on_cluster_heartbeat``) and the point where workers are
created (``_check_cluster_scale``). :class:`QuotaBackendMixin` caps the count at the
same points by asking af-accounting for one ``dask-worker`` reservation per worker:
the count is what accounting granted. A worker is never refused at start (that
would count toward ``worker_start_failure_limit`` and fail the whole cluster).

Reservations are kept in the cluster's state in the gateway's database, so a
gateway restart keeps them; they are confirmed when the scheduler reports the
worker running (core-hours from then) and released when the worker or the cluster
stops, crashes included (a dead worker is reported closed by its scheduler; a dead
scheduler misses its heartbeats and the cluster is failed and stopped).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import time

from aiohttp import web
from dask_gateway_server.backends.local import UnsafeLocalBackend
from traitlets import Float, Instance

from jhub_af.accounting.client import (
    AccountingClient,
    AccountingRefused,
    AccountingUnavailable,
    QuotaDenied,
)

from . import QUOTA_REFUSAL_HEADER
from .housekeeping import HousekeepingMixin

# the reason a scale/adapt request was capped, read by the middleware of the same request
_capped_reason: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "jhub_af_capped_reason", default=None
)
STATE_KEY = "jhub_af"


class QuotaBackendMixin(HousekeepingMixin):
    """Mix into a ``DBBackendBase`` subclass (before it) to reserve through af-accounting."""

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

    # ---- the reservations each cluster holds -------------------------------------

    def _held(self, cluster) -> dict:
        """``{"cluster": rid, "free": [rid], "workers": {name: rid}, "confirmed": [rid],
        "lifetime": seconds}``"""
        if not hasattr(self, "_af_held"):
            self._af_held = {}
        if cluster.name not in self._af_held:
            saved = (cluster.state or {}).get(STATE_KEY) or {}
            self._af_held[cluster.name] = {
                "cluster": saved.get("cluster"),
                "free": list(saved.get("free", [])),
                "workers": dict(saved.get("workers", {})),
                "confirmed": list(saved.get("confirmed", [])),
                "lifetime": saved.get("lifetime"),
            }
        return self._af_held[cluster.name]

    def _save(self, cluster) -> None:
        held = json.loads(json.dumps(self._held(cluster)))
        self.db.update_cluster(cluster, state={**(cluster.state or {}), STATE_KEY: held})

    def _lock(self, cluster) -> asyncio.Lock:
        if not hasattr(self, "_af_locks"):
            self._af_locks = {}
        return self._af_locks.setdefault(cluster.name, asyncio.Lock())

    @staticmethod
    def _worker_resources(config) -> dict:
        return {"cores": float(config.worker_cores), "memory": int(config.worker_memory)}

    async def _release(self, rid: str | None, what: str) -> None:
        if not rid:
            return
        try:
            await self.accounting.release(rid)
        except Exception as e:  # logged and left to accounting's heartbeat_ttl
            self.log.warning("Could not release the reservation of %s: %s", what, e)

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
                        self._worker_resources(cluster.config),
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
                self._save(cluster)
            return min(wanted, have), reason

    # ---- the clamp points ----------------------------------------------------------

    async def start_cluster(self, user, cluster_options):
        # bad options are refused (422) before anything is reserved
        options, config = await self.process_cluster_options(user, cluster_options)
        try:
            r = await self.accounting.reserve(
                user.name,
                "dask-cluster",
                {"cores": float(config.scheduler_cores), "memory": int(config.scheduler_memory)},
            )
        except QuotaDenied as e:
            self.log.info("Cluster of %s refused by af-accounting: %s", user.name, e.message)
            # 422 with the sentence: dask_gateway's client shows it (ValueError)
            raise web.HTTPUnprocessableEntity(
                reason=e.message, headers={QUOTA_REFUSAL_HEADER: "quota"}
            ) from None
        except AccountingUnavailable as e:
            raise web.HTTPServiceUnavailable(reason=e.message) from None
        except AccountingRefused as e:  # e.g. a size accounting will not record
            raise web.HTTPUnprocessableEntity(reason=e.message) from None
        cluster = self.db.create_cluster(user.name, options, config.to_dict())
        lifetime = self.lifetime_of(user)
        self._held(cluster).update(cluster=r.id, lifetime=lifetime)
        self._save(cluster)
        self.log.info("Created cluster %s for user %s", cluster.name, user.name)
        self.record("cluster-created", cluster, cores=config.scheduler_cores, lifetime=lifetime)
        self.queue.put(cluster)
        return cluster.name

    async def forward_message_to_scheduler(self, cluster, msg):
        # The scheduler gets the user's wish unchanged and repeats it in every heartbeat,
        # where it is capped again: more workers start as the user's others stop.
        db_cluster = self.db.get_cluster(cluster.name)
        op = msg.get("op")
        wanted = msg.get("count") if op == "scale" else msg.get("minimum")
        if db_cluster is not None and op in ("scale", "adapt") and isinstance(wanted, int):
            count, reason = await self._cap(db_cluster, wanted, asked=True)
            if count < wanted:
                what = (
                    f"Scale request of {wanted}" if op == "scale" else f"Adapt minimum of {wanted}"
                )
                _capped_reason.set(
                    f"{what} workers exceeds your Dask quota: {reason} "
                    f"Scaling to {count} instead; more start when your other workers stop."
                )
        return await super().forward_message_to_scheduler(cluster, msg)

    async def on_cluster_heartbeat(self, cluster_name, msg):
        cluster = self.db.get_cluster(cluster_name)
        if cluster is not None and isinstance(msg.get("count"), int):
            count, _ = await self._cap(cluster, msg["count"])
            msg = {**msg, "count": count}
        await super().on_cluster_heartbeat(cluster_name, msg)
        if cluster is not None:
            self.note_activity(cluster, msg)
            await self._confirm_running(cluster)

    async def _check_cluster_scale(self, cluster):
        count, _ = await self._cap(cluster, cluster.count)
        if count != cluster.count:
            self.db.update_cluster(cluster, count=count)
        await super()._check_cluster_scale(cluster)

    def cluster_lifetime(self, cluster) -> float:
        lifetime = self._held(cluster)["lifetime"]
        return self.max_cluster_lifetime if lifetime is None else lifetime

    # ---- life cycle: attach, confirm, release ---------------------------------------

    async def do_start_cluster(self, cluster):
        async for state in super().do_start_cluster(cluster):
            yield {**state, STATE_KEY: json.loads(json.dumps(self._held(cluster)))}

    async def _cluster_to_running(self, cluster):
        await super()._cluster_to_running(cluster)
        held = self._held(cluster)
        if held["cluster"] and held["cluster"] not in held["confirmed"]:
            await self._confirm(cluster, held["cluster"], f"cluster {cluster.name}")

    async def do_start_worker(self, worker):
        cluster = worker.cluster
        async with self._lock(cluster):
            held = self._held(cluster)
            if worker.name not in held["workers"] and held["free"]:
                held["workers"][worker.name] = held["free"].pop()
                self._save(cluster)
        async for state in super().do_start_worker(worker):
            yield state

    async def _confirm(self, cluster, rid: str, what: str) -> None:
        try:
            await self.accounting.confirm(rid)
        except Exception as e:
            self.log.warning("Could not confirm the reservation of %s: %s", what, e)
            return
        self._held(cluster)["confirmed"].append(rid)
        self._save(cluster)

    async def _confirm_running(self, cluster) -> None:
        held = self._held(cluster)
        for name, rid in list(held["workers"].items()):
            worker = cluster.workers.get(name)
            running = worker is not None and worker.status.name == "RUNNING"
            if running and rid not in held["confirmed"]:
                await self._confirm(cluster, rid, f"worker {name}")

    async def _worker_to_stopped(self, worker):
        await super()._worker_to_stopped(worker)
        cluster = worker.cluster
        async with self._lock(cluster):
            held = self._held(cluster)
            rid = held["workers"].pop(worker.name, None)
            if rid in held["confirmed"]:
                held["confirmed"].remove(rid)
            if rid:
                self._save(cluster)
        await self._release(rid, f"worker {worker.name}")

    async def _cluster_to_stopped(self, cluster):
        await super()._cluster_to_stopped(cluster)
        async with self._lock(cluster):
            held = self._held(cluster)
            rids = list(held["workers"].values()) + held["free"] + [held["cluster"]]
            held.update(cluster=None, free=[], workers={}, confirmed=[])
            self._save(cluster)
        for rid in rids:
            await self._release(rid, f"cluster {cluster.name}")
        self.record("cluster-stopped", cluster, status=cluster.status.name)
        self._af_held.pop(cluster.name, None)
        getattr(self, "_af_denied", {}).pop(cluster.name, None)

    # ---- set-up: the client, the middleware, the heartbeat loop ----------------------

    async def setup(self, app):
        self.accounting = AccountingClient(parent=self, log=self.log)
        app.middlewares.append(_capped_middleware)
        await super().setup(app)
        self.task_pool.spawn(self._accounting_heartbeat_loop())
        self.setup_housekeeping()

    async def _accounting_heartbeat_loop(self):
        while True:
            await asyncio.sleep(self.accounting_heartbeat_interval)
            for cluster in list(self.db.active_clusters()):
                for rid in list(self._held(cluster)["confirmed"]):
                    try:
                        await self.accounting.heartbeat(rid)
                    except Exception as e:
                        self.log.warning("af-accounting heartbeat failed: %s", e)


@web.middleware
async def _capped_middleware(request, handler):
    token = _capped_reason.set(None)
    try:
        response = await handler(request)
        reason = _capped_reason.get()
        if reason and response.status == 200 and request.path.endswith(("/scale", "/adapt")):
            return web.json_response({"ok": False, "msg": reason})
        return response
    finally:
        _capped_reason.reset(token)


class QuotaLocalBackend(QuotaBackendMixin, UnsafeLocalBackend):
    """dask-gateway-server's UnsafeLocalBackend (clusters run as the gateway's own user:
    the demo and the tests) with af-accounting reservations and the per-user cap."""
