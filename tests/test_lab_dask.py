"""The panel's Dask and Usage handlers in a real user's server, against a real hub,
af-accounting and dask-gateway-server (jhub_af's quota backend): list, create, scale,
adapt and stop clusters; every bad input refused with its exact sentence and nothing
changed; the gateway and af-accounting down; XSRF and ownership."""

from __future__ import annotations

import time

import pytest
import requests
from harness import (
    free_port,
    login,
    spawn_server,
    start_jupyter_server,
    user_api_token,
    user_token,
    wait_until,
)
from harness.gateway_hub import gateway, gateway_hub_text, wait_for_gateway

from jhub_af.lab.api import error_body
from jhub_af.lab.dask.gateway import CREDENTIALS, GATEWAY_DOWN
from jhub_af.lab.usage import ACCOUNTING_DOWN, REFUSED

pytestmark = pytest.mark.integration

DEAD = free_port()  # nothing listens here: erin's server sees the gateway and accounting down
PANEL = f"""
from jhub_af.lab import usage_hub_config
add_roles(c, usage_hub_config(c))
_env = dict(c.Spawner.environment)
def _for(key, dead):
    return lambda spawner: dead if spawner.user.name == "erin" else _env[key]
c.Spawner.environment["DASK_GATEWAY__ADDRESS"] = _for(
    "DASK_GATEWAY__ADDRESS", "http://127.0.0.1:{DEAD}/services/dask-gateway")
c.Spawner.environment["JHUB_AF_ACCOUNTING_URL"] = _for(
    "JHUB_AF_ACCOUNTING_URL", "http://127.0.0.1:{DEAD}/services/af-accounting/api/v1/")
"""


