"""Who IAMAuthenticator lets in: the VO rule AND OAuthenticator's allow config (tables).

Issue 15 item 2: ``allowed_groups`` and ``allowed_users`` were silently ignored
(``allow_all`` was always True). Each row runs JupyterHub's own
``get_authenticated_user`` (blocked users, ``allow_all``, ``check_allowed``,
admin) on the auth model OAuthenticator builds from the userinfo claims; only
the IdP round trip is left out (test_auth_iam_login.py does it for real).
Item 8: entitlements are read only from the namespaces the admin trusts.
"""

from __future__ import annotations

import time

import pytest
from traitlets import TraitError
from traitlets.config import Config

from jhub_af.auth import IAMAuthenticator, LoginDenied

NOT_ADMITTED = "Not admitted to this facility"
BLOCKED = "Account blocked here"
OTHER_VO = "VO not admitted here"
NO_VO = "Not a member of any VO"


class ClaimsAuthenticator(IAMAuthenticator):
    """IAMAuthenticator whose userinfo is ``self.claims`` (no IdP, no nonce)."""

    claims: dict

    async def token_to_user(self, token_info):
        return dict(self.claims)

    async def authenticate(self, handler, data=None, **kwargs):
        return await self._token_to_auth_model({"access_token": "not-a-token"})


def authenticator(class_config: dict, claims: dict) -> ClaimsAuthenticator:
    config = Config({"IAMAuthenticator": {"issuer": "https://iam.example.org/", **class_config}})
    a = ClaimsAuthenticator(config=config)
    a.claims = {"sub": "sub-alice", "preferred_username": "alice", **claims}
    return a


async def sign_in(class_config: dict, groups: list[str]):
    """JupyterHub's login steps for alice with ``groups`` in wlcg.groups: the model or None."""
    a = authenticator(class_config, {"wlcg.groups": groups})
    a.check_allow_config()
    return await a.get_authenticated_user(None, None)


ATLAS = {"allowed_vos": ["/atlas"]}


