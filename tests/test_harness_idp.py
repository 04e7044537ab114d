"""The test IdP (node oidc-provider, tests/idp/idp.mjs) behaves as the authenticator
tests need: discovery and keys, a login through a hub with oauthenticator's own
GenericOAuthenticator, and the token endpoint's authorization-code, refresh,
revocation and replay behaviour, and key rotation.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from harness import (
    drive_login,
    free_port,
    generic_oauth_config,
    oidc_login,
    oidc_login_response,
    start_idp,
)
from joserfc import jwt
from joserfc.jwk import KeySet

pytestmark = pytest.mark.integration

ACCOUNTS = {
    "alice": {
        "sub": "2f6a1c1e-0a51-4f4c-9a4e-3c1d8a2b7e01",
        "preferred_username": "alice",
        "name": "Alice Atlas",
        "email": "alice@example.org",
        "wlcg.groups": ["/atlas", "/atlas/users"],
        "eduperson_entitlement": ["urn:mace:egi.eu:group:atlas:role=member#aai.egi.eu"],
    },
    "carol": {
        "sub": "7d3e9b40-5c2f-4e11-8f0a-1b2c3d4e5f60",
        "preferred_username": "carol",
        "groups": ["cms"],
    },
}
SCOPE = ["openid", "profile", "email", "wlcg.groups", "offline_access"]


@pytest.fixture(scope="module")
def hub_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def idp(tmp_path_factory, hub_port):
    idp = start_idp(
        tmp_path_factory.mktemp("idp"),
        ACCOUNTS,
        [f"http://127.0.0.1:{hub_port}/hub/oauth_callback"],
    )
    yield idp
    idp.stop()


@pytest.fixture(scope="module")
def admin_token() -> str:
    return secrets.token_hex(32)


@pytest.fixture(scope="module")
def oauth_hub(hub_factory, hub_port, idp, admin_token):
    """A plain hub with oauthenticator's GenericOAuthenticator against the IdP."""
    config = (
        generic_oauth_config(idp, hub_port)
        + """
import os
c.JupyterHub.services = [
    {"name": "test-admin", "api_token": os.environ["TEST_ADMIN_TOKEN"]}
]
c.JupyterHub.load_roles = [
    {"name": "test-admin", "services": ["test-admin"],
      "scopes": ["admin:users", "admin:auth_state"]}
]
"""
    )
    return hub_factory(
        config,
        port=hub_port,
        env={
            "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),
            "TEST_OAUTH_CLIENT_SECRET": idp.client_secret,
            "TEST_ADMIN_TOKEN": admin_token,
        },
    )


