"""The wall time jhub_af's quota backend adds to a Dask cluster's life.

One round: create a cluster, scale to 2, wait for the workers, run a small
computation, stop, and wait until the gateway says the cluster stopped. jhub_af's
side is the gateway behind a real hub with ``QuotaLocalBackend`` reserving every
cluster and worker through a real af-accounting; the anchor is the same hub and
gateway set-up (same proxy, JupyterHub authentication, local processes) with
dask-gateway-server's own ``UnsafeLocalBackend``. Both in the same run, alternating.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from harness import free_port, login, start_hub, user_token
from harness.gateway_hub import gateway_hub_text, wait_for_gateway

SPEC = {
    "what": "create a Dask cluster, scale to 2, wait, compute, stop (through the hub)",
    "anchor": "the same hub + dask-gateway-server with its own UnsafeLocalBackend",
    "unit": "s",
    "target": "<= 1.10",
}

# after gateway_hub_config has written the gateway's config: swap the backend
BARE = """
_p = __import__("pathlib").Path({path!r})
_text = _p.read_text().replace(
    '"jhub_af.gateway.local.QuotaLocalBackend"',
    '"dask_gateway_server.backends.local.UnsafeLocalBackend"',
).replace("c.QuotaLocalBackend.", "c.UnsafeLocalBackend.")
_p.write_text("\\n".join(
    line for line in _text.splitlines()
    if not any(k in line for k in ("record_file", "setattr(", "for _name"))
))
"""


def _start(workdir: Path, bare: bool, **config_args):
    """A hub with af-accounting and the gateway (``config_args``: as ``gateway_hub_text``);
    ``bare``: dask-gateway-server's own UnsafeLocalBackend instead of jhub_af's."""
    port, tcp = free_port(), free_port()
    config = gateway_hub_text(workdir, port, tcp, **config_args)
    if bare:
        config += BARE.format(path=str(workdir / "gateway" / "dask_gateway_config.py"))
    hub = start_hub(workdir / "hub", config, port=port)
    s = login(hub.url, "bob", "demo")
    token = user_token(s, hub.url, "bob")
    wait_for_gateway(hub.url, token)
    return hub, f"{hub.url}/services/dask-gateway", f"gateway://127.0.0.1:{tcp}", token


def one_round(address: str, proxy: str, token: str) -> float:
    from dask_gateway import Gateway, JupyterHubAuth

    start = time.perf_counter()
    with Gateway(address=address, proxy_address=proxy, auth=JupyterHubAuth(token)) as g:
        cluster = g.new_cluster()
        cluster.scale(2)
        with cluster.get_client() as client:
            client.wait_for_workers(2, timeout=120)
            assert client.submit(sum, range(100)).result() == 4950
        name = cluster.name
        cluster.shutdown()
        while g.get_cluster(name).status.name not in ("STOPPED", "FAILED"):
            time.sleep(0.05)
    return time.perf_counter() - start


def run(repeats: int) -> tuple[list[float], list[float]]:
    ours, anchor = [], []
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        quota = _start(Path(tmp) / "quota", bare=False)
        bare = _start(Path(tmp) / "bare", bare=True)
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
