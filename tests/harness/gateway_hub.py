"""A real hub running af-accounting and dask-gateway-server (jhub_af's quota backend,
local processes) behind the hub's proxy, for the gateway tests."""

from __future__ import annotations

import json
import sqlite3
import warnings
from pathlib import Path

import pytest
import requests

from .hub import local_spawner_config, login, user_token
from .net import free_port, wait_for_http

USERS = {
    "alice": {"groups": ["/atlas", "/atlas/users"]},
    "bob": {"groups": ["/cms"]},
    "dave": {"groups": ["/atlas"]},
    "erin": {"groups": ["/cms", "/cms/short"]},
    "fred": {"groups": ["/cms", "/cms/batch"]},
}
POLICY = {
    "defaults": {"servers": 2, "cores": 8, "memory": "16G", "dask_clusters": 3, "dask_workers": 2},
    "users": {"dave": {"dask_clusters": 0}},
}
OPTIONS = {
    "default": {"worker_cores": 1, "worker_memory": 1, "idle_timeout": 0},
    "groups": {
        "/atlas/users": {
            "worker_cores": 2,
            "worker_memory": 2,
            "environments": {"atlas": {"AF_ENV": "atlas"}},
        },
        "/cms/short": {"idle_timeout": 3},
    },
}
# quick heartbeats and checks so that crashes are noticed within seconds
BACKEND = {
    "cluster_heartbeat_period": 2,
    "check_timeouts_period": 1.0,
    "worker_status_period": 1.0,
    "cluster_status_period": 1.0,
    "denied_retry_interval": 1.0,
    "housekeeping_interval": 1.0,
    # /cms/batch clusters stop after 12 s (everyone else's: no limit)
    "max_cluster_lifetime_by_group": {"/cms/batch": 12},
}


def gateway_hub_text(
    workdir: Path,
    port: int,
    tcp_port: int,
    *,
    users: dict = USERS,
    policy: dict = POLICY,
    options: dict = OPTIONS,
    backend_settings: dict = BACKEND,
    **gateway,
) -> str:
    """A hub config with af-accounting and the gateway; ``gateway``: more arguments of
    ``gateway_hub_config`` (``backend``, ``cluster_settings``, ``job_bin``, ...)."""
    gateway = {"stop_with_server": True, **gateway}
    return (
        local_spawner_config(str(workdir / "home" / "{username}"))
        + f"""
import json
from jhub_af.accounting import accounting_hub_config
from jhub_af.demo import DemoAuthenticator
from jhub_af.hub import add_roles
from jhub_af.gateway import gateway_hub_config

c.JupyterHub.authenticator_class = DemoAuthenticator
# the machine is shared: a slow first start of JupyterLab is not a failure
c.Spawner.http_timeout = 120
c.Spawner.start_timeout = 180
c.DemoAuthenticator.demo_users = json.loads({json.dumps(json.dumps(users))})
c.DemoAuthenticator.allowed_vos = ["/atlas", "/cms"]
roles = accounting_hub_config(
    c, data_dir={str(workdir / "accounting")!r}, port={free_port()},
    policy=json.loads({json.dumps(json.dumps(policy))}),
)
roles += gateway_hub_config(
    c, data_dir={str(workdir / "gateway")!r}, http_port={free_port()}, tcp_port={tcp_port},
    api_port={free_port()}, public_url="http://127.0.0.1:{port}",
    backend_settings=json.loads({json.dumps(json.dumps(backend_settings))}),
    options=json.loads({json.dumps(json.dumps(options))}),
    **json.loads({json.dumps(json.dumps(gateway))}),
)
add_roles(c, roles)
"""
    )


def wait_for_gateway(url: str, token: str, timeout: float = 90) -> None:
    """Return once the gateway lists ``token``'s clusters through the hub at ``url``
    (TimeoutError after ``timeout`` seconds, naming its last answer)."""
    wait_for_http(
        f"{url}/services/dask-gateway/api/v1/clusters/",
        timeout,
        headers={"Authorization": f"jupyterhub {token}"},
    )