class Panel:
    """A user's view of their server's /jhub-af/ API, with a token of theirs."""

    def __init__(self, url: str, name: str, session: requests.Session):
        self.base = f"{url}/user/{name}/jhub-af"
        self.session = session
        self.headers = {"Authorization": f"token {user_api_token(session, url, name)}"}

    def __call__(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(
            method, f"{self.base}/{path}", headers=self.headers, timeout=120, **kw
        )


@pytest.fixture(scope="module")
def panel_hub(hub_factory, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("panel")
    port, tcp_port = free_port(), free_port()
    hub = hub_factory(gateway_hub_text(workdir, port, tcp_port) + PANEL, port=port)
    facility = {
        "url": hub.url,
        "address": f"{hub.url}/services/dask-gateway",
        "proxy_address": f"gateway://127.0.0.1:{tcp_port}",
        "sessions": {},
        "tokens": {},
        "panels": {},
    }
    for name in ("alice", "bob", "dave", "erin"):
        s = login(hub.url, name, "demo")
        facility["sessions"][name] = s
        facility["tokens"][name] = user_token(s, hub.url, name)
    wait_for_gateway(hub.url, facility["tokens"]["alice"])
    return facility


def panel(facility, name: str) -> Panel:
    if name not in facility["panels"]:
        s = facility["sessions"][name]
        assert spawn_server(s, facility["url"], name).status_code == 200
        facility["panels"][name] = Panel(facility["url"], name, s)
    return facility["panels"][name]


def names(p: Panel) -> list[str]:
    r = p("GET", "dask/clusters")
    assert r.status_code == 200, r.text
    return [c["name"] for c in r.json()["clusters"]]


def test_options_are_the_gateways_with_the_users_bounds(panel_hub):
    r = panel(panel_hub, "alice")("GET", "dask/options")
    assert r.status_code == 200, r.text
    fields = {f["field"]: f for f in r.json()["cluster_options"]}
    # alice is in /atlas/users: 2 cores and 2 GiB at most, and the atlas environment
    assert fields["worker_cores"]["spec"] == {"type": "float", "min": 1.0, "max": 2.0}
    assert fields["worker_memory"]["spec"] == {"type": "float", "min": 1.0, "max": 2.0}
    assert fields["environment"]["spec"]["options"] == ["atlas"]
    assert fields["worker_cores"]["label"] == "Worker cores"


def test_create_scale_capped_adapt_and_stop(panel_hub):
    p = panel(panel_hub, "alice")
    r = p("POST", "dask/clusters", json={"cluster_options": {"worker_cores": 1}})
    assert r.status_code == 201, r.text
    name = r.json()["name"]
    assert r.json()["options"]["worker_cores"] == 1
    assert name in names(p)
    wait_until(
        lambda: p("GET", f"dask/clusters/{name}").json()["status"] == "running",
        timeout=120,
        what="the cluster running",
    )

    r = p("POST", f"dask/clusters/{name}/scale", json={"n": 1})
    assert r.json() == {"capped": False, "reason": None}
    running = wait_until(
        lambda: (c := p("GET", f"dask/clusters/{name}").json()).get("workers") == 1 and c,
        timeout=120,
        what="one worker in the panel's view",
    )
    assert running["status"] == "running"
    assert running["cores"] == 1
    assert running["memory"] == 1024**3  # worker_memory 1 GiB, the field's default
    assert running["dashboard_link"].endswith(f"/services/dask-gateway/clusters/{name}/status")

    # the quota is 2 workers across all of alice's clusters: 5 is capped, with the reason
    r = p("POST", f"dask/clusters/{name}/scale", json={"n": 5})
    assert r.status_code == 200, r.text
    assert r.json()["capped"] is True
    assert "exceeds your Dask quota" in r.json()["reason"]

    r = p("POST", f"dask/clusters/{name}/adapt", json={"minimum": 0, "maximum": 2})
    assert r.json() == {"capped": False, "reason": None}

    r = p("DELETE", f"dask/clusters/{name}")
    assert r.status_code == 200 and r.json() == {"name": name, "stopped": True}
    wait_until(lambda: name not in names(p), what="the stopped cluster gone from the list")


def test_a_cluster_made_in_a_notebook_is_listed(panel_hub):
    p = panel(panel_hub, "alice")
    g = gateway(panel_hub, "alice")
    name = g.submit()
    try:
        assert name in names(p)
    finally:
        g.stop_cluster(name)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        (
            "POST",
            "dask/clusters",
            {"cluster_options": {"worker_cores": 3}},
            400,
            "worker_cores must be <= 2.000000, got 3.0.",
        ),
        (
            "POST",
            "dask/clusters",
            {"cluster_options": {"image": "evil"}},
            400,
            "'image' is not a cluster option here; the options are "
            "worker_cores, worker_memory, environment.",
        ),
        (
            "POST",
            "dask/clusters",
            {"cluster_options": {"worker_cores": "2; rm -rf"}},
            400,
            "worker_cores must be a float, got '2; rm -rf'.",
        ),
        (
            "POST",
            "dask/clusters",
            {"cluster_options": [1]},
            400,
            'Send the cluster options as a JSON object, e.g. {"worker_cores": 1}.',
        ),
        (
            "POST",
            "dask/clusters/dask-gateway.abc/scale",
            {"n": -1},
            400,
            "n must be a whole number of workers from 0 to 10000.",
        ),
        (
            "POST",
            "dask/clusters/dask-gateway.abc/scale",
            {"n": "3"},
            400,
            "n must be a whole number of workers from 0 to 10000.",
        ),
        (
            "POST",
            "dask/clusters/dask-gateway.abc/adapt",
            {"minimum": 3, "maximum": 1},
            400,
            "The minimum must not be larger than the maximum.",
        ),
        (
            "DELETE",
            "dask/clusters/dask-gateway.0123456789abcdef",
            None,
            404,
            "You have no Dask cluster named dask-gateway.0123456789abcdef.",
        ),
        (
            "DELETE",
            "dask/clusters/..%2F..%2Fapi%2Fv1%2Fclusters",
            None,
            400,
            "That is not a Dask cluster name (like dask-gateway.1a2b3c).",
        ),
        (
            "GET",
            "dask/clusters/dask-gateway.0123456789abcdef",
            None,
            404,
            "You have no Dask cluster named dask-gateway.0123456789abcdef.",
        ),
    ],
)
def test_bad_input_is_refused_with_a_sentence_and_changes_nothing(
    panel_hub, method, path, body, status, error
):
    p = panel(panel_hub, "alice")
    before = names(p)
    r = p(method, path, json=body)
    assert (r.status_code, r.json()) == (status, error_body(status, error))
    assert names(p) == before


def test_not_json_is_refused(panel_hub):
    p = panel(panel_hub, "alice")
    r = p("POST", "dask/clusters", data=b"{not json")
    assert (r.status_code, r.json()) == (
        400,
        error_body(400, "The request body is not valid JSON."),
    )


