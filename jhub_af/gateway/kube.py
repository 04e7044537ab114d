"""The quota backend on Kubernetes: dask-gateway-server's ``KubeBackend`` with
af-accounting reservations and the per-user cap on workers across clusters.

``KubeBackend`` is not a database backend: ``start_cluster`` creates a ``DaskCluster``
custom object, and dask-gateway's controller (a separate pod) makes the scheduler and
worker pods from it. The API server makes one decision about the number of workers:
in ``on_cluster_heartbeat`` it patches the object's ``/spec/replicas`` to the count
the scheduler asks for (clamped to ``cluster_max_workers``). So
:class:`QuotaKubeBackend` caps there, and at the scale/adapt routes, with the
bookkeeping of :mod:`jhub_af.gateway.reservations` that the database backends use:

- ``start_cluster`` reserves the ``dask-cluster`` before the object is created (a
  refusal is 422 with ``X-JHub-AF-Refused: quota`` and accounting's sentence, 503 when
  accounting cannot be reached; nothing is created); if creating the object fails,
  the reservation is released. It is confirmed when the cluster runs.
- One ``dask-worker`` reservation per replica: the replicas patched are what
  accounting granted. A worker name that appears in the heartbeat's
  ``active_workers`` is bound to a granted reservation, which is confirmed then
  (core-hours from then); a worker that is closed, or no longer reported, has its
  reservation released, so a killed worker pod frees its slot and its replacement
  gets a new reservation.
- When the cluster's phase becomes Stopped or Failed (or its object is deleted),
  everything it holds is released, once.

The held reservations are kept in an annotation of the DaskCluster object
(``jhub-af/reservations``, JSON, set at creation and merge-patched at every change),
so a restarted API server pod finds them in its informer's objects and keeps the cap.
If the annotation is lost (edited away, or a patch failed while the pod restarted),
the restarted gateway does not know those reservations: it never renews or releases
them, and af-accounting ends them itself, a confirmed one when its ``heartbeat_ttl``
has passed since its last heartbeat, an unconfirmed one after its ``pending_ttl``
(both 900 s by default). Until then they still count against the user, so the
cluster's replicas drop to what accounting grants anew (the controller may stop
running workers); once they have ended, the cluster gets new reservations at its next
heartbeat. The cluster's own reservation is not renewed or released either.

Housekeeping (:mod:`jhub_af.gateway.housekeeping`: lifetimes by group, stop with the
server) reads the gateway's database and is not part of this backend; on Kubernetes
the chart's own idle timeout (``ClusterConfig.idle_timeout``, which the options
handler sets by group) applies.
"""

from __future__ import annotations

import json

from dask_gateway_server import models
from dask_gateway_server.backends.kubernetes.backend import KubeBackend
from dask_gateway_server.utils import TaskPool
from kubernetes_asyncio.client.rest import ApiException

from jhub_af.accounting import AccountingClient

from .reservations import HeldReservations, QuotaReservationsMixin, capped_middleware

ANNOTATION = "jhub-af/reservations"


def saved_reservations(obj: dict | None) -> dict | None:
    """The held reservations in a DaskCluster object's annotation, if any."""
    text = ((obj or {}).get("metadata") or {}).get("annotations", {}).get(ANNOTATION)
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


class QuotaKubeBackend(QuotaReservationsMixin, KubeBackend):
    """dask-gateway-server's KubeBackend with af-accounting reservations and the
    per-user cap on workers across clusters."""

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
        # KubeBackend.start_cluster, with the reservation first and kept in the object
        options, config = await self.process_cluster_options(user, cluster_options)
        r = await self._reserve_cluster(user.name, config.scheduler_cores, config.scheduler_memory)
        obj = self.make_cluster_object(user.name, options, config)
        cluster_name = f"{config.namespace}.{obj['metadata']['name']}"
        held = HeldReservations(cluster=r.id)
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
            await self._release(r.id, f"cluster {cluster_name}")
            raise
        return cluster_name

    async def forward_message_to_scheduler(self, cluster, msg):
        await self._cap_request(cluster, msg)
        return await super().forward_message_to_scheduler(cluster, msg)

    async def on_cluster_heartbeat(self, cluster_name, msg):
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
        # closing workers are still running (being retired): they keep theirs
        alive = set(msg.get("active_workers") or []) | set(msg.get("closing_workers") or [])
        async with self._lock(cluster):
            gone = [name for name in self._held(cluster).workers if name not in alive]
        for name in gone:
            await self._release_worker(cluster, name)

    async def _bind_running_workers(self, cluster, active) -> None:
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
        self.accounting = AccountingClient(parent=self, log=self.log)
        app.middlewares.append(capped_middleware)
        await super().setup(app)
        self.task_pool.spawn(self._accounting_heartbeat_loop())

    async def cleanup(self):
        await self.task_pool.close()
        await super().cleanup()
