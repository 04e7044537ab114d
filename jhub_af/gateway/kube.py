"""Quota reservations for dask-gateway-server's ``KubeBackend``:
:class:`QuotaKubeBackend`, with the bookkeeping of :mod:`jhub_af.gateway.reservations`.

Housekeeping (:mod:`jhub_af.gateway.housekeeping`) reads the gateway's database and is
not part of this backend; on Kubernetes the chart's own idle timeout
(``ClusterConfig.idle_timeout``, which the options handler sets by group) applies.
"""

from __future__ import annotations

import json

from dask_gateway_server import models
from dask_gateway_server.backends.kubernetes.backend import KubeBackend
from dask_gateway_server.utils import TaskPool
from kubernetes_asyncio.client.rest import ApiException

from jhub_af.accounting import AccountingClient

from .reservations import HeldReservations, QuotaReservationsMixin, capped_middleware

# the DaskCluster object's annotation that holds its reservations (JSON)
ANNOTATION = "jhub-af/reservations"


def saved_reservations(obj: dict | None) -> dict | None:
    """The saved :class:`~jhub_af.gateway.reservations.HeldReservations` record in the
    annotation of DaskCluster object ``obj``; None without one or if it is not JSON."""
    text = ((obj or {}).get("metadata") or {}).get("annotations", {}).get(ANNOTATION)
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


