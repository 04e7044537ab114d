"""ProfileSpawner wired to af-accounting, in a real hub with the real service: reservations
sized from the validated profile, the 403 that names the limit (REST API and spawn page),
confirm, heartbeat, release on stop (once) and when poll finds the server gone, a hub
restart that keeps the reservation, fail-closed and fail-open, and the server's own token
reading policy/me and usage/me (what the JupyterLab panel does)."""

from __future__ import annotations

import html
import json
import signal
import sqlite3
import time

import pytest
import requests
from harness import (
    free_port,
    local_spawner_config,
    login,
    notebooks_of,
    start_hub,
    stop_server,
    user_token,
    wait_until,
)
from harness.accounting_hub import auth, wait_for_service
from traitlets.config import Config

from jhub_af.accounting import ACCOUNTING_OFF, SpawnReservation
from jhub_af.accounting.client import UNREACHABLE
from jhub_af.hub import spawn_body
from jhub_af.spawner import ProfileSpawner

pytestmark = pytest.mark.integration

PROFILES = [
    {"slug": "default", "display_name": "Default", "backend": "local",
     "resources": {"cores": 1, "memory": "1G"}},
    {"slug": "large", "display_name": "Large", "backend": "local",
     "resources": {"cores": 4, "memory": "8G"}, "groups": ["/atlas/users"]},
    {"slug": "gpu", "display_name": "GPU", "backend": "local",
     "resources": {"cores": 1, "memory": "1G"}, "accelerator": {"type": "t4", "count": 1},
     "groups": ["/cms/gpu"]},
]  # fmt: skip
USERS = {
    "alice": {"groups": ["/atlas", "/atlas/users"]},
    "bob": {"groups": ["/cms", "/cms/gpu"]},
}
POLICY = {
    "defaults": {"servers": 1, "cores": 1, "memory": "4G", "gpus": {"*": 0}, "core_hours": 100},
    "groups": {
        "/atlas/users": {"cores": 2},
        "/cms/gpu": {"servers": 2, "cores": 2, "gpus": {"t4": 1}},
    },
}
LARGE_REFUSED = (
    "Your group /atlas/users may use 2 cores at a time; you are using none and asked for 4 "
    "more. Choose a smaller profile or size, or ask your VO admin for a larger quota."
)
GPU_REFUSED = (
    "Your group /cms/gpu may run 1 t4 GPU at a time; you are using 1. Stop something you "
    "no longer need, or ask your VO admin for a larger quota."
)
HUB_PORT = free_port()
SERVICE_PORT = free_port()
DEAD_URL = f"http://127.0.0.1:{free_port()}/services/af-accounting/api/v1/"


def config(workdir, extra: str = "") -> str:
    return (
        local_spawner_config(str(workdir / "home" / "{username}"))
        + f"""
import json
from jhub_af.accounting import accounting_hub_config
from jhub_af.hub import add_roles

c.JupyterHub.hub_bind_url = "http://127.0.0.1:{HUB_PORT}"
c.JupyterHub.cleanup_servers = False
c.JupyterHub.allow_named_servers = True
c.JupyterHub.authenticator_class = "af-demo"
c.DemoAuthenticator.demo_users = json.loads({json.dumps(json.dumps(USERS))})
c.DemoAuthenticator.allowed_vos = ["/atlas", "/cms"]
c.JupyterHub.spawner_class = "af-profiles"
c.ProfileSpawner.profiles = json.loads({json.dumps(json.dumps(PROFILES))})
c.ProfileSpawner.backend_classes = {{"local": "jupyterhub.spawner.SimpleLocalProcessSpawner"}}
c.Spawner.poll_interval = 1
c.AccountingClient.heartbeat_interval = 1
add_roles(c, accounting_hub_config(
    c,
    data_dir={str(workdir / "accounting")!r},
    port={SERVICE_PORT},
    policy=json.loads({json.dumps(json.dumps(POLICY))}),
    service_settings={{"reconcile_interval": 2, "log_level": "INFO"}},
))
"""
        + extra
    )