@pytest.mark.parametrize(
    ("id", "class_config", "groups", "expect_allowed", "expect_admin"),
    [
        ("VO rule alone admits a VO member", ATLAS, ["/atlas"], True, None),
        ("VO rule alone refuses another VO", ATLAS, ["/cms"], OTHER_VO, None),
        ("no allowed_vos: any VO", {}, ["/lhcb/users"], True, None),
        ("no allowed_vos: never no VO", {}, [], NO_VO, None),
        (
            "allowed_groups admits a member of the group",
            {**ATLAS, "allowed_groups": {"/atlas/users"}},
            ["/atlas", "/atlas/users"],
            True,
            None,
        ),
        (
            "allowed_groups refuses a VO member outside the group",
            {**ATLAS, "allowed_groups": {"/atlas/users"}},
            ["/atlas"],
            NOT_ADMITTED,
            None,
        ),
        (
            "allowed_groups does not bypass the VO rule",
            {**ATLAS, "allowed_groups": {"/cms/users"}},
            ["/cms", "/cms/users"],
            OTHER_VO,
            None,
        ),
        (
            "allowed_users admits a listed VO member",
            {**ATLAS, "allowed_users": {"alice"}},
            ["/atlas"],
            True,
            None,
        ),
        (
            "allowed_users refuses an unlisted VO member",
            {**ATLAS, "allowed_users": {"bob"}},
            ["/atlas"],
            NOT_ADMITTED,
            None,
        ),
        (
            "allowed_users does not bypass the VO rule",
            {**ATLAS, "allowed_users": {"alice"}},
            ["/cms"],
            OTHER_VO,
            None,
        ),
        (
            "allowed_users does not admit a user with no VO",
            {"allowed_users": {"alice"}},
            [],
            NO_VO,
            None,
        ),
        (
            "listed user, not in allowed_groups",
            {**ATLAS, "allowed_users": {"alice"}, "allowed_groups": {"/atlas/users"}},
            ["/atlas"],
            True,
            None,
        ),
        (
            "in allowed_groups, not listed",
            {**ATLAS, "allowed_users": {"bob"}, "allowed_groups": {"/atlas/users"}},
            ["/atlas/users"],
            True,
            None,
        ),
        (
            "neither listed nor in allowed_groups",
            {**ATLAS, "allowed_users": {"bob"}, "allowed_groups": {"/atlas/users"}},
            ["/atlas"],
            NOT_ADMITTED,
            None,
        ),
        (
            "blocked_users with the VO rule alone",
            {**ATLAS, "blocked_users": {"alice"}},
            ["/atlas"],
            BLOCKED,
            None,
        ),
        (
            "blocked_users wins over allowed_users",
            {**ATLAS, "blocked_users": {"alice"}, "allowed_users": {"alice"}},
            ["/atlas"],
            BLOCKED,
            None,
        ),
        (
            "blocked_users wins over allowed_groups",
            {**ATLAS, "blocked_users": {"alice"}, "allowed_groups": {"/atlas"}},
            ["/atlas"],
            BLOCKED,
            None,
        ),
        (
            "blocked_users wins over admin_users",
            {**ATLAS, "blocked_users": {"alice"}, "admin_users": {"alice"}},
            ["/atlas"],
            BLOCKED,
            None,
        ),
        (
            "admin_users with the VO rule alone",
            {**ATLAS, "admin_users": {"alice"}},
            ["/atlas"],
            True,
            True,
        ),
        (
            "admin_users admitted outside allowed_groups (OAuthenticator's rule)",
            {**ATLAS, "admin_users": {"alice"}, "allowed_groups": {"/atlas/users"}},
            ["/atlas"],
            True,
            True,
        ),
        (
            "admin_users still need an admitted VO",
            {**ATLAS, "admin_users": {"alice"}},
            ["/cms"],
            OTHER_VO,
            None,
        ),
        (
            "admin_groups makes a member admin",
            {**ATLAS, "admin_groups": {"/atlas/admins"}},
            ["/atlas", "/atlas/admins"],
            True,
            True,
        ),
        (
            "admin_groups: a non-member is no admin",
            {**ATLAS, "admin_groups": {"/atlas/admins"}},
            ["/atlas"],
            True,
            False,
        ),
        (
            "admin_groups member admitted outside allowed_groups",
            {**ATLAS, "admin_groups": {"/atlas/admins"}, "allowed_groups": {"/atlas/users"}},
            ["/atlas/admins"],
            True,
            True,
        ),
        (
            "admin_groups member of another VO refused",
            {**ATLAS, "admin_groups": {"/cms/admins"}},
            ["/cms/admins"],
            OTHER_VO,
            None,
        ),
    ],
)
async def test_who_signs_in(id, class_config, groups, expect_allowed, expect_admin):
    if expect_allowed is True:
        model = await sign_in(class_config, groups)
        assert model is not None and model["name"] == "alice"
        assert model["admin"] is expect_admin
        assert model["groups"] == sorted(groups)
    else:
        with pytest.raises(LoginDenied) as refused:
            await sign_in(class_config, groups)
        assert refused.value.reason == expect_allowed
        assert refused.value.status_code == 403


@pytest.mark.parametrize(
    ("id", "class_config", "groups", "advice"),
    [
        (
            "allowed_groups",
            {"allowed_groups": {"/atlas/users", "/atlas/af"}},
            ["/atlas"],
            "Your VO /atlas is admitted, but this facility admits only members of "
            "/atlas/af, /atlas/users. Ask your VO administrator to add you to one of these "
            "groups in IAM, or ask this facility's admins for access, then sign in again.",
        ),
        (
            "allowed_users",
            {"allowed_users": {"bob"}},
            ["/atlas", "/cms"],
            "Your VOs /atlas, /cms are admitted, but this facility admits only the users it "
            "lists by name. Ask this facility's admins to admit your username 'alice'.",
        ),
        (
            "both",
            {"allowed_users": {"bob"}, "allowed_groups": {"/atlas/users"}},
            ["/atlas"],
            "this facility admits only members of /atlas/users or the users it lists by name.",
        ),
    ],
)
async def test_refusal_says_which_groups_are_admitted(id, class_config, groups, advice):
    with pytest.raises(LoginDenied) as refused:
        await sign_in(class_config, groups)
    assert advice in refused.value.jupyterhub_message
    assert "bob" not in refused.value.jupyterhub_message  # the list of users stays private


def test_blocked_page_says_so():
    a = authenticator({"blocked_users": {"alice"}}, {})
    with pytest.raises(LoginDenied) as refused:
        a.check_blocked_users("alice", None)
    assert "Your account 'alice' is blocked on this facility" in refused.value.jupyterhub_message
    assert a.check_blocked_users("bob", None) is True


