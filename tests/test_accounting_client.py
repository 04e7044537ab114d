"""AccountingClient and the spawner interface against a real af-accounting behind a real
hub: grants, refusals naming the limit, replayed releases, fail-closed and fail-open
when the service is unreachable, a locked database, and 200 concurrent HTTP requests."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from urllib.parse import urlparse

import pytest
import requests
from harness import free_port
from harness.accounting_hub import READER_TOKEN, auth, facility
from traitlets.config import Config, LoggingConfigurable

from jhub_af.accounting import (
    AccountingClient,
    AccountingRefused,
    AccountingUnavailable,
    QuotaDenied,
    SpawnReservation,
)

pytestmark = pytest.mark.integration
__all__ = ["facility"]  # the module's hub, a fixture


def client(facility, **kw) -> AccountingClient:
    return AccountingClient(url=facility["api"] + "/", api_token=facility["spawner"], **kw)


async def test_client_reserve_confirm_release(facility):
    c = client(facility)
    r = await c.reserve("olga", "server", {"cores": 1, "memory": "1G"}, server="c1")
    assert r.id and not r.degraded and r.resources["cores"] == 1
    assert (await c.confirm(r.id))["state"] == "active"
    assert (await c.heartbeat(r.id))["state"] == "active"
    assert (await c.release(r.id))["state"] == "released"
    with pytest.raises(AccountingRefused) as e:
        await c.release(r.id)
    assert (e.value.status_code, e.value.message) == (
        409,
        f"Reservation {r.id} is already released.",
    )


async def test_client_denial_is_a_403_naming_the_limit(facility):
    c = client(facility)
    first = await c.reserve("olga", "server", {"cores": 1, "memory": "1G"}, server="d1")
    with pytest.raises(QuotaDenied) as e:
        await c.reserve("olga", "server", {"cores": 1, "memory": "1G"}, server="d2")
    assert e.value.status_code == 403
    assert e.value.quota_reason == "servers"
    assert e.value.message.startswith(
        "The facility's default quota lets you run 1 server at a time; you are using 1."
    )
    await c.release(first.id)


@pytest.mark.parametrize("fail_open", [False, True])
async def test_unreachable_service_fails_closed_or_open(fail_open, caplog):
    c = AccountingClient(
        url=f"http://127.0.0.1:{free_port()}/api/v1/",
        api_token="secret-tok",
        fail_open=fail_open,
        timeout=2,
        starting_wait=1,
    )
    if not fail_open:
        with pytest.raises(AccountingUnavailable) as e:
            await c.reserve("alice", "server", {"cores": 1})
        assert e.value.status_code == 503
        assert e.value.message.startswith(
            "The facility's quota service cannot be reached, so nothing can be started"
        )
        return
    r = await c.reserve("alice", "server", {"cores": 1})
    assert r.degraded and r.id is None
    assert await c.confirm(r.id) is None and await c.release(r.id) is None
    assert "starting server of alice without a reservation (fail-open)" in caplog.text
    assert "secret-tok" not in caplog.text


async def test_a_reservation_waits_while_the_service_is_starting(facility):
    # nothing listens at first (the hub starts its service a moment after it answers);
    # then a plain TCP relay to the real service opens on that port
    target = urlparse(facility["api"])
    port = free_port()

    async def relay(reader, writer):
        up_reader, up_writer = await asyncio.open_connection(target.hostname, target.port)

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    url = f"http://127.0.0.1:{port}{target.path}/"
    c = AccountingClient(url=url, api_token=facility["spawner"], starting_wait=20)
    pending = asyncio.ensure_future(
        c.reserve("olga", "server", {"cores": 1, "memory": "1G"}, server="late")
    )
    await asyncio.sleep(1.5)
    assert not pending.done()  # still retrying the refused connection
    server = await asyncio.start_server(relay, "127.0.0.1", port)
    try:
        r = await asyncio.wait_for(pending, 30)
        assert r.id and not r.degraded
        assert (await c.release(r.id))["state"] == "released"
    finally:
        server.close()


class StandInSpawner(LoggingConfigurable):
    """What a SpawnReservation reads of its spawner: the user, the server's name, the log."""

    name = "iface"
    user = SimpleNamespace(name="olga")
    _log_name = "olga:iface"