@pytest.fixture(scope="module")
def facility(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("acct-profiles")
    state = {"workdir": workdir, "port": free_port()}
    state["hub"] = start_hub(workdir, config(workdir), port=state["port"])
    _connect(state)
    yield state
    state["hub"].stop()
    for user in USERS:
        for p in notebooks_of(user, HUB_PORT):
            p.kill()


def _connect(state) -> None:
    url = state["hub"].url
    state["sessions"] = {name: login(url, name, "demo") for name in USERS}
    state["tokens"] = {n: user_token(s, url, n) for n, s in state["sessions"].items()}
    wait_for_service(url, state["tokens"]["alice"])


def restart(state, extra: str = "") -> None:
    """Stop the hub alone (notebooks keep running: cleanup_servers is off) and start it
    again on the same ports, with ``extra`` config."""
    old = state["hub"]
    old.process.proc.send_signal(signal.SIGTERM)
    old.process.proc.wait(60)
    old.stop()
    state["hub"] = start_hub(state["workdir"], config(state["workdir"], extra), port=state["port"])
    _connect(state)


def rows(state, user: str) -> list[dict]:
    with sqlite3.connect(state["workdir"] / "accounting" / "af-accounting.sqlite") as db:
        db.row_factory = sqlite3.Row
        found = db.execute(
            "SELECT id, server, state, cores, memory, gpu_type, gpus, client, end_reason, "
            "started, last_seen, ended FROM af_reservations WHERE user = ? ORDER BY created",
            (user,),
        ).fetchall()
    return [dict(r) for r in found]


def open_rows(state, user: str) -> list[dict]:
    return [r for r in rows(state, user) if r["state"] in ("pending", "active")]


def api(state, path: str, token: str) -> requests.Response:
    url = f"{state['hub'].url}/services/af-accounting/api/v1/{path}"
    return requests.get(url, headers=auth(token), timeout=30)


def start(state, user: str, options: dict, server: str = "") -> requests.Response:
    s, url = state["sessions"][user], state["hub"].url
    path = f"{url}/hub/api/users/{user}/servers/{server}" if server else (
        f"{url}/hub/api/users/{user}/server"
    )  # fmt: skip
    return s.post(path, json=spawn_body(options, "6"), timeout=60)


def wait_ready(state, user: str, server: str = "", timeout: float = 120) -> dict:
    s, url = state["sessions"][user], state["hub"].url
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = s.get(f"{url}/hub/api/users/{user}", timeout=10).json()
        found = model["servers"].get(server)
        if found and found["ready"]:
            return found
        if not found and not model["pending"]:
            raise AssertionError(f"server {user}/{server} is gone: {model}")
        time.sleep(0.25)
    raise TimeoutError(f"{user}/{server}")


def log(state) -> str:
    return state["hub"].process.log.read_text(errors="replace")


def test_accounting_off_without_a_url_is_said_once(monkeypatch):
    # as in a fresh hub process: nothing said yet (once per process is once per hub)
    monkeypatch.setattr(SpawnReservation, "accounting_off_said", False)
    spawner = ProfileSpawner(config=Config())
    records = []
    # the hub's logger outlives this test: patched for it only
    monkeypatch.setattr(
        spawner.log, "warning", lambda msg, *a: records.append(msg % a if a else msg)
    )
    assert [spawner._accounting_on(), spawner._accounting_on()] == [False, False]
    assert records == [ACCOUNTING_OFF]
    assert ProfileSpawner(config=Config())._accounting_on() is False
    assert records == [ACCOUNTING_OFF]  # a second spawner of the same hub says nothing
    config_on = Config()
    config_on.AccountingClient.url = DEAD_URL
    assert ProfileSpawner(config=config_on)._accounting_on() is True
    config_on.ProfileSpawner.accounting = "off"
    assert ProfileSpawner(config=config_on)._accounting_on() is False
    config_forced = Config()
    config_forced.ProfileSpawner.accounting = "on"
    assert ProfileSpawner(config=config_forced)._accounting_on() is True


def test_start_reserves_the_profile_size_confirms_heartbeats_and_stop_releases_once(facility):
    # forged options are refused before anything is reserved
    forged = start(facility, "alice", {"profile": "default", "cores": 0})
    assert forged.status_code == 400
    assert rows(facility, "alice") == []

    assert start(facility, "alice", {"profile": "default"}).status_code in (201, 202)
    wait_ready(facility, "alice")
    [row] = rows(facility, "alice")
    assert (row["state"], row["cores"], row["memory"], row["gpus"], row["client"]) == (
        "active",
        1.0,
        2**30,
        0,
        "af-spawner",
    )
    running = api(facility, "usage/me", facility["tokens"]["alice"]).json()["running"]
    assert [r["id"] for r in running] == [row["id"]]
    # heartbeats from the spawner's poll (every second here) reach the service
    beat = f"POST /services/af-accounting/api/v1/reservations/{row['id']}/heartbeat"
    wait_until(lambda: f"200 {beat}" in log(facility), what="a heartbeat")

    stop_server(facility["sessions"]["alice"], facility["hub"].url, "alice")
    [row] = rows(facility, "alice")
    assert (row["state"], row["end_reason"]) == ("released", "released")
    assert row["ended"] is not None
    text = log(facility)
    assert text.count(f"Releasing reservation {row['id']} of alice") == 1
    assert "Could not release" not in text
    assert f"DELETE /services/af-accounting/api/v1/reservations/{row['id']}" in text


def test_the_servers_own_token_reads_policy_and_usage(facility):
    assert start(facility, "bob", {"profile": "gpu"}).status_code in (201, 202)
    wait_ready(facility, "bob")
    [notebook] = notebooks_of("bob", HUB_PORT)
    token = notebook.environ()["JUPYTERHUB_API_TOKEN"]
    policy = api(facility, "policy/me", token)
    assert policy.status_code == 200, policy.text
    body = policy.json()
    assert body["user"] == "bob"
    assert body["remaining"]["servers"] == {"limit": 2, "in_use": 1, "left": 1}
    assert body["remaining"]["gpus:t4"] == {"limit": 1, "in_use": 1, "left": 0}
    assert body["remaining"]["cores"] == {"limit": 2, "in_use": 1, "left": 1}
    assert body["remaining"]["memory"] == {"limit": 4 * 2**30, "in_use": 2**30, "left": 3 * 2**30}
    assert body["remaining"]["dask_workers"] == {"limit": None, "in_use": 0, "left": None}
    budget = body["remaining"]["core_hours"]
    assert budget["limit"] == 100 and 0 <= budget["in_use"] < 0.1
    assert budget["left"] == pytest.approx(100 - budget["in_use"])
    usage = api(facility, "usage/me", token)
    assert usage.status_code == 200 and usage.json()["user"] == "bob"
    assert [r["resources"]["gpus"] for r in usage.json()["running"]] == [{"t4": 1}]
    # the server's token reads only its owner's usage
    other = api(facility, "usage/users/alice", token)
    assert other.json() == {"error": "You may see only your own usage, not another user's."}


def test_quota_refusal_is_a_403_naming_the_limit_on_the_api_and_the_spawn_page(facility):
    url = facility["hub"].url
    before = rows(facility, "alice")
    r = start(facility, "alice", {"profile": "large"})
    assert (r.status_code, r.json()["message"]) == (403, LARGE_REFUSED)
    s = facility["sessions"]["alice"]
    page = s.post(
        f"{url}/hub/spawn/alice",
        data={"profile": "large", "_xsrf": s.cookies.get("_xsrf", path="/hub/")},
        timeout=60,
    )
    assert page.status_code == 403
    assert html.escape(LARGE_REFUSED, quote=True) in page.text
    assert 'id="profile-default"' in page.text  # the form again, to pick another profile
    model = s.get(f"{url}/hub/api/users/alice", timeout=10).json()
    assert model["servers"] == {} and model["pending"] is None
    assert notebooks_of("alice", HUB_PORT) == []
    assert rows(facility, "alice") == before  # nothing reserved, nothing recorded

    # bob's GPU server runs (previous test): a second GPU server is refused by the GPU limit
    r = start(facility, "bob", {"profile": "gpu"}, server="second")
    assert (r.status_code, r.json()["message"]) == (403, GPU_REFUSED)
    bob = facility["sessions"]["bob"]
    assert "second" not in bob.get(f"{url}/hub/api/users/bob", timeout=10).json()["servers"]
    assert len(open_rows(facility, "bob")) == 1
    stop_server(bob, url, "bob")
    assert open_rows(facility, "bob") == []


def test_poll_finding_the_server_gone_releases_it_once(facility):
    assert start(facility, "alice", {"profile": "default"}).status_code in (201, 202)
    wait_ready(facility, "alice")
    [row] = open_rows(facility, "alice")
    [notebook] = notebooks_of("alice", HUB_PORT)
    notebook.kill()
    s, url = facility["sessions"]["alice"], facility["hub"].url
    wait_until(
        lambda: not s.get(f"{url}/hub/api/users/alice", timeout=10).json()["servers"],
        what="the hub noticing the server is gone",
    )
    wait_until(lambda: not open_rows(facility, "alice"), what="the release")
    [closed] = [r for r in rows(facility, "alice") if r["id"] == row["id"]]
    assert closed["state"] == "released"
    text = log(facility)
    assert f"Releasing reservation {row['id']} of alice (gone)" in text
    assert text.count(f"Releasing reservation {row['id']} of alice") == 1
    assert "Could not release" not in text


def test_a_reservation_closed_by_the_service_is_forgotten_and_the_server_recorded(facility):
    assert start(facility, "alice", {"profile": "default"}).status_code in (201, 202)
    wait_ready(facility, "alice")
    [row] = open_rows(facility, "alice")
    # the service closes it while the server runs (as when it lapsed during an outage)
    closed = requests.delete(
        f"{facility['hub'].url}/services/af-accounting/api/v1/reservations/{row['id']}",
        headers=auth((facility["workdir"] / "accounting" / "af-spawner-token").read_text()),
        timeout=30,
    )
    assert closed.status_code == 200
    wait_until(
        lambda: f"Reservation {row['id']} of alice is no longer open" in log(facility),
        what="the spawner's heartbeat finding it closed",
    )
    adopted = wait_until(lambda: open_rows(facility, "alice"), what="the reconcile")
    assert [(r["client"], r["state"]) for r in adopted] == [("af-accounting", "active")]
    stop_server(facility["sessions"]["alice"], facility["hub"].url, "alice")
    wait_until(lambda: not open_rows(facility, "alice"), what="the reconcile closing it")
    text = log(facility)
    assert f"Releasing reservation {row['id']}" not in text  # forgotten: nothing replayed
    assert "Could not release" not in text


def test_a_hub_restart_keeps_the_reservation(facility):
    assert start(facility, "alice", {"profile": "default"}).status_code in (201, 202)
    server = wait_ready(facility, "alice")
    [row] = open_rows(facility, "alice")
    [notebook] = notebooks_of("alice", HUB_PORT)

    restart(facility)
    assert wait_ready(facility, "alice")["url"] == server["url"]
    assert notebook.is_running()
    # the restarted service reconciles (every 2 s here) and finds the same reservation
    time.sleep(5)
    assert [r["id"] for r in open_rows(facility, "alice")] == [row["id"]]
    running = api(facility, "usage/me", facility["tokens"]["alice"]).json()["running"]
    assert [(r["id"], r["state"]) for r in running] == [(row["id"], "active")]

    stop_server(facility["sessions"]["alice"], facility["hub"].url, "alice")
    assert open_rows(facility, "alice") == []
    [closed] = [r for r in rows(facility, "alice") if r["id"] == row["id"]]
    assert closed["state"] == "released" and closed["ended"] is not None
    assert "Could not release" not in log(facility)


def test_unreachable_service_fails_closed_by_default_and_open_when_configured(facility):
    unreachable = f"c.AccountingClient.url = {DEAD_URL!r}\nc.AccountingClient.starting_wait = 1\n"
    restart(facility, unreachable)
    before = rows(facility, "alice")
    r = start(facility, "alice", {"profile": "default"})
    assert (r.status_code, r.json()["message"]) == (503, UNREACHABLE)
    # from the spawn page: the reservation outlasts the page's 1 s wait (starting_wait),
    # so the hub shows its pending page, then the failure with the same sentence
    s, url = facility["sessions"]["alice"], facility["hub"].url
    page = s.post(
        f"{url}/hub/spawn/alice",
        data={"profile": "default", "_xsrf": s.cookies.get("_xsrf", path="/hub/")},
        timeout=60,
    )
    assert page.url == f"{url}/hub/spawn-pending/alice"
    wait_until(
        lambda: s.get(f"{url}/hub/api/users/alice", timeout=10).json()["pending"] is None,
        what="the refused start to end",
    )
    page = s.get(f"{url}/hub/spawn-pending/alice", timeout=10)
    assert page.status_code == 503
    assert "Spawn failed" in page.text
    assert "<p>" + UNREACHABLE.replace("'", "&#39;") + "</p>" in page.text  # escaped
    assert 'href="/hub/spawn/alice"' in page.text  # Relaunch, once the service is back
    model = s.get(f"{url}/hub/api/users/alice", timeout=10).json()
    assert model["servers"] == {} and model["pending"] is None
    assert notebooks_of("alice", HUB_PORT) == []

    restart(facility, unreachable + "c.AccountingClient.fail_open = True\n")
    assert start(facility, "alice", {"profile": "default"}).status_code in (201, 202)
    wait_ready(facility, "alice")
    assert "af-accounting unreachable: starting server of alice without a reservation " in log(
        facility
    )
    assert rows(facility, "alice") == before  # nothing could be recorded

    # the service reachable again: its reconcile records the server that ran without one
    restart(facility)
    adopted = wait_until(lambda: open_rows(facility, "alice"), what="the adoption")
    assert [(r["client"], r["cores"], r["state"]) for r in adopted] == [
        ("af-accounting", 1.0, "active")
    ]
    stop_server(facility["sessions"]["alice"], facility["hub"].url, "alice")
    wait_until(lambda: not open_rows(facility, "alice"), what="the reconcile closing it")
    text = log(facility)
    assert "Could not release" not in text
    # no token in the hub's (and the service's) log
    spawner_token = (facility["workdir"] / "accounting" / "af-spawner-token").read_text()
    assert spawner_token.strip() not in text
    assert not [name for name, token in facility["tokens"].items() if token in text]
