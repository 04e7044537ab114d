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

The bookkeeping (the cap, the messages, confirm, release) is shared with the
Kubernetes backend: :mod:`jhub_af.gateway.reservations`.
"""

from __future__ import annotations

from jhub_af.accounting import AccountingClient

from .housekeeping import HousekeepingMixin
from .reservations import QuotaReservationsMixin, capped_middleware

STATE_KEY = "jhub_af"


class QuotaBackendMixin(QuotaReservationsMixin, HousekeepingMixin):
    """Mix into a ``DBBackendBase`` subclass (before it) to reserve through af-accounting."""

    # ---- where the reservations are kept: the cluster's state in the database -------

    def _saved_reservations(self, cluster) -> dict | None:
        return (cluster.state or {}).get(STATE_KEY)

    async def _save_reservations(self, cluster, saved: dict) -> None:
        self.db.update_cluster(cluster, state={**(cluster.state or {}), STATE_KEY: saved})

    def _worker_resources(self, cluster) -> dict:
        config = cluster.config
        return {"cores": float(config.worker_cores), "memory": int(config.worker_memory)}

    def _clusters_to_renew(self) -> list:
        return list(self.db.active_clusters())

    # ---- the clamp points ----------------------------------------------------------

    async def start_cluster(self, user, cluster_options):
        # bad options are refused (422) before anything is reserved
        options, config = await self.process_cluster_options(user, cluster_options)
        r = await self._reserve_cluster(user.name, config.scheduler_cores, config.scheduler_memory)
        cluster = self.db.create_cluster(user.name, options, config.to_dict())
        lifetime = self.lifetime_of(user)
        held = self._held(cluster)
        held.cluster, held.lifetime = r.id, lifetime
        await self._save(cluster)
        self.log.info("Created cluster %s for user %s", cluster.name, user.name)
        self.record("cluster-created", cluster, cores=config.scheduler_cores, lifetime=lifetime)
        self.queue.put(cluster)
        return cluster.name

    async def forward_message_to_scheduler(self, cluster, msg):
        db_cluster = self.db.get_cluster(cluster.name)
        if db_cluster is not None:
            await self._cap_request(db_cluster, msg)
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
        lifetime = self._held(cluster).lifetime
        return self.max_cluster_lifetime if lifetime is None else lifetime

    # ---- life cycle: attach, confirm, release ---------------------------------------

    async def do_start_cluster(self, cluster):
        async for state in super().do_start_cluster(cluster):
            yield {**state, STATE_KEY: self._held(cluster).to_saved()}

    async def _cluster_to_running(self, cluster):
        await super()._cluster_to_running(cluster)
        rid = self._held(cluster).unconfirmed_cluster()
        if rid:
            await self._confirm(cluster, rid, f"cluster {cluster.name}")

    async def do_start_worker(self, worker):
        cluster = worker.cluster
        async with self._lock(cluster):
            held = self._held(cluster)
            if worker.name not in held.workers and held.free:
                held.workers[worker.name] = held.free.pop()
                await self._save(cluster)
        async for state in super().do_start_worker(worker):
            yield state

    async def _confirm_running(self, cluster) -> None:
        held = self._held(cluster)
        for name, rid in list(held.workers.items()):
            worker = cluster.workers.get(name)
            running = worker is not None and worker.status.name == "RUNNING"
            if running and rid not in held.confirmed:
                await self._confirm(cluster, rid, f"worker {name}")

    async def _worker_to_stopped(self, worker):
        await super()._worker_to_stopped(worker)
        await self._release_worker(worker.cluster, worker.name)

    async def _cluster_to_stopped(self, cluster):
        await super()._cluster_to_stopped(cluster)
        await self._release_all(cluster)
        self.record("cluster-stopped", cluster, status=cluster.status.name)

    # ---- set-up: the client, the middleware, the heartbeat loop ----------------------

    async def setup(self, app):
        self.accounting = AccountingClient(parent=self, log=self.log)
        app.middlewares.append(capped_middleware)
        await super().setup(app)
        self.task_pool.spawn(self._accounting_heartbeat_loop())
        self.setup_housekeeping()
