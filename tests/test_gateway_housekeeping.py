"""Housekeeping with real parts: idle clusters stop by group, a user's clusters stop
with their notebook server, and every stop is recorded and frees the reservations."""

from __future__ import annotations

import pytest
from gateway_hub import events, gateway_facility, open_reservations, rest, wait_until
from harness import spawn_server, stop_server

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
