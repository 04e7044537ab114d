"""The demo facility started with `make demo`: login, VO groups, refusals, a notebook."""

from urllib.parse import quote

import pytest
from harness import login, login_response, spawn_server

pytestmark = pytest.mark.integration


def test_login_page_is_labelled_demo_and_gives_the_password(demo_facility):
    import requests

    page = requests.get(f"{demo_facility.url}/hub/login", timeout=10).text
    assert "jhub_af demo login" in page
    assert "password is <code>demo</code>" in page
    for line in [
        "<code>alice</code>:",
        "/atlas, /atlas/users",
        "/cms, /cms/gpu",
        "no VO (refused)",
    ]:
        assert line in page


@pytest.mark.parametrize(
    ("username", "groups", "admin"),
    [
        ("alice", ["/atlas", "/atlas/users"], False),
        ("bob", ["/cms", "/cms/gpu"], False),
        ("admin", ["/atlas"], True),
    ],
)
def test_demo_users_get_their_vo_groups(demo_facility, username, groups, admin):
    s = login(demo_facility.url, username, "demo")
    me = s.get(f"{demo_facility.url}/hub/api/user", timeout=10).json()
    assert me["name"] == username
    assert sorted(me["groups"]) == groups
    assert me["admin"] is admin


def test_vo_groups_are_hub_groups_reachable_by_path(demo_facility):
    login(demo_facility.url, "alice", "demo")
    admin = login(demo_facility.url, "admin", "demo")
    r = admin.get(
        f"{demo_facility.url}/hub/api/groups/{quote('/atlas/users', safe='')}", timeout=10
    )
    assert r.status_code == 200, r.text
    assert "alice" in r.json()["users"]


def _user_exists(url, name):
    admin = login(url, "admin", "demo")
    return admin.get(f"{url}/hub/api/users/{name}", timeout=10).status_code == 200


def test_carol_without_vo_is_refused_with_a_page_that_says_why(demo_facility):
    s, r = login_response(demo_facility.url, "carol", "demo")
    assert r.status_code == 403
    # the hub shows the refusal on its login form, in place of "Invalid username or password"
    assert (
        '<p class="login_error">Your account is not a member of any virtual organisation' in r.text
    )
    assert "this facility admits only VO members (/atlas, /cms)" in r.text
    assert "Ask your experiment&#39;s VO administrator" in r.text
    # no session, and no user record was made for carol
    assert s.get(f"{demo_facility.url}/hub/api/user", timeout=10).status_code == 403
    assert not _user_exists(demo_facility.url, "carol")


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong"), ("mallory", "demo"), ("carol", "not-demo")],
    ids=["wrong password", "unknown user", "carol wrong password"],
)
def test_unknown_user_or_wrong_password_gets_the_normal_login_error(
    demo_facility, username, password
):
    s, r = login_response(demo_facility.url, username, password)
    assert r.status_code == 403
    assert "Invalid username or password" in r.text
    assert "virtual organisation" not in r.text.split("jhub-af-demo-banner")[0]
    assert "not a member of any virtual organisation" not in r.text
    assert s.get(f"{demo_facility.url}/hub/api/user", timeout=10).status_code == 403
    if username == "mallory":
        assert not _user_exists(demo_facility.url, "mallory")


def test_alice_gets_jupyterlab(demo_facility):
    s = login(demo_facility.url, "alice", "demo")
    r = spawn_server(s, demo_facility.url, "alice")
    assert r.status_code == 200
    assert r.url.startswith(f"{demo_facility.url}/user/alice/lab")
    assert "<title>JupyterLab</title>" in r.text
