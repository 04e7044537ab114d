"""Table tests of the Dask tab's pure parts: cluster names and worker counts from the
browser, options checked against the gateway's own Options, and how the gateway's
failures become statuses and sentences."""

from __future__ import annotations

import asyncio

import pytest
from dask_gateway.client import GatewayClusterError, GatewayServerError
from dask_gateway.options import Bool, Float, Integer, Mapping, Options, Select, String

from jhub_af.lab.api import PanelError
from jhub_af.lab.dask.gateway import (
    CREDENTIALS,
    GATEWAY_DOWN,
    GatewayRefused,
    _translate,
    check_count,
    check_name,
)
from jhub_af.lab.dask.options import OptionsError, apply_options, options_spec

BAD_NAME = "That is not a Dask cluster name (like dask-gateway.1a2b3c)."


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("0123456789abcdef0123456789abcdef", True),
        ("dask-gateway.1a2b3c", True),
        ("ns.sub.1a2b", True),
        ("../api/v1/clusters", False),
        ("a/b", False),
        ("a..b", False),
        (".hidden", False),
        ("", False),
        ("a" * 65, False),
        ("name?x=1", False),
        ("name#frag", False),
        ("na me", False),
        ("<svg/onload=alert(1)>", False),
        (None, False),
        (42, False),
    ],
)
def test_cluster_names(name, ok):
    if ok:
        assert check_name(name) == name
    else:
        with pytest.raises(PanelError) as e:
            check_name(name)
        assert (e.value.status, e.value.message) == (400, BAD_NAME)


@pytest.mark.parametrize(
    ("value", "allow_none", "want"),
    [
        (0, False, 0),
        (3, False, 3),
        (10_000, False, 10_000),
        (None, True, None),
        (None, False, "error"),
        (-1, False, "error"),
        (10_001, False, "error"),
        (1.5, False, "error"),
        ("3", False, "error"),
        (True, False, "error"),
        ([1], False, "error"),
    ],
)
def test_worker_counts(value, allow_none, want):
    if want == "error":
        with pytest.raises(PanelError) as e:
            check_count(value, "n", allow_none=allow_none)
        assert e.value.status == 400
        assert e.value.message == "n must be a whole number of workers from 0 to 10000."
    else:
        assert check_count(value, "n", allow_none=allow_none) == want


def gateway_options() -> Options:
    return Options(
        Float("worker_cores", 1, min=1, max=2, label="Worker cores"),
        Integer("threads", 2, min=1, max=8),
        Select("environment", "atlas", options=["atlas", "default"]),
        Bool("debug", False),
        String("image", "x"),
        Mapping("env", {}),
    )


def test_options_spec_is_the_gateways_shape_with_bounds():
    spec = {f["field"]: f for f in options_spec(gateway_options())}
    assert spec["worker_cores"] == {
        "field": "worker_cores",
        "label": "Worker cores",
        "default": 1.0,
        "spec": {"type": "float", "min": 1.0, "max": 2.0},
    }
    assert spec["threads"]["spec"] == {"type": "int", "min": 1, "max": 8}
    assert spec["environment"]["spec"] == {"type": "select", "options": ["atlas", "default"]}
    assert spec["debug"]["spec"] == {"type": "bool"}
    assert spec["image"]["spec"] == {"type": "string"}
    assert spec["env"]["spec"] == {"type": "mapping"}


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"worker_cores": 3}, "worker_cores must be <= 2.000000, got 3.0."),
        ({"worker_cores": 0.5}, "worker_cores must be >= 1.000000, got 0.5."),
        ({"worker_cores": "2"}, "worker_cores must be a float, got '2'."),
        ({"worker_cores": float("nan")}, "worker_cores must be a finite number."),
        ({"threads": 2.5}, "threads must be an integer, got 2.5."),
        ({"environment": "cms"}, "'cms' is not a valid option for environment."),
        ({"debug": "yes"}, "debug must be a bool, got 'yes'."),
        (
            {"scheduler_cmd": "sh"},
            "'scheduler_cmd' is not a cluster option here; the options are "
            "worker_cores, threads, environment, debug, image, env.",
        ),
        (
            [["worker_cores", 1]],
            'Send the cluster options as a JSON object, e.g. {"worker_cores": 1}.',
        ),
        ({f"k{i}": 1 for i in range(65)}, "Too many cluster options in the request."),
    ],
)
def test_bad_options_are_refused_with_a_sentence(values, error):
    with pytest.raises(OptionsError) as e:
        apply_options(gateway_options(), values)
    assert str(e.value) == error


def test_good_options_are_set_and_the_rest_keep_their_defaults():
    options = apply_options(gateway_options(), {"worker_cores": 2, "environment": "default"})
    assert dict(options) == {
        "worker_cores": 2.0,
        "threads": 2,
        "environment": "default",
        "debug": False,
        "image": "x",
        "env": {},
    }


def _connector_error():
    import aiohttp

    return aiohttp.ClientConnectorError(None, OSError(111, "Connection refused"))


def _response_error(status: int):
    import aiohttp

    return aiohttp.ClientResponseError(None, (), status=status, message="Bad Gateway")


@pytest.mark.parametrize(
    ("exc", "name", "status", "message"),
    [
        (GatewayRefused(401, "Your JupyterHub token was not accepted"), None, 401, CREDENTIALS),
        (
            GatewayRefused(403, "User bob lacks permissions to view cluster abc"),
            "abc",
            404,
            "You have no Dask cluster named abc.",
        ),
        (
            GatewayRefused(403, "Your personal quota lets you run no Dask clusters."),
            None,
            403,
            "Your personal quota lets you run no Dask clusters.",
        ),
        (ValueError("Cluster abc not found"), "abc", 404, "You have no Dask cluster named abc."),
        (
            ValueError("Scale expects a non-negative integer"),
            "abc",
            400,
            "Scale expects a non-negative integer",
        ),
        (
            GatewayClusterError("cluster abc is not running"),
            "abc",
            409,
            "Dask cluster abc is not running (still starting, or stopped); wait until the "
            "panel shows it running, then try again.",
        ),
        (GatewayServerError("boom"), None, 502, "The Dask Gateway failed: boom"),
        (_connector_error(), None, 503, GATEWAY_DOWN),
        (ConnectionRefusedError(), None, 503, GATEWAY_DOWN),
        (asyncio.TimeoutError(), None, 503, GATEWAY_DOWN),
        (_response_error(502), None, 503, GATEWAY_DOWN),
        (_response_error(418), None, 502, "The Dask Gateway answered HTTP 418: Bad Gateway"),
        (RuntimeError("x"), None, 500, "The Dask Gateway request failed: RuntimeError"),
    ],
)
def test_gateway_failures_become_a_status_and_a_sentence(exc, name, status, message):
    err = _translate(exc, name)
    assert (err.status, err.message) == (status, message)


def test_a_server_without_the_gateways_settings_says_so(monkeypatch):
    import dask

    from jhub_af.lab.dask.gateway import NOT_CONFIGURED, PanelGateway

    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    for address in (None, "http://127.0.0.1:1/services/dask-gateway"):
        settings = {"gateway.address": address, "gateway.auth.type": "jupyterhub"}
        with dask.config.set(settings), pytest.raises(PanelError) as e:
            PanelGateway().gateway()
        assert (e.value.status, e.value.message) == (503, NOT_CONFIGURED)
