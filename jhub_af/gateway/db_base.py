"""Quota reservations for dask-gateway-server's database backends (``DBBackendBase``:
local processes, Slurm and the other jobqueue backends): :class:`QuotaBackendMixin`.

The bookkeeping it shares with Kubernetes is :mod:`jhub_af.gateway.reservations`;
lifetimes and the event record are :mod:`jhub_af.gateway.housekeeping`.
"""

from __future__ import annotations

from jhub_af.accounting import AccountingClient

from .housekeeping import HousekeepingMixin
from .reservations import QuotaReservationsMixin, capped_middleware

# the key of the cluster's state (in the gateway's database) that holds its reservations
STATE_KEY = "jhub_af"


class QuotaBackendMixin(QuotaReservationsMixin, HousekeepingMixin):
    """Mix into a ``DBBackendBase`` subclass (before it) to reserve every cluster and
    worker through af-accounting and cap a user's workers across all their clusters.

    dask-gateway-server clamps a cluster's worker count to ``cluster_max_workers`` at
    three points, and this mixin caps it at the same three by asking af-accounting for
    one ``dask-worker`` reservation per worker (the count is what accounting granted):
    :meth:`forward_message_to_scheduler`, :meth:`on_cluster_heartbeat`,
    :meth:`_check_cluster_scale`. Reservations are kept in the cluster's state in the
    gateway's database, so a gateway restart keeps them; they are confirmed when the
    scheduler reports a worker running and released when the worker or the cluster
    stops, crashes included (a dead worker is reported closed by its scheduler; a
    dead scheduler misses its heartbeats and the cluster is failed and stopped).
    """

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
        """Reserve the cluster in af-accounting, then create it; return its name.

        Called by dask-gateway-server's API when ``user`` asks for a new cluster. Bad
        options are refused (422) before anything is reserved; a refusal by
        accounting raises the HTTP error of :meth:`_reserve_cluster` and creates
        nothing. The cluster's lifetime by group is taken now and kept with it.
        """
        options, config = await self.process_cluster_options(user, cluster_options)
        reservation = await self._reserve_cluster(
            user.name, config.scheduler_cores, config.scheduler_memory
        )
        cluster = self.db.create_cluster(user.name, options, config.to_dict())
        lifetime = self.lifetime_of(user)
        held = self._held(cluster)
        held.cluster, held.lifetime = reservation.id, lifetime
        await self._save(cluster)
        self.log.info("Created cluster %s for user %s", cluster.name, user.name)
        self.record("cluster-created", cluster, cores=config.scheduler_cores, lifetime=lifetime)
        self.queue.put(cluster)
        return cluster.name

    async def forward_message_to_scheduler(self, cluster, msg):
        """Cap a scale/adapt request (:meth:`_cap_request`), then forward it unchanged.

        Called by dask-gateway-server's scale and adapt routes.
        """
        db_cluster = self.db.get_cluster(cluster.name)
        if db_cluster is not None:
            await self._cap_request(db_cluster, msg)
        return await super().forward_message_to_scheduler(cluster, msg)

    async def on_cluster_heartbeat(self, cluster_name, msg):
        """Cap the worker count the scheduler asks for, then let dask-gateway-server
        act on it; confirm the workers the scheduler reports running.

        Called by dask-gateway-server for every heartbeat of a cluster's scheduler.
        """
        cluster = self.db.get_cluster(cluster_name)
        if cluster is not None and isinstance(msg.get("count"), int):
            count, _ = await self._cap(cluster, msg["count"])
            msg = {**msg, "count": count}
        await super().on_cluster_heartbeat(cluster_name, msg)
        if cluster is not None:
            self.note_activity(cluster, msg)
            await self._confirm_running(cluster)

    async def _check_cluster_scale(self, cluster):
        # dask-gateway-server's last clamp before it creates workers
        count, _ = await self._cap(cluster, cluster.count)
        if count != cluster.count:
            self.db.update_cluster(cluster, count=count)
        await super()._check_cluster_scale(cluster)

    def cluster_lifetime(self, cluster) -> float:
        """The lifetime kept with ``cluster`` at its start, or ``max_cluster_lifetime``
        for a cluster started without one. Called by housekeeping."""
        lifetime = self._held(cluster).lifetime
        return self.max_cluster_lifetime if lifetime is None else lifetime

    # ---- life cycle: attach, confirm, release ---------------------------------------

    async def do_start_cluster(self, cluster):
        """Start the scheduler as the backend does, adding the held reservations to
        every state it yields (dask-gateway-server saves the last one as the cluster's
        state). Called by dask-gateway-server's reconciler."""
        async for state in super().do_start_cluster(cluster):
            yield {**state, STATE_KEY: self._held(cluster).to_saved()}

    async def _cluster_to_running(self, cluster):
        await super()._cluster_to_running(cluster)
        rid = self._held(cluster).unconfirmed_cluster()
        if rid:
            await self._confirm(cluster, rid, f"cluster {cluster.name}")

    async def do_start_worker(self, worker):
        """Bind a granted worker reservation to ``worker``, then start it as the
        backend does. A worker without one still starts (refusing it would count
        toward ``worker_start_failure_limit`` and fail the whole cluster); :meth:`_cap`
        keeps their number within what was granted. Called by the reconciler."""
        cluster = worker.cluster
        async with self._lock(cluster):
            held = self._held(cluster)
            if worker.name not in held.workers and held.free:
                held.workers[worker.name] = held.free.pop()
                await self._save(cluster)
        async for state in super().do_start_worker(worker):
            yield state

    async def _confirm_running(self, cluster) -> None:
        """Confirm the reservations of ``cluster``'s workers that now run."""
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
        """Make the af-accounting client, add :func:`capped_middleware`, set the
        backend up, and start the heartbeat and housekeeping loops. Called by
        dask-gateway-server when the gateway starts."""
        self.accounting = AccountingClient(parent=self, log=self.log)
        app.middlewares.append(capped_middleware)
        await super().setup(app)
        self.task_pool.spawn(self._accounting_heartbeat_loop())
        self.setup_housekeeping()