class QuotaKubeBackend(QuotaReservationsMixin, KubeBackend):
    """dask-gateway-server's ``KubeBackend`` with af-accounting reservations and the
    per-user cap on workers across clusters.

    ``KubeBackend`` is not a database backend: ``start_cluster`` creates a
    ``DaskCluster`` custom object, and dask-gateway's controller (a separate pod)
    makes the scheduler and worker pods from it. The API server decides the number
    of workers once, in :meth:`on_cluster_heartbeat` (it patches ``/spec/replicas``),
    so the cap is there and at the scale/adapt routes: one ``dask-worker``
    reservation per replica.

    The reservations are kept in the object's annotation ``jhub-af/reservations``
    (set at creation, merge-patched at every change), so a restarted API server pod
    finds them in its informer's objects and keeps the cap. If the annotation is
    lost, the restarted gateway never renews or releases those reservations:
    af-accounting ends them itself (a confirmed one ``heartbeat_ttl`` after its last
    heartbeat, an unconfirmed one after ``pending_ttl``; 900 s each by default).
    Until then they count against the user, so the replicas drop to what accounting
    grants anew; afterwards the cluster gets new reservations at its next heartbeat.

    Named in the gateway's config as
    ``c.DaskGateway.backend_class = "jhub_af.gateway.kube.QuotaKubeBackend"``.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # clusters whose reservations were released (Stopped, Failed): never twice
        self._finished_clusters: set[str] = set()
        # KubeBackend has no task pool of its own (the database backends do)
        self.task_pool = TaskPool()

    # ---- where the reservations are kept: an annotation of the DaskCluster -----------

    def _saved_reservations(self, cluster) -> dict | None:
        # KubeBackend makes its informer in setup(): none before that
        informer = getattr(self, "informer", None)
        return saved_reservations(informer.get(cluster.name) if informer else None)

    async def _save_reservations(self, cluster, saved: dict) -> None:
        namespace, name = cluster.name.split(".")
        # a merge patch: only this annotation changes, and it works even if someone
        # removed all annotations (a JSON patch "add" needs /metadata/annotations)
        patch = {"metadata": {"annotations": {ANNOTATION: json.dumps(saved)}}}
        try:
            await self.custom_client.patch_namespaced_custom_object(
                "gateway.dask.org",
                self.crd_version,
                namespace,
                "daskclusters",
                name,
                patch,
                _content_type="application/merge-patch+json",
            )
        except Exception as e:
            if isinstance(e, ApiException) and e.status == 404:
                return  # the object is gone: nothing to keep
            # the reservations stay held in memory; only a restart would lose them
            self.log.warning("Could not save the reservations of %s: %s", cluster.name, e)

    def _worker_resources(self, cluster) -> dict:
        config = cluster.config
        return {"cores": float(config["worker_cores"]), "memory": int(config["worker_memory"])}

    def _clusters_to_renew(self) -> list:
        return [c for c in self.clusters.values() if c.status <= models.ClusterStatus.RUNNING]

    # ---- the clamp points ----------------------------------------------------------

    async def start_cluster(self, user, cluster_options):
        """``KubeBackend.start_cluster`` with the ``dask-cluster`` reservation first
        and kept in the object's annotation; returns ``namespace.name``.

        Called by dask-gateway-server's API when ``user`` asks for a new cluster. A
        refusal raises the HTTP error of :meth:`_reserve_cluster` (422, or 503 when
        accounting cannot be reached) and nothing is created; if creating the object
        fails, the reservation is released and the error raised.
        """
        options, config = await self.process_cluster_options(user, cluster_options)
        reservation = await self._reserve_cluster(
            user.name, config.scheduler_cores, config.scheduler_memory
        )
        obj = self.make_cluster_object(user.name, options, config)
        cluster_name = f"{config.namespace}.{obj['metadata']['name']}"
        held = HeldReservations(cluster=reservation.id)
        # a new dict: make_cluster_object hands out common_annotations itself
        obj["metadata"]["annotations"] = {
            **(obj["metadata"].get("annotations") or {}),
            ANNOTATION: json.dumps(held.to_saved()),
        }
        self._held_by_cluster[cluster_name] = held
        self.log.info("Creating cluster %s for user %s", cluster_name, user.name)
        try:
            await self.custom_client.create_namespaced_custom_object(
                "gateway.dask.org", self.crd_version, config.namespace, "daskclusters", obj
            )
        except BaseException:
            self._held_by_cluster.pop(cluster_name, None)
            await self._release(reservation.id, f"cluster {cluster_name}")
            raise
        return cluster_name

    async def forward_message_to_scheduler(self, cluster, msg):
        """Cap a scale/adapt request (:meth:`_cap_request`), then forward it unchanged.

        Called by dask-gateway-server's scale and adapt routes.
        """
        await self._cap_request(cluster, msg)
        return await super().forward_message_to_scheduler(cluster, msg)

    async def on_cluster_heartbeat(self, cluster_name, msg):
        """Release the reservations of workers gone, cap the count the scheduler asks
        for (0 for a stopping cluster), bind and confirm the reservations of active
        workers; then ``KubeBackend`` patches ``/spec/replicas`` to the capped count.

        Called by dask-gateway-server for every heartbeat of a cluster's scheduler.
        """
        cluster = self.clusters.get(cluster_name)
        if cluster is not None and isinstance(msg.get("count"), int):
            if cluster.status > models.ClusterStatus.RUNNING or self._finished(cluster_name):
                msg = {**msg, "count": 0}  # stopping: no new reservations, no new pods
            else:
                await self._release_gone_workers(cluster, msg)
                count, _ = await self._cap(cluster, msg["count"])
                msg = {**msg, "count": count}
                await self._bind_running_workers(cluster, msg.get("active_workers") or [])
        await super().on_cluster_heartbeat(cluster_name, msg)

    # ---- workers: bind, confirm, release -------------------------------------------

    async def _release_gone_workers(self, cluster, msg) -> None:
        """Release the reservation of each worker the heartbeat ``msg`` no longer
        reports: a killed pod frees its slot, and its replacement gets a new one."""
        # closing workers are still running (being retired): they keep theirs
        alive = set(msg.get("active_workers") or []) | set(msg.get("closing_workers") or [])
        async with self._lock(cluster):
            gone = [name for name in self._held(cluster).workers if name not in alive]
        for name in gone:
            await self._release_worker(cluster, name)

    async def _bind_running_workers(self, cluster, active) -> None:
        """Bind a granted reservation to each worker in ``active`` that has none, and
        confirm every bound one not yet confirmed (core-hours from then)."""
        async with self._lock(cluster):
            held = self._held(cluster)
            bound = False
            for name in sorted(active):
                if name in held.workers:
                    continue
                if not held.free:
                    # more pods than granted (for a moment: a replacement before its
                    # predecessor is reported closed); bound at a later heartbeat
                    self.log.info("Worker %s of %s has no reservation yet", name, cluster.name)
                    break
                held.workers[name] = held.free.pop()
                bound = True
            if bound:
                await self._save(cluster)
            for name, rid in list(held.workers.items()):
                if rid not in held.confirmed:
                    await self._confirm(cluster, rid, f"worker {name}")

    # ---- the cluster's phase: confirm when running, release when done ----------------

    def _finished(self, cluster_name: str) -> bool:
        return cluster_name in self._finished_clusters

    async def sync_cluster(self, cluster_name):
        """Follow the DaskCluster's phase: confirm the cluster's reservation when it
        runs, release everything once when it is Stopped, Failed or deleted.

        Called by ``KubeBackend``'s informer for every change of a DaskCluster object.
        """
        old = self.clusters.get(cluster_name)
        await super().sync_cluster(cluster_name)
        cluster = self.clusters.get(cluster_name)
        if cluster is None:  # the object was deleted
            if old is not None:
                await self._finish(old, "deleted")
            self._finished_clusters.discard(cluster_name)
        elif cluster.status >= models.ClusterStatus.STOPPED:
            await self._finish(cluster, cluster.status.name)
        elif cluster.status == models.ClusterStatus.RUNNING and not self._finished(cluster_name):
            async with self._lock(cluster):
                rid = self._held(cluster).unconfirmed_cluster()
                if rid:
                    await self._confirm(cluster, rid, f"cluster {cluster_name}")

    async def _finish(self, cluster, why: str) -> None:
        """Release all that ``cluster`` holds, once."""
        if self._finished(cluster.name):
            return
        self._finished_clusters.add(cluster.name)
        await self._release_all(cluster)
        self.log.info("Released the reservations of cluster %s (%s)", cluster.name, why)

    # ---- set-up: the client, the middleware, the heartbeat loop ----------------------

    async def setup(self, app):
        """Make the af-accounting client, add :func:`capped_middleware`, set
        ``KubeBackend`` up and start the heartbeat loop. Called by dask-gateway-server
        when the gateway starts."""
        self.accounting = AccountingClient(parent=self, log=self.log)
        app.middlewares.append(capped_middleware)
        await super().setup(app)
        self.task_pool.spawn(self._accounting_heartbeat_loop())

    async def cleanup(self):
        """Stop the heartbeat loop, then clean up as ``KubeBackend`` does. Called by
        dask-gateway-server when the gateway stops."""
        await self.task_pool.close()
        await super().cleanup()
