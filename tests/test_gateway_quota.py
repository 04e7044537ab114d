"""dask-gateway-server behind a real hub with jhub_af's quota backend and a real
af-accounting: the per-user cap across clusters, refusals, and releases."""

from __future__ import annotations

import json

import pytest
from harness import wait_until
from harness.gateway_hub import (
    all_reservations,
    gateway,
    gateway_facility,
    holds_nothing,
    open_reservations,
    rest,
    scale_warnings,
)

pytestmark = pytest.mark.integration
__all__ = ["gateway_facility"]  # the module's hub, a fixture


def test_two_clusters_never_exceed_the_users_worker_limit(gateway_facility):
    g = gateway(gateway_facility, "bob")
    first = g.new_cluster()
    second = g.new_cluster()
    try:
        first.scale(2)
        with first.get_client() as client:
            client.wait_for_workers(2, timeout=120)
        messages = scale_warnings(second, 2)
        assert len(messages) == 1, messages
        assert "Scaling to 0 instead" in messages[0]
        assert "2 Dask workers" in messages[0]
        # the scheduler keeps asking in its heartbeats; the gateway keeps capping
        wait_until(lambda: len(g.list_clusters()) == 2, what="two clusters listed")
        assert len(open_reservations(gateway_facility, "bob")) == 2
        assert second.scheduler_info.get("workers", {}) == {}
        # freeing one worker in the first cluster lets the second have one
        first.scale(1)
        with second.get_client() as client:
            client.wait_for_workers(1, timeout=120)
        rows = open_reservations(gateway_facility, "bob")
        assert sorted(r[2] for r in rows) == sorted([first.name, second.name])
    finally:
        first.shutdown()
        second.shutdown()
    wait_until(
        lambda: holds_nothing(gateway_facility, "bob"),
        what="bob's reservations released",
    )


DAVE_REFUSED = (
    "Your personal quota lets you run no Dask clusters. Ask your VO admin if you need it."
)


def test_cluster_beyond_the_cluster_quota_is_422_with_the_reason(gateway_facility):
    before = all_reservations(gateway_facility)
    r = rest(gateway_facility, "POST", "clusters/", "dave", json={"cluster_options": {}})
    assert (r.status_code, r.json()) == (422, {"error": DAVE_REFUSED})
    assert r.headers["X-JHub-AF-Refused"] == "quota"
    # what a physicist sees in a notebook: dask_gateway's client raises the sentence
    with pytest.raises(ValueError) as refused:
        gateway(gateway_facility, "dave").new_cluster()
    assert str(refused.value) == DAVE_REFUSED
    assert all_reservations(gateway_facility) == before
    assert rest(gateway_facility, "GET", "clusters/", "dave").json() == {}


@pytest.mark.parametrize(
    ("user", "options", "error"),
    [
        ("bob", {"worker_cores": 2}, "worker_cores must be <= 1"),
        ("alice", {"worker_cores": 3}, "worker_cores must be <= 2"),
        ("bob", {"environment": "atlas"}, "'atlas' is not a valid option for environment"),
        ("bob", {"worker_memory": "1e9"}, "worker_memory must be a number, got '1e9'"),
        ("bob", {"worker_cores": True}, "worker_cores must be a number, got 'True'"),
        ("bob", {"cluster_max_workers": 1000}, "Unknown fields ['cluster_max_workers']"),
        ("bob", {"worker_cores": float("nan")}, "worker_cores must be a number, got 'nan'"),
    ],
)
def test_bad_options_refused_nothing_reserved_or_started(gateway_facility, user, options, error):
    before = all_reservations(gateway_facility)
    # sent as Python's json writes it, NaN included
    body = json.dumps({"cluster_options": options})
    r = rest(gateway_facility, "POST", "clusters/", user, data=body)
    assert r.status_code == 422, r.text
    assert error in r.json()["error"]
    assert all_reservations(gateway_facility) == before
    assert rest(gateway_facility, "GET", "clusters/?status=pending,running", user).json() == {}


def test_group_bounds_are_offered(gateway_facility):
    def offered(user):
        spec = rest(gateway_facility, "GET", "options", user).json()["cluster_options"]
        return {o["field"]: o for o in spec}

    alice, bob = offered("alice"), offered("bob")
    assert alice["worker_cores"]["spec"]["max"] == 2
    assert bob["worker_cores"]["spec"]["max"] == 1
    assert "atlas" in alice["environment"]["spec"]["options"]
    assert "atlas" not in bob["environment"]["spec"]["options"]


def test_other_users_cluster_refused_and_bad_tokens_401(gateway_facility):
    r = rest(gateway_facility, "POST", "clusters/", "alice", json={"cluster_options": {}})
    assert r.status_code == 201, r.text
    name = r.json()["name"]
    try:
        for method, path, body in [
            ("GET", f"clusters/{name}", None),
            ("POST", f"clusters/{name}/scale", {"count": 1}),
            ("POST", f"clusters/{name}/adapt", {"minimum": 1, "maximum": 2}),
            ("DELETE", f"clusters/{name}", None),
        ]:
            r = rest(gateway_facility, method, path, "bob", json=body)
            assert r.status_code == 403, (method, path, r.text)
            assert "lacks permissions" in r.json()["error"]
        # connecting a client needs the cluster's TLS credentials, which only its owner gets
        with pytest.raises(Exception, match=r"^403, message='Forbidden'"):
            gateway(gateway_facility, "bob").connect(name)
        for token in ("not-a-token", gateway_facility["tokens"]["bob"][:-2] + "xx"):
            r = rest(gateway_facility, "GET", "clusters/", token=token)
            assert r.status_code == 401
            assert "token was not accepted" in r.json()["error"]
        assert rest(gateway_facility, "GET", f"clusters/{name}", "alice").status_code == 200
        assert open_reservations(gateway_facility, "bob", "dask-cluster") == []
        assert len(open_reservations(gateway_facility, "alice", "dask-cluster")) == 1
    finally:
        assert rest(gateway_facility, "DELETE", f"clusters/{name}", "alice").status_code == 204
    wait_until(
        lambda: not open_reservations(gateway_facility, "alice", "dask-cluster"),
        what="alice's cluster reservation released",
    )


def test_adapt_minimum_beyond_the_quota_names_the_limit(gateway_facility):
    r = rest(gateway_facility, "POST", "clusters/", "bob", json={"cluster_options": {}})
    name = r.json()["name"]
    try:
        wait_until(
            lambda: (
                rest(gateway_facility, "GET", f"clusters/{name}", "bob").json()["status"]
                == "RUNNING"
            ),
            what="bob's cluster running",
        )
        r = rest(
            gateway_facility,
            "POST",
            f"clusters/{name}/adapt",
            "bob",
            json={"minimum": 3, "maximum": 5},
        )
        assert r.status_code == 200
        assert r.json()["ok"] is False
        assert r.json()["msg"].startswith("Adapt minimum of 3 workers exceeds your Dask quota")
        assert "2 Dask workers" in r.json()["msg"]
        wait_until(
            lambda: len(open_reservations(gateway_facility, "bob")) == 2, what="2 workers held"
        )
        assert len(open_reservations(gateway_facility, "bob")) == 2
    finally:
        rest(gateway_facility, "DELETE", f"clusters/{name}", "bob")
    wait_until(lambda: not open_reservations(gateway_facility, "bob"), what="released")
