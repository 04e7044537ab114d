"""The demo login: the user table, the shared password, and the VO refusal."""

import pytest
from traitlets.config import Config

from jhub_af.auth import LoginDenied
from jhub_af.demo import DEMO_USERS, DemoAuthenticator


def authenticator(**config):
    c = Config()
    for key, value in config.items():
        setattr(c.DemoAuthenticator, key, value)
    return DemoAuthenticator(config=c)


async def test_alice_gets_her_vo_groups():
    user = await authenticator().authenticate(None, {"username": "alice", "password": "demo"})
    assert user == {"name": "alice", "groups": ["/atlas", "/atlas/users"], "admin": False}


async def test_admin_is_hub_admin():
    user = await authenticator().authenticate(None, {"username": "admin", "password": "demo"})
    assert user == {"name": "admin", "groups": ["/atlas"], "admin": True}


async def test_username_is_normalised_before_lookup():
    user = await authenticator().authenticate(None, {"username": "Bob", "password": "demo"})
    assert user["name"] == "bob"
    assert user["groups"] == ["/cms", "/cms/gpu"]


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong"), ("alice", ""), ("mallory", "demo"), ("", "demo"), ("alice", "demo ")],
)
async def test_unknown_user_or_wrong_password_is_the_normal_login_error(username, password):
    # None makes the hub show its own "Invalid username or password"
    assert (
        await authenticator().authenticate(None, {"username": username, "password": password})
        is None
    )


async def test_carol_without_vo_is_refused_with_the_reason():
    with pytest.raises(LoginDenied) as refusal:
        await authenticator().authenticate(None, {"username": "carol", "password": "demo"})
    assert refusal.value.status_code == 403
    assert refusal.value.reason == "Not a member of any VO"
    assert "Ask your experiment's VO administrator" in refusal.value.jupyterhub_message
    # what tornado logs holds no user input
    assert refusal.value.get_message() == "login refused: Not a member of any VO"


async def test_carol_with_wrong_password_gets_no_hint_about_vos():
    assert await authenticator().authenticate(None, {"username": "carol", "password": "x"}) is None


async def test_allowed_vos_is_configurable():
    auth = authenticator(allowed_vos=["/cms"])
    with pytest.raises(LoginDenied) as refusal:
        await auth.authenticate(None, {"username": "alice", "password": "demo"})
    assert refusal.value.reason == "VO not admitted here"
    assert await auth.authenticate(None, {"username": "bob", "password": "demo"})


def test_groups_are_managed_by_the_login():
    auth = authenticator()
    assert auth.manage_groups is True
    assert set(auth.demo_users) == set(DEMO_USERS) == {"alice", "bob", "carol", "admin"}
