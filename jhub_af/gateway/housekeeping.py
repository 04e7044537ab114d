"""Housekeeping for the gateway's clusters (:class:`HousekeepingMixin`): a maximum
lifetime by group, stopping with the user's server, a record of cluster events."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Bool, Dict, Float, Unicode
from traitlets.config import Configurable

from jhub_af.accounting import most_generous


def lifetime_for(default: float, by_group: dict, groups) -> float:
    """Seconds a cluster of a user in ``groups`` may run (0: no limit): the most
    generous value among the user's groups in ``by_group`` (0 the most generous of
    all), else ``default``. Called by :meth:`HousekeepingMixin.lifetime_of`."""
    values = [float(v) for g, v in by_group.items() if g in set(groups)]
    if not values:
        return float(default)
    return float(most_generous(values, no_limit=0))


class HousekeepingMixin(Configurable):
    """Housekeeping of a database backend's clusters, mixed into the quota backend
    (:class:`~jhub_af.gateway.db_base.QuotaBackendMixin`); expects ``self.db``,
    ``self.task_pool``, ``self.log`` and ``self.stop_cluster``.

    A cluster's lifetime is resolved from its user's groups when it is created and
    kept with it, so a gateway restart keeps it. Idle clusters are stopped by their
    own scheduler (``ClusterConfig.idle_timeout``, which
    :func:`~jhub_af.gateway.options.group_options` sets by group), not here.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # user -> when (ms) their server was last seen running
        self._servers_seen: dict[str, float] = {}

    max_cluster_lifetime = Float(
        0.0,
        min=0.0,
        config=True,
        help="""
        Seconds a cluster may run before the gateway stops it, whatever it is doing;
        0 (the default) means no limit. Example: 86400 stops clusters after a day.
        The default for users in none of ``max_cluster_lifetime_by_group``'s groups.
        """,
    )
    max_cluster_lifetime_by_group = Dict(
        key_trait=Unicode(),
        value_trait=Float(min=0.0),
        config=True,
        help="""
        Maximum cluster lifetime (seconds, 0 = no limit) by the user's hub group: the
        most generous among the user's groups that appear here wins, otherwise
        ``max_cluster_lifetime``; a group may be stricter than that default. Taken when
        the cluster is created. Default {} (everyone gets ``max_cluster_lifetime``).
        Example: ``{"/atlas/users": 86400, "/atlas/long": 0, "/guests": 3600}``.
        """,
    )
    housekeeping_interval = Float(
        30.0,
        min=0.5,
        config=True,
        help="Seconds between checks of the clusters' lifetimes (default 30).",
    )
    stop_with_server = Bool(
        False,
        config=True,
        help="""
        Stop all of a user's clusters when their default notebook server stops (it was
        seen running, and the hub now says it is not). Checked every
        ``housekeeping_interval``. Default False: clusters outlive the notebook (a
        script may keep using them); they still stop when idle or too old.
        """,
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
        """Log one JSON line for ``event`` of ``cluster`` (with ``fields``), and append
        it to ``record_file`` when one is set. Raises ``OSError`` when the file cannot
        be written. Called by the quota backend and housekeeping at every event."""
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
        """Called by the quota backend's ``on_cluster_heartbeat`` on every scheduler
        heartbeat ``msg`` of ``cluster``; does nothing here (a hook for later activity
        rules)."""

    def setup_housekeeping(self) -> None:
        """Start the housekeeping loop if lifetimes or ``stop_with_server`` apply.
        Called by the quota backend's ``setup``, after the backend's (task pool)."""
        if self._lifetimes_apply() or self.stop_with_server:
            self.task_pool.spawn(self._housekeeping_loop())

    def _lifetimes_apply(self) -> bool:
        return bool(self.max_cluster_lifetime or any(self.max_cluster_lifetime_by_group.values()))

    def lifetime_of(self, user) -> float:
        """The maximum lifetime (seconds, 0: none) of a new cluster of ``user`` (a
        dask-gateway ``User``, with ``groups``). Called by ``start_cluster``."""
        return lifetime_for(
            self.max_cluster_lifetime, self.max_cluster_lifetime_by_group, user.groups
        )

    async def _housekeeping_loop(self) -> None:
        while True:
            await asyncio.sleep(self.housekeeping_interval)
            try:
                if self._lifetimes_apply():
                    await self.stop_old_clusters()
                if self.stop_with_server:
                    await self.stop_clusters_of_stopped_servers()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.log.warning("Housekeeping failed: %s", e)

    def cluster_lifetime(self, cluster) -> float:
        """The lifetime kept for ``cluster`` (overridden by the quota backend, which
        keeps it in the cluster's state); the default here."""
        return self.max_cluster_lifetime

    async def stop_old_clusters(self) -> None:
        """Stop (and record) every running cluster older than its lifetime. Called by
        the housekeeping loop."""
        now = time.time() * 1000
        for cluster in list(self.db.active_clusters()):
            lifetime = self.cluster_lifetime(cluster)
            if not lifetime or cluster.target.name != "RUNNING":
                continue
            if cluster.start_time < now - lifetime * 1000:
                self.record(
                    "cluster-lifetime-exceeded",
                    cluster,
                    lifetime=lifetime,
                    reason=f"ran longer than its maximum lifetime of {lifetime:g} s",
                )
                await self.stop_cluster(cluster.name)

    async def _server_running(self, user: str) -> bool | None:
        """Whether the hub says ``user``'s default server runs (None: cannot tell)."""
        url = os.environ.get("JUPYTERHUB_API_URL", "").rstrip("/")
        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        if not url or not token:
            return None
        try:
            response = await AsyncHTTPClient().fetch(
                f"{url}/users/{quote(user, safe='')}",
                headers={"Authorization": f"token {token}"},
                request_timeout=10,
            )
        except (HTTPClientError, OSError) as e:
            self.log.warning("Cannot ask the hub about %s's server: %s", user, e)
            return None
        servers = json.loads(response.body).get("servers", {})
        return bool(servers.get("", {}).get("ready"))

    async def stop_clusters_of_stopped_servers(self) -> None:
        """Stop the clusters of users whose default server, seen running, the hub now
        says is not; only clusters started while it ran. Needs the gateway's token to
        have ``read:servers`` and ``read:users:name`` (``gateway_hub_config`` adds
        them with ``stop_with_server``). Called by the housekeeping loop."""
        by_user: dict[str, list] = {}
        for cluster in self.db.active_clusters():
            if cluster.target.name == "RUNNING":
                by_user.setdefault(cluster.username, []).append(cluster)
        for user in set(self._servers_seen) - set(by_user):
            del self._servers_seen[user]  # no clusters left to stop
        for user, clusters in by_user.items():
            running = await self._server_running(user)
            if running:
                if user not in self._servers_seen:
                    self.record("server-seen", clusters[0], clusters=len(clusters))
                self._servers_seen[user] = time.time() * 1000
            elif running is False and user in self._servers_seen:
                # only clusters that ran while the server did: a cluster made after the
                # server stopped (from a script, a token) is not the server's
                last_seen = self._servers_seen.pop(user)
                for cluster in clusters:
                    if cluster.start_time <= last_seen:
                        self.record("cluster-stopped-with-server", cluster)
                        await self.stop_cluster(cluster.name)