async def test_spawn_reservation_reserves_and_releases_once(facility):
    config = Config()
    config.AccountingClient.url = facility["api"] + "/"
    config.AccountingClient.api_token = facility["spawner"]
    held = SpawnReservation(parent=StandInSpawner(config=config))
    assert held.configured and held.client.url == facility["api"] + "/"
    reservation = await held.reserve({"cores": 1, "memory": "1G"})
    assert held.reservation_id == reservation.id
    assert held.save({}) == {"accounting_reservation": reservation.id}
    await held.release("stopped")
    assert held.reservation_id is None
    # a second release has nothing left to send and never raises
    await held.release("stopped")
    state = requests.get(
        f"{facility['api']}/usage/users/olga", headers=auth(facility["tokens"]["olga"]), timeout=30
    ).json()
    assert reservation.id not in [r["id"] for r in state["running"]]


def test_locked_database_answers_503_and_records_nothing(facility):
    before = (
        sqlite3.connect(facility["db"]).execute("SELECT count(*) FROM af_reservations").fetchone()
    )
    blocker = sqlite3.connect(facility["db"], isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        r = requests.post(
            f"{facility['api']}/reservations",
            json={"user": "olga", "kind": "server", "resources": {"cores": 1}},
            headers=auth(facility["spawner"]),
            timeout=60,
        )
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert r.status_code == 503
    assert r.json() == {
        "error": "The accounting database is busy or cannot be reached, so "
        "nothing was recorded. Try again in a minute; if it lasts, tell the "
        "facility's admins."
    }
    after = (
        sqlite3.connect(facility["db"]).execute("SELECT count(*) FROM af_reservations").fetchone()
    )
    assert after == before


def test_200_concurrent_http_requests_never_overcommit(facility):
    # dave may run 3 servers (a user override); 200 requests race for them
    barrier = threading.Barrier(50)

    def one(i):
        if i < 50:
            barrier.wait()
        r = requests.post(
            f"{facility['api']}/reservations",
            json={
                "user": "dave",
                "kind": "server",
                "server": f"race{i}",
                "resources": {"cores": 1},
            },
            headers=auth(facility["spawner"]),
            timeout=120,
        )
        return r.status_code, r.json()

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(one, range(200)))
    granted = [body["id"] for status, body in results if status == 201]
    refused = {body["reason"] for status, body in results if status == 403}
    assert len(granted) == 3 and refused == {"servers"}
    assert {status for status, _ in results} == {201, 403}
    for rid in granted:
        requests.delete(
            f"{facility['api']}/reservations/{rid}", headers=auth(facility["spawner"]), timeout=30
        )


def test_read_scope_token_sees_all_but_cannot_reserve(facility):
    r = requests.get(f"{facility['api']}/usage/users/bob", headers=auth(READER_TOKEN), timeout=30)
    assert r.status_code == 200 and r.json()["user"] == "bob"
    metrics = requests.get(
        f"{facility['url']}/services/af-accounting/metrics", headers=auth(READER_TOKEN), timeout=30
    )
    assert metrics.status_code == 200 and "jhub_af_reservation_decision_seconds" in metrics.text
    me = requests.get(f"{facility['api']}/usage/me", headers=auth(READER_TOKEN), timeout=30)
    assert (me.status_code, me.json()) == (
        400,
        {"error": "usage/me is for users; ask for usage/users/{name}."},
    )
    refused = requests.post(
        f"{facility['api']}/reservations",
        headers=auth(READER_TOKEN),
        json={"user": "bob", "kind": "dask-cluster"},
        timeout=30,
    )
    assert refused.json() == {
        "error": "This token lacks the scope custom:jhub-af:accounting-reserve."
    }
