"""QuotaKubeBackend (jhub_af.gateway.kube) with a REAL af-accounting and a faked
Kubernetes.

No Kubernetes API server can run here, so only the Kubernetes side is faked:

- ``FakeCustomObjects`` stands for the ``CustomObjectsApi`` (``custom_client``): it
  keeps the DaskCluster objects, records every create and patch call, and applies the
  JSON patches (``/spec/replicas``, the ``jhub-af/reservations`` annotation) to them;
- ``FakeInformer`` answers ``informer.get(name)`` from those objects, as the real
  informer's cache would;
- the tests play dask-gateway's controller (they set ``status.phase`` and call
  ``sync_cluster``, KubeBackend's own code, which builds the ``models.Cluster``) and
  the scheduler (hand-made heartbeat messages, and a ``/api/comm`` route that
  records what the gateway forwards).

``KubeBackend.setup()`` (it loads a kubeconfig and starts the informer) is bypassed:
the fixture sets what it would set (``custom_client``, ``informer``, ``clusters``,
``username_to_clusters``, ``cluster_waiters``, ``session``) and what
``QuotaKubeBackend.setup`` adds (the ``AccountingClient``; the capped middleware is
in the test app). The routes are dask-gateway-server's own handlers (create, scale,
adapt) in an aiohttp app with ``SimpleAuthenticator``. af-accounting is real: a hub
with the service and a Dask policy; the ledger is read after each step.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import sqlite3
from collections import defaultdict
from pathlib import Path

import aiohttp
import pytest
from aiohttp import test_utils, web
from harness import free_port, login, user_token
from harness.accounting_hub import (
    GATEWAY_TOKEN,
    accounting_config,
    api,
    wait_for_service,
)

pytestmark = [
    pytest.mark.integration,
    # dask-gateway-server's routes read the app's and request's plain string keys
    pytest.mark.filterwarnings("ignore::aiohttp.web.NotAppKeyWarning"),
]

USERS = ("alice", "bob", "dave", "olga", "admin")
POLICY = {
    "defaults": {"servers": 1, "cores": 1, "memory": "2G", "dask_clusters": 3, "dask_workers": 2},
    "users": {"bob": {"dask_clusters": 1}},
}


# ---- the faked Kubernetes side ------------------------------------------------------


def _api_exception(status: int, reason: str):
    from kubernetes_asyncio.client.rest import ApiException

    return ApiException(status=status, reason=reason)


class FakeCustomObjects:
    """The DaskCluster objects and every create/patch call made on them."""

    def __init__(self):
        self.objects: dict[str, dict] = {}
        self.calls: list[tuple] = []
        self.fail_create = None
        # the most replicas all clusters had at once, after any patch
        self.max_total_replicas = 0

    async def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        name = body["metadata"]["name"]
        self.calls.append(("create", f"{namespace}.{name}", copy.deepcopy(body)))
        if self.fail_create is not None:
            raise self.fail_create
        obj = copy.deepcopy(body)
        obj["metadata"].update(namespace=namespace, creationTimestamp="2026-12-06T10:00:00Z")
        self.objects[f"{namespace}.{name}"] = obj
        return copy.deepcopy(obj)

    async def patch_namespaced_custom_object(
        self, group, version, namespace, plural, name, body, _content_type=None
    ):
        key = f"{namespace}.{name}"
        self.calls.append(("patch", key, copy.deepcopy(body)))
        await asyncio.sleep(0)  # an API call yields to the event loop
        obj = self.objects.get(key)
        if obj is None:
            raise _api_exception(404, "Not Found")
        if isinstance(body, dict):  # a merge patch (RFC 7386), as the gateway says
            assert _content_type == "application/merge-patch+json", _content_type
            _merge(obj, body)
            return copy.deepcopy(obj)
        for op in body:  # a JSON patch (RFC 6902), as KubeBackend sends for replicas
            assert op["op"] == "add", op
            *parents, last = [
                p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]
            ]
            target = obj
            for p in parents:
                if p not in target:  # as the API server: no parent, no add
                    raise _api_exception(422, f"missing {op['path']}")
                target = target[p]
            target[last] = op["value"]
        total = sum(o["spec"].get("replicas", 0) for o in self.objects.values())
        self.max_total_replicas = max(self.max_total_replicas, total)
        return copy.deepcopy(obj)

    def replicas(self, key: str) -> list[int]:
        """Every value patched into ``key``'s /spec/replicas, in order."""
        return [
            op["value"]
            for call, k, body in self.calls
            if call == "patch" and k == key
            if isinstance(body, list)
            for op in body
            if op["path"] == "/spec/replicas"
        ]

    def annotation(self, key: str) -> dict:
        return json.loads(self.objects[key]["metadata"]["annotations"]["jhub-af/reservations"])