def _b64json(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _jwt_header(token: str) -> dict:
    return _b64json(token.split(".")[0])


def authorization_code_flow(idp, redirect_uri: str, username: str) -> dict:
    """The whole authorization-code flow done by hand, as a client would: authorize
    with a nonce and PKCE, the IdP's login and consent forms, then the code exchange.
    Returns {"code", "verifier", "nonce", "tokens"}."""
    nonce = secrets.token_urlsafe(16)
    state = secrets.token_urlsafe(16)
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    query = {
        "client_id": idp.client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": " ".join(SCOPE),
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    s = requests.Session()
    r = s.get(f"{idp.endpoint('authorization')}?{urlencode(query)}", allow_redirects=False)
    url, r = drive_login(s, r, username, lambda url: url.startswith(redirect_uri))
    assert url is not None, f"the IdP did not redirect back: HTTP {r.status_code}"
    back = parse_qs(urlsplit(url).query)
    assert back["state"] == [state]
    assert back["iss"] == [idp.issuer]
    code = back["code"][0]
    tokens = idp.token_request(
        grant_type="authorization_code",
        code=code,
        redirect_uri=redirect_uri,
        code_verifier=verifier,
    )
    assert "error" not in tokens, tokens.get("error_description")
    return {"code": code, "verifier": verifier, "nonce": nonce, "tokens": tokens}


def test_discovery_and_published_keys(idp):
    d = idp.discovery()
    assert d["issuer"] == idp.issuer
    for name in ("authorization", "token", "userinfo", "revocation"):
        assert d[f"{name}_endpoint"].startswith(f"{idp.issuer}/")
    assert "S256" in d["code_challenge_methods_supported"]
    assert {"authorization_code", "refresh_token"} <= set(d["grant_types_supported"])
    assert set(SCOPE) <= set(d["scopes_supported"])
    assert {"wlcg.groups", "groups", "eduperson_entitlement"} <= set(d["claims_supported"])
    assert "client_secret_post" in d["token_endpoint_auth_methods_supported"]

    published = requests.get(d["jwks_uri"], timeout=10).json()["keys"]
    assert [k["kid"] for k in published] == [k["kid"] for k in idp.jwks["keys"]]
    assert idp.signing_kid in {k["kid"] for k in published}
    assert all("d" not in k and "p" not in k for k in published), "private key material published"


def test_login_through_the_hub_gives_user_with_wlcg_groups(oauth_hub, admin_token):
    s = oidc_login(oauth_hub.url, "alice")
    model = s.get(f"{oauth_hub.url}/hub/api/user", timeout=10).json()
    assert model["name"] == "alice"
    assert sorted(model["groups"]) == ["/atlas", "/atlas/users"]

    # what the hub keeps: the userinfo claims and a refresh token (offline_access)
    r = requests.get(
        f"{oauth_hub.url}/hub/api/users/alice",
        headers={"Authorization": f"token {admin_token}"},
        timeout=10,
    )
    assert r.status_code == 200
    auth_state = r.json()["auth_state"]
    assert auth_state["oauth_user"]["sub"] == ACCOUNTS["alice"]["sub"]
    assert auth_state["oauth_user"]["email"] == "alice@example.org"
    assert (
        auth_state["oauth_user"]["eduperson_entitlement"]
        == (ACCOUNTS["alice"]["eduperson_entitlement"])
    )
    assert bool(auth_state.get("access_token"))
    assert bool(auth_state.get("refresh_token"))


def test_user_without_wlcg_groups_gets_none(oauth_hub):
    s = oidc_login(oauth_hub.url, "carol")
    model = s.get(f"{oauth_hub.url}/hub/api/user", timeout=10).json()
    assert model["name"] == "carol"
    assert model["groups"] == []
    # the session carries the XSRF header that REST calls other than GET need
    r = s.post(f"{oauth_hub.url}/hub/api/users/carol/tokens", json={"expires_in": 60}, timeout=10)
    assert r.status_code == 201


def test_unknown_user_is_not_logged_in(oauth_hub):
    s, r = oidc_login_response(oauth_hub.url, "mallory")
    assert r.status_code == 400
    assert "unknown user" in r.text
    assert s.get(f"{oauth_hub.url}/hub/api/user", timeout=10).status_code == 403


def test_authorization_code_refresh_revocation_and_replay(idp, hub_port):
    redirect_uri = f"http://127.0.0.1:{hub_port}/hub/oauth_callback"
    flow = authorization_code_flow(idp, redirect_uri, "alice")
    tokens = flow["tokens"]
    assert tokens["token_type"].lower() == "bearer"

    # the ID token: signed by the current key, nonce echoed, group claims in it
    assert _jwt_header(tokens["id_token"]) == {"alg": "RS256", "kid": idp.signing_kid}
    claims = jwt.decode(tokens["id_token"], KeySet.import_key_set(idp.public_jwks)).claims
    assert claims["nonce"] == flow["nonce"]
    assert claims["iss"] == idp.issuer
    assert claims["aud"] == idp.client_id
    assert claims["sub"] == ACCOUNTS["alice"]["sub"]
    assert claims["wlcg.groups"] == ["/atlas", "/atlas/users"]

    # userinfo with the access token carries the claims for sure
    userinfo = requests.get(
        idp.endpoint("userinfo"),
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10,
    ).json()
    assert userinfo["preferred_username"] == "alice"
    assert userinfo["wlcg.groups"] == ["/atlas", "/atlas/users"]

    # refresh: a new access token that works at userinfo
    refresh_token = tokens["refresh_token"]
    refreshed = idp.token_request(grant_type="refresh_token", refresh_token=refresh_token)
    assert "error" not in refreshed, refreshed.get("error_description")
    assert refreshed["access_token"] != tokens["access_token"]
    r = requests.get(
        idp.endpoint("userinfo"),
        headers={"Authorization": f"Bearer {refreshed['access_token']}"},
        timeout=10,
    )
    assert r.status_code == 200
    assert r.json()["sub"] == ACCOUNTS["alice"]["sub"]

    # the client credentials in an HTTP Basic header work as well (oauthenticator's
    # basic_auth = True)
    basic = requests.post(
        idp.endpoint("token"),
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(idp.client_id, idp.client_secret),
        timeout=10,
    ).json()
    assert "error" not in basic, basic.get("error_description")
    assert basic["access_token"] not in (tokens["access_token"], refreshed["access_token"])

    # wrong client secret: refused
    bad = requests.post(
        idp.endpoint("token"),
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": idp.client_id,
            "client_secret": "not-the-secret",
        },
        timeout=10,
    ).json()
    assert bad["error"] == "invalid_client"

    # revoked: refreshing fails
    idp.revoke(refreshed.get("refresh_token", refresh_token))
    after = idp.token_request(grant_type="refresh_token", refresh_token=refresh_token)
    assert after["error"] == "invalid_grant"

    # the same code a second time: refused
    replay = idp.token_request(
        grant_type="authorization_code",
        code=flow["code"],
        redirect_uri=redirect_uri,
        code_verifier=flow["verifier"],
    )
    assert replay["error"] == "invalid_grant"


def test_key_rotation(idp, oauth_hub, hub_port):
    redirect_uri = f"http://127.0.0.1:{hub_port}/hub/oauth_callback"
    old_kid = idp.signing_kid

    new_kid = idp.rotate_keys()
    assert new_kid != old_kid
    published = requests.get(idp.discovery()["jwks_uri"], timeout=10).json()["keys"]
    assert [k["kid"] for k in published] == [new_kid, old_kid]
    id_token = authorization_code_flow(idp, redirect_uri, "alice")["tokens"]["id_token"]
    assert _jwt_header(id_token)["kid"] == new_kid
    jwt.decode(id_token, KeySet.import_key_set(idp.public_jwks))  # verifies the signature

    newest_kid = idp.rotate_keys(keep_old=False)
    published = requests.get(idp.discovery()["jwks_uri"], timeout=10).json()["keys"]
    assert [k["kid"] for k in published] == [newest_kid]
    id_token = authorization_code_flow(idp, redirect_uri, "alice")["tokens"]["id_token"]
    assert _jwt_header(id_token)["kid"] == newest_kid

    # same port, same client and accounts after the restarts: the hub still logs people in
    s = oidc_login(oauth_hub.url, "alice")
    assert s.get(f"{oauth_hub.url}/hub/api/user", timeout=10).json()["name"] == "alice"
