"""The panel's one API shape: every error is ``{"error": code, "message": sentence}``,
and every tab's handlers ask jupyter-server's authorizer about their resource.

The authorization tests start a real ``jupyter server`` (jhub_af.lab enabled as
installed) whose ``ServerApp.authorizer_class`` is an ``Authorizer`` written in its
Python config, as an admin would write one.
"""

from __future__ import annotations

import pytest
import requests
from harness import start_jupyter_server

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
    server = start_jupyter_server(work, {"jupyter_server_config.py": AUTHORIZER_CONFIG})
    yield server.url
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