def start_gateway_facility(hub_factory, workdir: Path, users: dict = USERS, **config) -> dict:
    """A hub with af-accounting and the gateway (``config``: as ``gateway_hub_text``),
    every user of ``users`` logged in with a token; the gateway answering."""
    port, tcp_port = free_port(), free_port()
    text = gateway_hub_text(workdir, port, tcp_port, users=users, **config)
    hub = hub_factory(text, port=port)
    sessions = {name: login(hub.url, name, "demo") for name in users}
    tokens = {name: user_token(s, hub.url, name) for name, s in sessions.items()}
    wait_for_gateway(hub.url, next(iter(tokens.values())))
    return {
        "hub": hub,
        "url": hub.url,
        "address": f"{hub.url}/services/dask-gateway",
        "proxy_address": f"gateway://127.0.0.1:{tcp_port}",
        "sessions": sessions,
        "tokens": tokens,
        "ledger": workdir / "accounting" / "af-accounting.sqlite",
        "events": workdir / "gateway" / "events.jsonl",
        "workdir": workdir,
    }


@pytest.fixture(scope="module")
def gateway_facility(hub_factory, tmp_path_factory):
    facility = start_gateway_facility(hub_factory, tmp_path_factory.mktemp("gateway"))
    yield facility
    close_clusters(facility)


def open_reservations(facility, user: str, kind: str = "dask-worker") -> list[tuple]:
    with sqlite3.connect(facility["ledger"]) as db:
        return db.execute(
            "SELECT id, state, server FROM af_reservations "
            "WHERE user = ? AND kind = ? AND state IN ('pending', 'active')",
            (user, kind),
        ).fetchall()


def holds_nothing(facility, user: str) -> bool:
    """No open worker or cluster reservation of ``user``."""
    return not open_reservations(facility, user) and not open_reservations(
        facility, user, "dask-cluster"
    )


def all_reservations(facility) -> int:
    with sqlite3.connect(facility["ledger"]) as db:
        return db.execute("SELECT count(*) FROM af_reservations").fetchone()[0]


# dask_gateway's Gateway and GatewayCluster finalizers raise once their event loop has
# stopped (pytest then reports an unraisable exception): the facility keeps them alive
# until its module ends, and close_clusters closes them while the gateway still runs
# (else dask_gateway's atexit hook tries to stop them after the hubs have stopped)
_KEEP: list = []


def gateway(facility, user: str):
    from dask_gateway import Gateway, JupyterHubAuth

    g = Gateway(
        address=facility["address"],
        proxy_address=facility["proxy_address"],
        auth=JupyterHubAuth(api_token=facility["tokens"][user]),
    )
    new_cluster = g.new_cluster

    def new_cluster_kept(*args, **kwargs):
        cluster = new_cluster(*args, **kwargs)
        facility.setdefault("clusters", []).append(cluster)
        _KEEP.append(cluster)
        return cluster

    g.new_cluster = new_cluster_kept
    _KEEP.append(g)
    return g


def close_clusters(facility) -> None:
    """Stop the clusters a module's tests left running (a failed test's, say)."""
    for cluster in facility.get("clusters", []):
        if cluster.status != "closed":
            try:
                cluster.shutdown()
            except Exception as e:  # the test has failed already; say so, go on
                print(f"could not stop cluster {cluster.name}: {e}")


def rest(facility, method: str, path: str, user: str | None = None, token=None, **kw):
    token = token or facility["tokens"][user]
    return requests.request(
        method,
        f"{facility['address']}/api/v1/{path}",
        headers={"Authorization": f"jupyterhub {token}"},
        timeout=60,
        **kw,
    )


def events(facility, event: str) -> list[dict]:
    path = facility["events"]
    lines = path.read_text().splitlines() if path.exists() else []
    return [e for e in map(json.loads, lines) if e["event"] == event]


def scale_warnings(cluster, n: int) -> list[str]:
    """Ask ``cluster`` (a dask_gateway GatewayCluster) for ``n`` workers; return the
    messages of the GatewayWarnings that raised (the gateway's capping sentences)."""
    from dask_gateway.client import GatewayWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cluster.scale(n)
    return [str(w.message) for w in caught if issubclass(w.category, GatewayWarning)]
