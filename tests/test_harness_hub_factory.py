"""The harness's hub_factory: a real hub with a config of the test's own.

Here: the demo login with only /cms admitted, on a plain hub with JupyterHub's
own local spawner.
"""

import pytest
from harness import local_spawner_config, login, login_response, spawn_server, stop_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cms_only_hub(hub_factory, tmp_path_factory):
    home = str(tmp_path_factory.mktemp("homes") / "{username}")
    return hub_factory(
        local_spawner_config(home)
        + """
c.JupyterHub.authenticator_class = "af-demo"
c.DemoAuthenticator.allowed_vos = ["/cms"]
"""
    )


def test_member_of_another_vo_is_told_which_vos_are_admitted(cms_only_hub):
    s, r = login_response(cms_only_hub.url, "alice", "demo")
    assert r.status_code == 403
    assert "You are a member of /atlas, but this facility admits members of /cms only." in r.text
    assert s.get(f"{cms_only_hub.url}/hub/api/user", timeout=10).status_code == 403


def test_admitted_vo_member_starts_and_stops_a_server(cms_only_hub):
    s = login(cms_only_hub.url, "bob", "demo")
    groups = s.get(f"{cms_only_hub.url}/hub/api/user", timeout=10).json()["groups"]
    assert sorted(groups) == ["/cms", "/cms/gpu"]
    assert spawn_server(s, cms_only_hub.url, "bob").status_code == 200
    stop_server(s, cms_only_hub.url, "bob")
    model = s.get(f"{cms_only_hub.url}/hub/api/users/bob", timeout=10).json()
    assert model["servers"] == {}
