"""The gateway behind a real hub, as a physicist uses it and as things fail: Gateway()
with no arguments in a notebook, concurrent scale requests, killed workers and
schedulers (reservations released), all against a real af-accounting."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time

import psutil
import pytest
import requests
from harness import (
    ManagedProcess,
    run_python,
    spawn_server,
    stop_server,
    user_api_token,
    wait_until,
)
from harness.gateway_hub import (
    gateway,
    gateway_facility,
    holds_nothing,
    open_reservations,
    rest,
)

pytestmark = pytest.mark.integration
__all__ = ["gateway_facility"]  # the module's hub, a fixture

NOTEBOOK = """
from dask_gateway import Gateway
gateway = Gateway()
cluster = gateway.new_cluster()
cluster.scale(1)
client = cluster.get_client()
client.wait_for_workers(1, timeout=120)
print("sum", client.submit(sum, [1, 2, 3]).result())
client.close()
cluster.shutdown()
"""


async def test_gateway_needs_no_arguments_in_a_notebook(gateway_facility):
    url, s = gateway_facility["url"], gateway_facility["sessions"]["alice"]
    assert spawn_server(s, url, "alice").status_code == 200
    try:
        out = await run_python(url, "alice", user_api_token(s, url, "alice"), NOTEBOOK, 240)
        assert "sum 6" in out
    finally:
        stop_server(s, url, "alice")
    wait_until(
        lambda: holds_nothing(gateway_facility, "alice"),
        what="alice's reservations released",
    )


def started_at(process: psutil.Process) -> float:
    """When ``process`` started, on the clock af-accounting's timestamps use.

    psutil counts from the kernel's boot time in whole seconds (``btime`` in
    /proc/stat), so its ``create_time()`` is early by the boot time's fraction of a
    second (0.61 s on one test machine, more than the tolerance below); /proc/uptime
    gives that fraction back."""
    with open("/proc/uptime") as f:
        booted = time.time() - float(f.read().split()[0])
    return process.create_time() + (booted - psutil.boot_time())


def dask_processes(cluster_name: str, role: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if role in cmd[1:3]:  # [python,] dask, worker|scheduler, ...
            try:
                if p.environ().get("DASK_GATEWAY_CLUSTER_NAME") == cluster_name:
                    found.append(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
    return found


def test_concurrent_scale_requests_never_overcommit(gateway_facility):
    # two users, each limited to 2 workers in total, two clusters each
    users = ("alice", "bob")
    clusters = {u: [gateway(gateway_facility, u).new_cluster() for _ in range(2)] for u in users}
    try:
        threads = [
            threading.Thread(
                target=rest,
                args=(gateway_facility, "POST", f"clusters/{c.name}/scale", u),
                kwargs={"json": {"count": 2}},
            )
            for u in users
            for c in clusters[u]
            for _ in range(3)
        ]
        seen = {u: [] for u in users}

        def sample():
            for u in users:
                seen[u].append(len(open_reservations(gateway_facility, u)))
            return len(seen["bob"]) >= 40 and all(seen[u][-1] == 2 for u in users)

        for t in threads:
            t.start()
        wait_until(sample, what="the users' workers sampled")
        for t in threads:
            t.join()
        for u in users:
            assert max(seen[u]) == 2
            running = sum(len(dask_processes(c.name, "worker")) for c in clusters[u])
            assert running <= 2
    finally:
        for u in users:
            for c in clusters[u]:
                c.shutdown()
    wait_until(
        lambda: not any(open_reservations(gateway_facility, u) for u in users), what="released"
    )


def test_killed_worker_and_killed_scheduler_free_their_reservations(gateway_facility):
    g = gateway(gateway_facility, "bob")
    cluster = g.new_cluster()
    try:
        cluster.scale(1)
        with cluster.get_client() as client:
            client.wait_for_workers(1, timeout=120)
        before = {r[0] for r in open_reservations(gateway_facility, "bob")}
        assert len(before) == 1
        (worker,) = dask_processes(cluster.name, "worker")
        worker.send_signal(signal.SIGKILL)
        # the killed worker's reservation ends; the cluster still wants 1 and gets a new one
        wait_until(
            lambda: before.isdisjoint(r[0] for r in open_reservations(gateway_facility, "bob")),
            what="the killed worker's reservation released",
        )
        wait_until(lambda: len(open_reservations(gateway_facility, "bob")) == 1, what="a new one")
        (scheduler,) = dask_processes(cluster.name, "scheduler")
        scheduler.send_signal(signal.SIGKILL)
        wait_until(
            lambda: holds_nothing(gateway_facility, "bob"),
            timeout=120,
            what="the dead cluster's reservations released",
        )
        r = rest(gateway_facility, "GET", f"clusters/{cluster.name}", "bob")
        assert r.json()["status"] == "FAILED"
    finally:
        cluster.shutdown()


def gateway_process(facility) -> psutil.Process:
    config = str(facility["workdir"] / "gateway" / "dask_gateway_config.py")
    (found,) = [
        p
        for p in psutil.process_iter(["cmdline"])
        if config in (p.info["cmdline"] or [])
        and "dask-gateway-server" in " ".join(p.info["cmdline"])
    ]
    return found


def test_gateway_restart_keeps_the_clusters_accounting(gateway_facility):
    g = gateway(gateway_facility, "bob")
    cluster = g.new_cluster()
    cluster.scale(1)
    with cluster.get_client() as client:
        client.wait_for_workers(1, timeout=120)
    # confirmed (active) once the scheduler has reported the worker running
    held = wait_until(
        lambda: [r for r in open_reservations(gateway_facility, "bob") if r[1] == "active"],
        what="the worker's reservation active",
    )
    assert len(held) == 1
    old = gateway_process(gateway_facility)
    cmd, env, cwd = old.cmdline(), old.environ(), old.cwd()
    old.terminate()
    old.wait(60)
    # the hub does not restart a managed service: start the same command ourselves
    log = gateway_facility["workdir"] / "restarted.log"
    restarted = ManagedProcess(cmd, log=log, cwd=cwd, env=env)
    try:
        wait_until(
            lambda: rest(gateway_facility, "GET", "clusters/", "bob").status_code == 200,
            what="the restarted gateway answers",
        )
        # the same cluster, the same worker, the same reservation; the cap still holds
        assert (
            rest(gateway_facility, "GET", f"clusters/{cluster.name}", "bob").json()["status"]
            == "RUNNING"
        )
        assert sorted(open_reservations(gateway_facility, "bob")) == held
        r = rest(
            gateway_facility, "POST", f"clusters/{cluster.name}/scale", "bob", json={"count": 5}
        )
        assert r.json()["ok"] is False
        assert "Scaling to 2 instead" in r.json()["msg"]
        wait_until(lambda: len(open_reservations(gateway_facility, "bob")) == 2, what="2 held")
        assert (
            rest(gateway_facility, "DELETE", f"clusters/{cluster.name}", "bob").status_code == 204
        )
        wait_until(
            lambda: holds_nothing(gateway_facility, "bob"),
            what="released after the restart",
        )
    finally:
        restarted.stop()
        # the hub restarts its managed service: leave the gateway answering for the next
        wait_until(
            lambda: rest(gateway_facility, "GET", "clusters/", "bob").status_code == 200,
            timeout=120,
            what="the hub's own restart of the gateway",
        )


def ledger_rows(facility, where: str, args: tuple) -> list[dict]:
    with sqlite3.connect(facility["ledger"]) as db:
        db.row_factory = sqlite3.Row
        query = f"SELECT * FROM af_reservations WHERE {where}"  # noqa: S608 (the tests' own)
        return [dict(r) for r in db.execute(query, args)]


def core_hours(facility, user: str) -> float:
    r = requests.get(
        f"{facility['url']}/services/af-accounting/api/v1/usage/me",
        headers={"Authorization": f"token {facility['tokens'][user]}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()["usage"]["core_hours"]


def test_core_hours_count_each_worker_from_when_it_ran(gateway_facility):
    before = core_hours(gateway_facility, "bob")
    begun = time.time()
    cluster = gateway(gateway_facility, "bob").new_cluster()
    try:
        cluster.scale(5)  # capped at bob's 2 workers: the other 3 are never reserved
        with cluster.get_client() as client:
            client.wait_for_workers(2, timeout=120)
        wait_until(
            lambda: [r[1] for r in open_reservations(gateway_facility, "bob")] == ["active"] * 2,
            what="both workers' reservations active",
        )
        launched = [started_at(p) for p in dask_processes(cluster.name, "worker")]
        assert len(launched) == 2
        time.sleep(3)
    finally:
        asked_to_stop = time.time()
        cluster.shutdown()
    wait_until(
        lambda: holds_nothing(gateway_facility, "bob"),
        what="bob's reservations released",
    )
    released = time.time()
    workers = ledger_rows(
        gateway_facility, "user = ? AND kind = 'dask-worker' AND server = ?", ("bob", cluster.name)
    )
    assert len(workers) == 2
    for row in workers:
        assert row["state"] == "released" and row["cores"] == 1.0
        # reserved before the worker started; counted from when it ran, to when it stopped
        assert row["created"] <= max(launched) + 0.5
        assert row["started"] >= min(launched) - 0.5
        assert asked_to_stop - 0.5 <= row["ended"] <= released + 0.5
        assert row["ended"] - row["started"] >= 3
    scheduler = ledger_rows(
        gateway_facility, "user = ? AND kind = 'dask-cluster' AND created >= ?", ("bob", begun)
    )
    assert len(scheduler) == 1
    expected = sum((r["ended"] - r["started"]) * r["cores"] for r in workers + scheduler) / 3600
    # the user's core-hours grew by exactly what the ledger's intervals hold
    assert core_hours(gateway_facility, "bob") - before == pytest.approx(expected, abs=1e-5)
