"""The panel's one API shape: every error is ``{"error": code, "message": sentence}``,
and every tab's handlers ask jupyter-server's authorizer about their resource.

The authorization tests start a real ``jupyter server`` (jhub_af.lab enabled as
installed) whose ``ServerApp.authorizer_class`` is an ``Authorizer`` written in its
Python config, as an admin would write one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import requests
from harness import ManagedProcess, free_port, wait_for_http

from jhub_af.lab.api import NOT_AUTHORIZED, error_body, error_code
from jhub_af.lab.dask.gateway import NOT_CONFIGURED as DASK_NOT_CONFIGURED
from jhub_af.lab.usage import NOT_CONFIGURED as USAGE_NOT_CONFIGURED

TOKEN = "panel-api-test-token"

# refuses the Data tab, and lets the Dask tab only read
AUTHORIZER_CONFIG = f"""
from jupyter_server.auth import Authorizer


class NoDataTabReadOnlyDask(Authorizer):
    def is_authorized(self, handler, user, action, resource):
        if resource == "jhub-af:rucio":
            return False
        return not (resource == "jhub-af:dask" and action != "read")


c.ServerApp.authorizer_class = NoDataTabReadOnlyDask
c.IdentityProvider.token = {TOKEN!r}
"""


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "bad_request"),
        (401, "unauthorized"),
        (403, "forbidden"),
        (404, "not_found"),
        (409, "conflict"),
        (500, "internal_server_error"),
        (502, "bad_gateway"),
        (503, "service_unavailable"),
        (599, "error"),
    ],
)
def test_the_error_code_is_the_status_reason_in_snake_case(status, code):
    assert error_code(status) == code


def test_the_error_body_holds_the_code_and_the_sentence():
    assert error_body(503, "The Dask Gateway cannot be reached right now.") == {
        "error": "service_unavailable",
        "message": "The Dask Gateway cannot be reached right now.",
    }


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory):
    work = tmp_path_factory.mktemp("panel-api")
    (work / "config").mkdir()
    (work / "config" / "jupyter_server_config.py").write_text(AUTHORIZER_CONFIG)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTERHUB_", "DASK_", "BEARER_TOKEN", "JHUB_AF_"))
    }
    env.update(
        JUPYTER_CONFIG_PATH=str(work / "config"),
        JUPYTER_RUNTIME_DIR=str(work / "runtime"),
        JUPYTER_DATA_DIR=str(work / "data"),
        DASK_CONFIG=str(work / "dask"),
    )
    port = free_port()
    server = ManagedProcess(
        [
            str(Path(sys.executable).parent / "jupyter-server"),
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--ServerApp.root_dir={work}",
        ],
        log=work / "jupyter-server.log",
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/api", timeout=60, alive=server.alive, describe=server.log_tail)
        yield url
    finally:
        server.stop()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "jhub-af/dask/clusters", "Forbidden"),
        ("GET", "jhub-af/usage", "Forbidden"),
        ("GET", "jhub-af/rucio/instances", "Forbidden"),
        # a POST without credentials is not cookie-authenticated: XSRF refuses it first
        ("POST", "jhub-af/dask/clusters", "'_xsrf' argument missing from POST"),
        ("POST", "jhub-af/rucio/atlas/rules", "'_xsrf' argument missing from POST"),
    ],
)
def test_a_request_without_credentials_is_refused(lab_url, method, path, message):
    r = requests.request(method, f"{lab_url}/{path}", json={}, timeout=60)
    assert (r.status_code, r.json()) == (403, error_body(403, message))


@pytest.mark.integration
@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "jhub-af/rucio/instances", 403, NOT_AUTHORIZED),
        ("POST", "jhub-af/rucio/atlas/rules", 403, NOT_AUTHORIZED),
        ("POST", "jhub-af/dask/clusters", 403, NOT_AUTHORIZED),
        # authorized: the handler itself answers (this server knows no gateway, no
        # af-accounting)
        ("GET", "jhub-af/dask/clusters", 503, DASK_NOT_CONFIGURED),
        ("GET", "jhub-af/usage", 503, USAGE_NOT_CONFIGURED),
    ],
)
def test_the_authorizer_decides_per_tab_and_action(lab_url, method, path, status, message):
    r = requests.request(
        method,
        f"{lab_url}/{path}",
        json={},
        headers={"Authorization": f"token {TOKEN}"},
        timeout=60,
    )
    assert (r.status_code, r.json()) == (status, error_body(status, message))
