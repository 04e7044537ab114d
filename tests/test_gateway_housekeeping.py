"""Housekeeping with real parts: idle clusters stop by group, clusters stop at their
group's maximum lifetime, a user's clusters stop with their notebook server, and every
stop is recorded and frees the reservations."""

from __future__ import annotations

import sqlite3

import pytest
from harness import spawn_server, stop_server, wait_until
from harness.gateway_hub import events, gateway_facility, open_reservations, rest

pytestmark = pytest.mark.integration
__all__ = ["gateway_facility"]  # the module's hub, a fixture


def status(facility, user, name):
    return rest(facility, "GET", f"clusters/{name}", user).json()["status"]


def test_idle_cluster_of_a_short_idle_group_stops(gateway_facility):
    r = rest(gateway_facility, "POST", "clusters/", "erin", json={"cluster_options": {}})
    assert r.status_code == 201, r.text
    name = r.json()["name"]
    wait_until(
        lambda: status(gateway_facility, "erin", name) == "STOPPED",
        timeout=120,
        what="erin's idle cluster stopped",
    )
    wait_until(
        lambda: [e for e in events(gateway_facility, "cluster-stopped") if e["cluster"] == name],
        what="the stop recorded",
    )
    wait_until(
        lambda: not open_reservations(gateway_facility, "erin", "dask-cluster"),
        what="erin's cluster reservation released",
    )
    # bob's group sets no idle timeout: his cluster is not culled by the same rule
    r = rest(gateway_facility, "POST", "clusters/", "bob", json={"cluster_options": {}})
    bob_cluster = r.json()["name"]
    wait_until(
        lambda: status(gateway_facility, "bob", bob_cluster) == "RUNNING", what="bob's cluster"
    )
    rest(gateway_facility, "DELETE", f"clusters/{bob_cluster}", "bob")


def test_clusters_stop_when_the_notebook_server_stops(gateway_facility):
    url, s = gateway_facility["url"], gateway_facility["sessions"]["alice"]
    assert spawn_server(s, url, "alice").status_code == 200
    r = rest(gateway_facility, "POST", "clusters/", "alice", json={"cluster_options": {}})
    name = r.json()["name"]
    wait_until(
        lambda: [e for e in events(gateway_facility, "server-seen") if e["cluster"] == name],
        what="the gateway saw alice's server",
    )
    stop_server(s, url, "alice")
    wait_until(
        lambda: status(gateway_facility, "alice", name) == "STOPPED",
        timeout=120,
        what="alice's cluster stopped with her server",
    )
    stopped = events(gateway_facility, "cluster-stopped-with-server")
    assert [e["cluster"] for e in stopped] == [name]
    wait_until(
        lambda: not open_reservations(gateway_facility, "alice", "dask-cluster"),
        what="alice's cluster reservation released",
    )


def ended_reservations(facility, user: str) -> list[tuple]:
    with sqlite3.connect(facility["ledger"]) as db:
        return db.execute(
            "SELECT kind, state FROM af_reservations WHERE user = ? "
            "AND state NOT IN ('pending', 'active') AND ended IS NOT NULL",
            (user,),
        ).fetchall()


def test_clusters_stop_at_their_groups_maximum_lifetime(gateway_facility):
    # fred's group /cms/batch: 12 s; bob's /cms sets none (no limit)
    names = {}
    for user in ("fred", "bob"):
        r = rest(gateway_facility, "POST", "clusters/", user, json={"cluster_options": {}})
        assert r.status_code == 201, r.text
        names[user] = r.json()["name"]
    try:
        wait_until(
            lambda: status(gateway_facility, "fred", names["fred"]) == "RUNNING",
            what="fred's cluster running",
        )
        path = f"clusters/{names['fred']}/scale"
        r = rest(gateway_facility, "POST", path, "fred", json={"count": 1})
        assert r.json()["ok"] is True, r.text
        assert len(open_reservations(gateway_facility, "fred")) == 1
        wait_until(
            lambda: status(gateway_facility, "fred", names["fred"]) == "STOPPED",
            timeout=120,
            what="fred's cluster stopped at its lifetime",
        )
        (stopped,) = [
            e
            for e in events(gateway_facility, "cluster-lifetime-exceeded")
            if e["cluster"] == names["fred"]
        ]
        assert stopped["user"] == "fred"
        assert stopped["lifetime"] == 12
        assert stopped["reason"] == "ran longer than its maximum lifetime of 12 s"
        created = [e for e in events(gateway_facility, "cluster-created") if e["user"] == "bob"]
        assert created[-1]["lifetime"] == 0
        # recorded in accounting too: the cluster's (and any worker's) reservations ended
        wait_until(
            lambda: (
                not open_reservations(gateway_facility, "fred", "dask-cluster")
                and not open_reservations(gateway_facility, "fred")
            ),
            what="fred's reservations released",
        )
        assert sorted(ended_reservations(gateway_facility, "fred")) == [
            ("dask-cluster", "released"),
            ("dask-worker", "released"),
        ]
        # bob's cluster, as old as fred's, still runs
        assert status(gateway_facility, "bob", names["bob"]) == "RUNNING"
        assert not [
            e for e in events(gateway_facility, "cluster-lifetime-exceeded") if e["user"] == "bob"
        ]
    finally:
        for user, name in names.items():
            rest(gateway_facility, "DELETE", f"clusters/{name}", user)
