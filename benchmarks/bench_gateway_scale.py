"""The time for one request to scale a Dask cluster to 20 workers.

One round: a cluster is created (not timed); then one ``scale(20)`` request, timed
until the scheduler has all 20 workers; then the cluster is stopped (not timed).
jhub_af's side is ``QuotaLocalBackend`` behind a real hub, reserving each of the 20
workers through a real af-accounting (the user's quota: 20 workers); the anchor is
the same hub and gateway set-up with dask-gateway-server's own ``UnsafeLocalBackend``.
Both in the same run, alternating. Workers are local processes, so on a 2-core
machine the time is mostly 20 Python processes starting.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench_gateway import _start

SPEC = {
    "what": "one request to scale a Dask cluster to 20 workers, until all 20 are up",
    "anchor": "the same hub + dask-gateway-server with its own UnsafeLocalBackend",
    "unit": "s",
    "target": "to be decided (issue 6)",
}
WORKERS = 20
POLICY = {"defaults": {"dask_clusters": 2, "dask_workers": WORKERS}}


def one_round(address: str, proxy: str, token: str) -> float:
    from dask_gateway import Gateway, JupyterHubAuth

    with Gateway(address=address, proxy_address=proxy, auth=JupyterHubAuth(token)) as g:
        cluster = g.new_cluster()
        try:
            with cluster.get_client() as client:  # the scheduler is up before the clock
                start = time.perf_counter()
                cluster.scale(WORKERS)
                client.wait_for_workers(WORKERS, timeout=300)
                elapsed = time.perf_counter() - start
        finally:
            name = cluster.name
            cluster.shutdown()
            while g.get_cluster(name).status.name not in ("STOPPED", "FAILED"):
                time.sleep(0.05)
    return elapsed


def run(repeats: int) -> tuple[list[float], list[float]]:
    ours, anchor = [], []
    with tempfile.TemporaryDirectory(prefix="bench-gateway-scale-") as tmp:
        quota = _start(Path(tmp) / "quota", bare=False, policy=POLICY)
        bare = _start(Path(tmp) / "bare", bare=True, policy=POLICY)
        try:
            for i in range(repeats):
                sides = [("ours", quota), ("anchor", bare)]
                for side, (_, address, proxy, token) in sides if i % 2 == 0 else sides[::-1]:
                    (ours if side == "ours" else anchor).append(one_round(address, proxy, token))
                print(f"   run {i + 1}: quota {ours[-1]:.2f}s, bare {anchor[-1]:.2f}s", flush=True)
        finally:
            quota[0].stop()
            bare[0].stop()
    return ours, anchor