@pytest.mark.parametrize(
    ("class_config", "allow_all"),
    [
        ({}, True),
        ({"allowed_vos": ["/atlas"]}, True),
        ({"admin_users": {"root"}, "blocked_users": {"x"}, "admin_groups": {"/a/admins"}}, True),
        ({"allowed_users": {"alice"}}, False),
        ({"allowed_groups": {"/atlas/users"}}, False),
        ({"allowed_scopes": ["wlcg.groups"]}, False),
        ({"allow_existing_users": True}, False),
    ],
)
def test_allow_all_is_true_only_when_the_vo_rule_alone_decides(class_config, allow_all):
    assert authenticator(class_config, {}).allow_all is allow_all


@pytest.mark.parametrize("option", ["allowed_users", "allowed_groups"])
def test_explicit_allow_all_with_a_narrowing_option_refuses_to_start(option):
    value = {"alice"} if option == "allowed_users" else {"/atlas/users"}
    a = authenticator({"allow_all": True, option: value}, {})
    with pytest.raises(ValueError, match=rf"Authenticator\.allow_all = True .*\.{option} ignored"):
        a.check_allow_config()


class _User:
    name = "alice"

    def __init__(self, auth_state):
        self._state = auth_state

    async def get_auth_state(self):
        return self._state


async def test_removal_from_an_allowed_group_ends_the_session_at_refresh():
    a = authenticator({"allowed_groups": {"/atlas/users"}}, {"wlcg.groups": ["/atlas/users"]})
    state = {
        "token_response": {"access_token": "not-a-token"},
        "expires_at": time.time() + 3600,
        "oauth_user": {"sub": "sub-alice"},
    }
    assert (await a.refreshed_auth_model(_User(state), state))["groups"] == ["/atlas/users"]
    a.claims["wlcg.groups"] = ["/atlas"]  # removed from /atlas/users in IAM
    assert await a.refreshed_auth_model(_User(state), state) is None


# ---- item 8: entitlements only from trusted namespaces -----------------------------------
EGI = "urn:mace:egi.eu:group:atlas:users:role=member#aai.egi.eu"


@pytest.mark.parametrize(
    ("id", "class_config", "entitlements", "groups"),
    [
        ("EGI namespace by default", {}, [EGI], ["/atlas/users"]),
        (
            "CERN's GEANT namespace by default",
            {},
            ["urn:geant:cern.ch:group:atlas#cern.ch"],
            ["/atlas"],
        ),
        ("another GEANT authority ignored", {}, ["urn:geant:evil.example:group:atlas"], []),
        (
            "a look-alike namespace ignored",
            {},
            ["urn:mace:egi.eu.evil.example:group:atlas", "urn:geant:cern.ch.evil:group:cms"],
            [],
        ),
        (
            "a configured GEANT namespace",
            {"entitlement_namespaces": ["urn:geant:example.org"]},
            ["urn:geant:example.org:group:cms:gpu#example.org", EGI],
            ["/cms/gpu"],
        ),
        (
            "a pinned group authority",
            {"entitlement_namespaces": ["urn:mace:egi.eu#aai.egi.eu"]},
            [EGI, "urn:mace:egi.eu:group:cms#elsewhere.example", "urn:mace:egi.eu:group:lhcb"],
            ["/atlas/users"],
        ),
        ("no namespaces: entitlements ignored", {"entitlement_namespaces": []}, [EGI], []),
        (
            "entitlement_patterns still read their own form",
            {
                "entitlement_namespaces": [],
                "entitlement_patterns": [r"^urn:example:vo:(?P<group>[a-z]+)$"],
            },
            ["urn:example:vo:atlas", EGI],
            ["/atlas"],
        ),
    ],
)
async def test_entitlements_from_trusted_namespaces_only(id, class_config, entitlements, groups):
    a = authenticator(class_config, {"eduperson_entitlement": entitlements})
    if groups:
        model = await a.get_authenticated_user(None, None)
        assert model["groups"] == groups
    else:
        with pytest.raises(LoginDenied) as refused:
            await a.get_authenticated_user(None, None)
        assert refused.value.reason == NO_VO


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("entitlement_namespaces", ["urn:geant:*"], "is not a URN namespace"),
        ("entitlement_namespaces", ["urn:geant:cern.ch:group:atlas"], "is not a URN namespace"),
        ("entitlement_namespaces", [""], "is not a URN namespace"),
        ("entitlement_namespaces", ["urn:mace:egi.eu#a b"], "must be a host name"),
        ("entitlement_patterns", [r"^urn:x:(.*)$"], "has no named group 'group'"),
        ("entitlement_patterns", [r"^urn:x:(?P<group>"], "is not a regular expression"),
    ],
)
def test_entitlement_options_are_checked(option, value, message):
    with pytest.raises(TraitError, match=rf"Authenticator\.{option}: .*{message}"):
        authenticator({option: value}, {})