def test_another_users_cluster_is_not_found(panel_hub):
    alice, bob = panel(panel_hub, "alice"), panel(panel_hub, "bob")
    name = alice("POST", "dask/clusters", json={}).json()["name"]
    try:
        for method, path in (("GET", ""), ("DELETE", ""), ("POST", "/scale")):
            r = bob(method, f"dask/clusters/{name}{path}", json={"n": 1})
            assert r.status_code == 404, r.text
            assert r.json() == error_body(404, f"You have no Dask cluster named {name}.")
        assert name in names(alice)
        assert name not in names(bob)
    finally:
        alice("DELETE", f"dask/clusters/{name}")


def test_a_cluster_refused_by_the_quota_says_why(panel_hub):
    p = panel(panel_hub, "dave")  # dask_clusters: 0
    r = p("POST", "dask/clusters", json={})
    assert r.status_code == 403, r.text
    # af-accounting's sentence, passed on by the gateway and the panel's server
    assert r.json() == error_body(
        403, "Your personal quota lets you run no Dask clusters. Ask your VO admin if you need it."
    )
    assert names(p) == []


def test_gateway_and_accounting_down_are_said_plainly(panel_hub):
    p = panel(panel_hub, "erin")
    started = time.monotonic()
    r = p("GET", "dask/clusters")
    assert (r.status_code, r.json()) == (503, error_body(503, GATEWAY_DOWN))
    r = p("POST", "dask/clusters", json={})
    assert (r.status_code, r.json()) == (503, error_body(503, GATEWAY_DOWN))
    r = p("GET", "usage")
    assert (r.status_code, r.json()) == (503, error_body(503, ACCOUNTING_DOWN))
    assert time.monotonic() - started < 60  # answered, not hung until the client gave up


def test_usage_is_my_usage_and_policy_from_accounting(panel_hub):
    r = panel(panel_hub, "alice")("GET", "usage")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["usage"]["user"] == "alice"
    assert "core_hours" in body["usage"]["usage"]
    assert body["policy"]["user"] == "alice"
    assert body["policy"]["limits"]["dask_workers"]["value"] == 2


def test_cookie_without_xsrf_is_refused_and_no_login_is_refused(panel_hub):
    url = panel_hub["url"]
    panel(panel_hub, "alice")
    s = panel_hub["sessions"]["alice"]
    s.get(f"{url}/user/alice/lab", timeout=60)  # the server's own cookie, through OAuth
    before = names(panel_hub["panels"]["alice"])
    r = s.post(
        f"{url}/user/alice/jhub-af/dask/clusters",
        json={},
        headers={"X-XSRFToken": ""},
        timeout=60,
    )
    assert r.status_code == 403
    assert names(panel_hub["panels"]["alice"]) == before
    r = requests.get(f"{url}/user/alice/jhub-af/usage", timeout=60, allow_redirects=False)
    # an API handler answers 403 rather than redirecting to the hub's login
    assert (r.status_code, r.json()) == (403, error_body(403, "Forbidden"))


def test_an_expired_token_says_how_to_recover(panel_hub, tmp_path):
    """A jupyter server whose hub token was revoked (as when the hub forgets a server),
    with the real gateway and af-accounting behind the hub's proxy."""
    url, s = panel_hub["url"], panel_hub["sessions"]["alice"]
    r = s.post(f"{url}/hub/api/users/alice/tokens", json={"note": "revoked"}, timeout=30)
    token, token_id = r.json()["token"], r.json()["id"]
    s.delete(f"{url}/hub/api/users/alice/tokens/{token_id}", timeout=30).raise_for_status()
    env = {
        "JUPYTERHUB_API_TOKEN": token,
        "DASK_GATEWAY__ADDRESS": panel_hub["address"],
        "DASK_GATEWAY__PROXY_ADDRESS": panel_hub["proxy_address"],
        "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
        "JHUB_AF_ACCOUNTING_URL": f"{url}/services/af-accounting/api/v1/",
    }
    config = {"jupyter_server_config.json": '{"IdentityProvider": {"token": "lab-test"}}'}
    server = start_jupyter_server(tmp_path, config, env=env)
    try:
        headers = {"Authorization": "token lab-test"}
        r = requests.get(f"{server.url}/jhub-af/dask/clusters", headers=headers, timeout=60)
        assert (r.status_code, r.json()) == (401, error_body(401, CREDENTIALS))
        r = requests.get(f"{server.url}/jhub-af/usage", headers=headers, timeout=60)
        detail = "Sign in to the hub, or send a hub token for this service."
        assert (r.status_code, r.json()) == (401, error_body(401, REFUSED.format(detail=detail)))
        assert token not in server.process.log.read_text(), "the token must never be logged"
    finally:
        server.stop()