def _merge(target: dict, patch: dict) -> None:
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict):
            _merge(target.setdefault(k, {}), v)
        else:
            target[k] = v


class FakeInformer:
    """The informer's cache: the objects as of the last watch event (``refresh``), so
    it lags behind the gateway's own patches, as the real one may."""

    def __init__(self, client: FakeCustomObjects):
        self.client = client
        self.refresh()

    def refresh(self) -> None:
        self.cache = copy.deepcopy(self.client.objects)

    def get(self, name, default=None):
        return self.cache.get(name, default)


# ---- af-accounting (real) and the ledger ------------------------------------------


@pytest.fixture(scope="module")
def accounting(hub_factory, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("kube-acct")
    hub = hub_factory(accounting_config(workdir, policy=POLICY))
    tokens = {name: user_token(login(hub.url, name, "demo"), hub.url, name) for name in USERS}
    wait_for_service(hub.url, tokens["alice"])
    return {"api": api(hub.url) + "/", "ledger": workdir / "accounting" / "af-accounting.sqlite"}


def rows(ledger: Path, user: str, kind: str = "dask-worker", *, open_only: bool = True):
    """``[(id, state, server, started)]`` of ``user``'s reservations of ``kind``."""
    with sqlite3.connect(ledger) as db:
        found = db.execute(
            "SELECT id, state, server, started FROM af_reservations"
            " WHERE user = ? AND kind = ? ORDER BY created",
            (user, kind),
        ).fetchall()
    return [r for r in found if r[1] in ("pending", "active") or not open_only]


def state_of(ledger: Path, rid: str) -> tuple:
    with sqlite3.connect(ledger) as db:
        return db.execute(
            "SELECT state, started, ended FROM af_reservations WHERE id = ?", (rid,)
        ).fetchone()


def last_seen(ledger: Path, rid: str) -> float:
    with sqlite3.connect(ledger) as db:
        row = db.execute("SELECT last_seen FROM af_reservations WHERE id = ?", (rid,)).fetchone()
    return row[0]


# ---- the backend, the routes, the scheduler ----------------------------------------


def basic_auth(user: str) -> dict:
    """SimpleAuthenticator's login: Basic auth, any password."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:".encode()).decode()}


def make_client(url: str, **kw):
    from jhub_af.accounting import AccountingClient

    class CountingClient(AccountingClient):
        """The real client; counts releases, to show each happens once."""

        released: list

        async def release(self, rid):
            self.released.append(rid)
            return await super().release(rid)

    client = CountingClient(url=url, api_token=GATEWAY_TOKEN, **kw)
    client.released = []
    return client


def make_backend(kube: FakeCustomObjects, accounting_client):
    """A QuotaKubeBackend with what KubeBackend.setup() would set (no API server)."""
    from dask_gateway_server.utils import Flag

    from jhub_af.gateway.kube import QuotaKubeBackend

    backend = QuotaKubeBackend(gateway_instance="kube-test")
    backend.custom_client = kube
    backend.informer = FakeInformer(kube)
    backend.clusters = {}
    backend.username_to_clusters = defaultdict(dict)
    backend.cluster_waiters = defaultdict(Flag)
    backend.accounting = accounting_client
    backend.denied_retry_interval = 0.0  # every heartbeat asks again
    return backend


class Gateway:
    """The routes in front of one backend, and the controller/scheduler stand-ins."""

    def __init__(self, backend, kube, http, comm):
        self.backend, self.kube, self.http, self.comm = backend, kube, http, comm

    async def create(self, user: str):
        r = await self.http.post(
            "/api/v1/clusters/", json={"cluster_options": {}}, headers=basic_auth(user)
        )
        return r.status, await r.json() if r.content_type == "application/json" else None, r

    async def new_cluster(self, user: str) -> str:
        status, body, _ = await self.create(user)
        assert status == 201, body
        await self.phase(body["name"], "Running")
        return body["name"]

    async def phase(self, key: str, phase: str) -> None:
        """What dask-gateway's controller does: set the phase; then the API server syncs."""
        status = self.kube.objects[key].setdefault("status", {})
        status.update(phase=phase, service=f"{key.split('.')[1]}-scheduler")
        if phase in ("Stopped", "Failed"):
            status["completionTime"] = "2026-12-06T11:00:00Z"
        await self.sync(key)
        if phase == "Running":  # the scheduler's api is the test's /api/comm route
            self.backend.clusters[key].api_address = str(self.http.make_url(f"/comm/{key}"))

    async def sync(self, key: str) -> None:
        """A watch event for ``key``: the informer's cache is updated, the API server syncs."""
        self.backend.informer.refresh()
        await self.backend.sync_cluster(key)

    async def heartbeat(self, key: str, count: int, active=(), closing=(), closed=()):
        await self.backend.on_cluster_heartbeat(
            key,
            {
                "count": count,
                "active_workers": list(active),
                "closing_workers": list(closing),
                "closed_workers": list(closed),
            },
        )

    async def request(self, key: str, user: str, op: str, **body) -> dict:
        r = await self.http.post(
            f"/api/v1/clusters/{key}/{op}", json=body, headers=basic_auth(user)
        )
        assert r.status == 200, await r.text()
        return await r.json()


@pytest.fixture
async def gateway_for():
    """``await gateway_for(accounting_client, kube=None)``: a Gateway on a new backend."""
    from dask_gateway_server.auth import SimpleAuthenticator
    from dask_gateway_server.routes import default_routes

    from jhub_af.gateway.reservations import capped_middleware

    opened = []

    async def make(accounting_client, kube: FakeCustomObjects | None = None) -> Gateway:
        kube = kube or FakeCustomObjects()
        backend = make_backend(kube, accounting_client)
        comm: dict[str, list] = defaultdict(list)

        async def scheduler_comm(request):
            comm[request.match_info["key"]].append(await request.json())
            return web.Response()

        app = web.Application(middlewares=[capped_middleware])
        app["backend"] = backend
        app["authenticator"] = SimpleAuthenticator()
        app["log"] = backend.log
        app.add_routes(default_routes)
        app.router.add_post("/comm/{key}/api/comm", scheduler_comm)
        http = test_utils.TestClient(test_utils.TestServer(app))
        await http.start_server()
        backend.session = aiohttp.ClientSession()
        opened.append((http, backend.session))
        return Gateway(backend, kube, http, comm)

    yield make
    for http, session in opened:
        await session.close()
        await http.close()


async def denial(accounting, user: str, kind: str = "dask-worker") -> str:
    """The sentence af-accounting gives ``user`` for one more ``kind`` right now."""
    from jhub_af.accounting import QuotaDenied

    client = make_client(accounting["api"])
    try:
        r = await client.reserve(user, kind, {"cores": 1.0, "memory": 2**31})
    except QuotaDenied as e:
        return e.message
    await client.release(r.id)
    raise AssertionError(f"{user} was granted one more {kind}")


async def stop(gw: Gateway, *keys: str) -> None:
    for key in keys:
        await gw.backend.stop_cluster(key)
        assert gw.kube.objects[key]["spec"]["active"] is False
        await gw.phase(key, "Stopped")


# ---- the tests ----------------------------------------------------------------------


async def test_two_clusters_of_one_user_never_exceed_the_users_workers(accounting, gateway_for):
    ledger = accounting["ledger"]
    gw = await gateway_for(make_client(accounting["api"]))
    first = await gw.new_cluster("alice")
    second = await gw.new_cluster("alice")
    # the clusters' reservations were confirmed when they ran
    assert [r[1] for r in rows(ledger, "alice", "dask-cluster")] == ["active", "active"]

    await gw.heartbeat(first, 3)
    await gw.heartbeat(second, 3)
    assert gw.kube.replicas(first) == [2]
    assert gw.kube.replicas(second) == [0]
    assert gw.kube.max_total_replicas == 2
    assert [(r[1], r[2]) for r in rows(ledger, "alice")] == [("pending", first)] * 2

    sentence = await denial(accounting, "alice")
    answer = await gw.request(second, "alice", "scale", count=3)
    assert answer == {
        "ok": False,
        "msg": f"Scale request of 3 workers exceeds your Dask quota: {sentence} "
        "Scaling to 0 instead; more start when your other workers stop.",
    }
    assert "2 Dask workers" in sentence
    # the scheduler keeps the user's wish; the heartbeat keeps capping it
    assert gw.comm[second] == [{"op": "scale", "count": 3}]
    answer = await gw.request(second, "alice", "adapt", minimum=2, maximum=4)
    assert answer["msg"] == (
        f"Adapt minimum of 2 workers exceeds your Dask quota: {sentence} "
        "Scaling to 0 instead; more start when your other workers stop."
    )

    # the first cluster scales down to one: the second gets the freed worker
    await gw.heartbeat(first, 1)
    await gw.heartbeat(second, 3)
    assert gw.kube.replicas(first) == [2, 1]
    assert gw.kube.replicas(second) == [0, 1]
    assert gw.kube.max_total_replicas == 2
    assert sorted(r[2] for r in rows(ledger, "alice")) == sorted([first, second])

    await stop(gw, first, second)
    assert rows(ledger, "alice") == [] and rows(ledger, "alice", "dask-cluster") == []


async def test_concurrent_scale_requests_and_heartbeats_never_overcommit(accounting, gateway_for):
    ledger = accounting["ledger"]
    gw = await gateway_for(make_client(accounting["api"]))
    keys = [await gw.new_cluster("olga"), await gw.new_cluster("olga")]
    answers = await asyncio.gather(
        *[gw.heartbeat(keys[i % 2], 2 + i % 3) for i in range(12)],
        *[gw.request(keys[i % 2], "olga", "scale", count=3) for i in range(8)],
    )
    assert gw.kube.max_total_replicas <= 2
    open_rows = rows(ledger, "olga")
    assert len(open_rows) == 2
    held = {key: gw.kube.annotation(key) for key in keys}
    free = sorted(rid for h in held.values() for rid in h["free"])
    assert free == sorted(r[0] for r in open_rows)
    # each cluster's replicas never exceeded what it held at the end
    for key in keys:
        assert max(gw.kube.replicas(key)) <= len(held[key]["free"])
    # every capped answer names the limit; the uncapped ones are ok
    capped = [a for a in answers if isinstance(a, dict) and not a["ok"]]
    assert all("exceeds your Dask quota" in a["msg"] for a in capped) and capped
    await stop(gw, *keys)
    assert rows(ledger, "olga") == [] and rows(ledger, "olga", "dask-cluster") == []


async def test_workers_confirmed_when_active_released_when_closed_or_gone(accounting, gateway_for):
    ledger = accounting["ledger"]
    gw = await gateway_for(make_client(accounting["api"]))
    key = await gw.new_cluster("dave")
    await gw.heartbeat(key, 2)
    assert [r[1] for r in rows(ledger, "dave")] == ["pending", "pending"]

    await gw.heartbeat(key, 2, active=["w1", "w2"])
    workers = gw.kube.annotation(key)["workers"]
    assert sorted(workers) == ["w1", "w2"]
    for rid in workers.values():
        state, started, ended = state_of(ledger, rid)
        assert state == "active" and started is not None and ended is None

    # w1's pod was killed: its scheduler reports it closed; its replacement w3 starts
    await gw.heartbeat(key, 2, active=["w2"], closed=["w1"])
    assert state_of(ledger, workers["w1"])[0] == "released"
    assert state_of(ledger, workers["w2"])[0] == "active"
    pending = [r for r in rows(ledger, "dave") if r[1] == "pending"]
    assert len(pending) == 1 and pending[0][0] != workers["w1"]
    await gw.heartbeat(key, 2, active=["w2", "w3"], closed=["w1"])
    now = gw.kube.annotation(key)["workers"]
    assert now == {"w2": workers["w2"], "w3": pending[0][0]}
    assert state_of(ledger, now["w3"])[0] == "active"
    assert gw.kube.replicas(key) == [2, 2, 2, 2]

    # a worker that vanishes without being reported closed is released too
    await gw.heartbeat(key, 1, active=["w3"])
    assert state_of(ledger, workers["w2"])[0] == "released"
    assert [r[0] for r in rows(ledger, "dave")] == [now["w3"]]
    assert gw.kube.replicas(key)[-1] == 1

    # the accounting heartbeat renews what is confirmed: the cluster and w3
    confirmed = [gw.kube.annotation(key)["cluster"], now["w3"]]
    seen = {rid: last_seen(ledger, rid) for rid in confirmed}
    await asyncio.sleep(0.05)
    await gw.backend._renew_reservations()
    assert all(last_seen(ledger, rid) > seen[rid] for rid in confirmed)
    await stop(gw, key)
    assert rows(ledger, "dave") == [] and rows(ledger, "dave", "dask-cluster") == []


async def test_cluster_over_the_cluster_quota_is_422_and_nothing_is_created(
    accounting, gateway_for
):
    from jhub_af.gateway import QUOTA_REFUSAL_HEADER

    ledger = accounting["ledger"]
    gw = await gateway_for(make_client(accounting["api"]))
    first = await gw.new_cluster("bob")
    before = rows(ledger, "bob", "dask-cluster", open_only=False)
    sentence = await denial(accounting, "bob", "dask-cluster")
    status, body, response = await gw.create("bob")
    assert status == 422
    assert body == {"error": sentence}
    assert "1 Dask cluster" in sentence
    assert response.headers[QUOTA_REFUSAL_HEADER] == "quota"
    assert [c[0] for c in gw.kube.calls if c[0] == "create"] == ["create"]  # the first only
    assert rows(ledger, "bob", "dask-cluster", open_only=False) == before

    # creating the object fails: the reservation made for it is released
    await stop(gw, first)
    gw.kube.fail_create = _api_exception(500, "Internal Server Error")
    status, _, _ = await gw.create("bob")
    assert status == 500
    attempts = [c for c in gw.kube.calls if c[0] == "create"]
    assert len(attempts) == 2 and attempts[1][1] not in gw.kube.objects
    rid = json.loads(attempts[1][2]["metadata"]["annotations"]["jhub-af/reservations"])["cluster"]
    assert state_of(ledger, rid)[0] == "released"
    assert rows(ledger, "bob", "dask-cluster") == []


@pytest.mark.parametrize("phase", ["Stopped", "Failed"])
async def test_stopped_or_failed_cluster_releases_everything_once(accounting, gateway_for, phase):
    ledger = accounting["ledger"]
    client = make_client(accounting["api"])
    gw = await gateway_for(client)
    key = await gw.new_cluster("admin")
    await gw.heartbeat(key, 2, active=["w1"])
    held = gw.kube.annotation(key)
    rids = [held["cluster"], held["workers"]["w1"], *held["free"]]
    assert len(rids) == 3 and len(set(rids)) == 3
    assert {state_of(ledger, rid)[0] for rid in rids} == {"active", "pending"}

    await gw.phase(key, phase)
    assert sorted(client.released) == sorted(rids)
    assert {state_of(ledger, rid)[0] for rid in rids} == {"released"}
    ended = [state_of(ledger, rid)[2] for rid in rids]
    assert gw.kube.annotation(key) == {
        "cluster": None,
        "free": [],
        "workers": {},
        "confirmed": [],
        "lifetime": None,
    }
    # more events (one from a cache that predates the release), a late heartbeat, the
    # object deleted: nothing more is released
    await gw.backend.sync_cluster(key)
    await gw.sync(key)
    await gw.heartbeat(key, 2, active=["w1"])
    assert gw.kube.replicas(key)[-1] == 0
    del gw.kube.objects[key]
    await gw.sync(key)
    assert sorted(client.released) == sorted(rids)
    assert [state_of(ledger, rid)[2] for rid in rids] == ended
    assert rows(ledger, "admin") == [] and rows(ledger, "admin", "dask-cluster") == []


async def test_a_restarted_gateway_reloads_the_reservations_and_keeps_the_cap(
    accounting, gateway_for
):
    ledger = accounting["ledger"]
    gw = await gateway_for(make_client(accounting["api"]))
    key = await gw.new_cluster("alice")
    await gw.heartbeat(key, 3, active=["w1"])
    before = rows(ledger, "alice")
    assert len(before) == 2 and gw.kube.replicas(key) == [2]

    # a new API server pod: a new backend, the same DaskCluster objects
    restarted = await gateway_for(make_client(accounting["api"]), kube=gw.kube)
    await restarted.phase(key, "Running")
    await restarted.heartbeat(key, 3, active=["w1", "w2"])
    assert gw.kube.replicas(key) == [2, 2]
    after = rows(ledger, "alice")
    assert sorted(r[0] for r in after) == sorted(r[0] for r in before)  # no new ones
    assert {r[1] for r in after} == {"active"}
    held = gw.kube.annotation(key)
    assert sorted(held["workers"]) == ["w1", "w2"] and held["free"] == []
    answer = await restarted.request(key, "alice", "scale", count=3)
    assert answer["ok"] is False and "Scaling to 2 instead" in answer["msg"]

    await stop(restarted, key)
    assert rows(ledger, "alice") == [] and rows(ledger, "alice", "dask-cluster") == []


async def test_a_lost_annotation_leaves_the_old_reservations_to_accounting(accounting, gateway_for):
    ledger = accounting["ledger"]
    gw = await gateway_for(make_client(accounting["api"]))
    key = await gw.new_cluster("dave")
    await gw.heartbeat(key, 2, active=["w1"])
    forgotten = gw.kube.annotation(key)
    before = rows(ledger, "dave")
    assert len(before) == 2

    # someone removes the object's annotations; then the API server pod restarts
    del gw.kube.objects[key]["metadata"]["annotations"]
    restarted = await gateway_for(make_client(accounting["api"]), kube=gw.kube)
    await restarted.phase(key, "Running")
    await restarted.heartbeat(key, 2, active=["w1"])
    # the forgotten reservations still count in accounting: no worker is granted anew
    assert gw.kube.replicas(key) == [2, 0]
    assert rows(ledger, "dave") == before
    assert "annotations" not in gw.kube.objects[key]["metadata"]

    # once accounting has ended them (heartbeat_ttl; released here to keep the test
    # short), the cluster gets new ones, saved in a new annotation
    client = make_client(accounting["api"])
    for rid in [*forgotten["workers"].values(), *forgotten["free"]]:
        await client.release(rid)
    await restarted.heartbeat(key, 2, active=["w1"])
    assert gw.kube.replicas(key) == [2, 0, 2]
    held = gw.kube.annotation(key)
    assert list(held["workers"]) == ["w1"] and len(held["free"]) == 1
    assert held["cluster"] is None  # the cluster's own reservation was forgotten too
    await stop(restarted, key)
    await client.release(forgotten["cluster"])
    assert rows(ledger, "dave") == [] and rows(ledger, "dave", "dask-cluster") == []


async def test_accounting_unreachable_is_503_and_nothing_is_created(gateway_for):
    from jhub_af.accounting.client import UNREACHABLE

    client = make_client(f"http://127.0.0.1:{free_port()}/api/v1/", starting_wait=0.0)
    gw = await gateway_for(client)
    status, body, _ = await gw.create("alice")
    assert status == 503
    assert body == {"error": UNREACHABLE}
    assert gw.kube.calls == [] and gw.kube.objects == {}
