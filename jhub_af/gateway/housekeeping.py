"""Housekeeping for the gateway's clusters: a maximum lifetime, and a record of every
cluster that starts, stops or is stopped by housekeeping.

Idle clusters are stopped by their own scheduler (``ClusterConfig.idle_timeout``),
which the options handler sets by group (:mod:`jhub_af.gateway.options`).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from traitlets import Float, Unicode
from traitlets.config import Configurable


class HousekeepingMixin(Configurable):
    """Mixed into the quota backend; expects ``self.db``, ``self.task_pool``, ``self.log``."""

    max_cluster_lifetime = Float(
        0.0,
        min=0.0,
        config=True,
        help="""
        Seconds a cluster may run before the gateway stops it, whatever it is doing;
        0 (the default) means no limit. Example: 86400 stops clusters after a day.
        """,
    )
    housekeeping_interval = Float(
        30.0,
        min=0.5,
        config=True,
        help="Seconds between checks of the clusters' lifetimes (default 30).",
    )
    record_file = Unicode(
        "",
        config=True,
        help="""
        A file to which one JSON line is appended per cluster event (created, stopped,
        stopped for its lifetime), with the time, user, cluster and reason. Empty (the
        default): events go to the gateway's log only. Example: /var/log/af-gateway.jsonl
        """,
    )

    def record(self, event: str, cluster, **fields) -> None:
        entry = {
            "time": round(time.time(), 3),
            "event": event,
            "user": cluster.username,
            "cluster": cluster.name,
            **fields,
        }
        self.log.info("jhub_af.gateway %s", json.dumps(entry, sort_keys=True))
        if self.record_file:
            with Path(self.record_file).open("a", encoding="utf8") as f:
                f.write(json.dumps(entry, sort_keys=True) + "\n")

    def note_activity(self, cluster, msg) -> None:
        """Called on every scheduler heartbeat (a hook for later activity rules)."""

    def setup_housekeeping(self) -> None:
        if self.max_cluster_lifetime:
            self.task_pool.spawn(self._lifetime_loop())

    async def _lifetime_loop(self) -> None:
        while True:
            await asyncio.sleep(self.housekeeping_interval)
            try:
                await self.stop_old_clusters()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.log.warning("Housekeeping failed: %s", e)

    async def stop_old_clusters(self) -> None:
        cutoff = time.time() * 1000 - self.max_cluster_lifetime * 1000
        for cluster in list(self.db.active_clusters()):
            if cluster.start_time < cutoff and cluster.target.name == "RUNNING":
                self.record(
                    "cluster-lifetime-exceeded",
                    cluster,
                    reason=f"ran longer than {self.max_cluster_lifetime:g} s",
                )
                await self.stop_cluster(cluster.name)
