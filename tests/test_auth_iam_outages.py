"""IAMAuthenticator when IAM misbehaves: down at login and at refresh, a revoked
refresh token, and signing-key rotation (a real IdP, restarted and stopped)."""

from __future__ import annotations

import secrets
import time

import pytest
import requests
from harness import (
    admin_get,
    drive_login,
    free_port,
    iam_hub_config,
    iam_hub_env,
    oidc_login,
    oidc_login_response,
)

pytestmark = pytest.mark.integration

TTL = 20
MIN_TTL = 10
ACCOUNTS = {
    "alice": {"sub": "sub-alice", "preferred_username": "alice", "wlcg.groups": ["/atlas"]},
    "bob": {"sub": "sub-bob", "preferred_username": "bob", "wlcg.groups": ["/cms"]},
    "erin": {"sub": "sub-erin", "preferred_username": "erin", "wlcg.groups": ["/cms"]},
}


@pytest.fixture(scope="module")
def port():
    return free_port()


@pytest.fixture(scope="module")
def idp(tmp_path_factory, port):
    from harness import start_idp

    idp = start_idp(
        tmp_path_factory.mktemp("idp"),
        ACCOUNTS,
        [f"http://127.0.0.1:{port}/hub/oauth_callback"],
        access_token_ttl=TTL,
    )
    yield idp
    idp.stop()


@pytest.fixture(scope="module")
def admin_token():
    return secrets.token_hex(32)


@pytest.fixture(scope="module")
def hub(hub_factory, idp, port, admin_token, tmp_path_factory):
    homes = str(tmp_path_factory.mktemp("homes") / "{username}")
    extra = f"""
c.IAMAuthenticator.access_token_min_ttl = {MIN_TTL}
c.IAMAuthenticator.auth_refresh_age = 5
c.IAMAuthenticator.jwks_refetch_interval = 0
"""
    return hub_factory(
        iam_hub_config(idp, port, homes, extra), port=port, env=iam_hub_env(idp, admin_token)
    )


def wait_until_refresh_is_due():
    """Sleep until a token issued now has less than MIN_TTL seconds left."""
    time.sleep(TTL - MIN_TTL + 1)


def server_like_token(s, hub_url, name) -> dict:
    """Headers with an API token like the one a user's server holds (the bearer-token scope)."""
    r = s.post(
        f"{hub_url}/hub/api/users/{name}/tokens",
        json={"scopes": [f"custom:jhub-af:bearer-token!user={name}"], "expires_in": 600},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return {"Authorization": f"token {r.json()['token']}"}


def text(r):
    return r.text.replace("&#39;", "'")


def test_idp_unreachable_at_login_says_so(hub_factory, tmp_path_factory):
    class Nowhere:  # an issuer where nothing listens
        issuer = f"http://127.0.0.1:{free_port()}"
        client_id = "jhub-af"
        client_secret = "unused"

    port = free_port()
    homes = str(tmp_path_factory.mktemp("homes-nowhere") / "{username}")
    dead = hub_factory(
        iam_hub_config(Nowhere, port, homes),
        port=port,
        env=iam_hub_env(Nowhere, secrets.token_hex(32)),
    )
    r = requests.get(f"{dead.url}/hub/oauth_login", allow_redirects=False, timeout=30)
    assert r.status_code == 503
    assert "503 : Cannot reach IAM" in text(r)
    assert "wait a minute and sign in again" in text(r)


def test_revoked_refresh_token_forces_a_new_login(hub, idp, admin_token):
    s = oidc_login(hub.url, "alice")
    server = server_like_token(s, hub.url, "alice")
    state = admin_get(hub.url, admin_token, "/users/alice").json()["auth_state"]
    idp.revoke(state["refresh_token"])
    wait_until_refresh_is_due()

    url = f"{hub.url}/hub/api/jhub-af/users/alice/bearer-token"
    r = requests.get(url, headers=server, timeout=30)
    assert r.status_code == 401
    assert "Your IAM session has ended" in r.json()["message"]
    # a page request with the cookie sends alice back to the login
    r = s.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
    assert r.status_code == 302
    assert "/hub/login" in r.headers["Location"]
    # ... where a notice says why (see test_login_page_explains_an_ended_session)
    assert s.cookies.get("jhub-af-notice") == "iam-session-ended"
    assert "was refused" in hub.process.log.read_text()
    # and signing in again works
    assert oidc_login(hub.url, "alice").get(f"{hub.url}/hub/api/user").json()["name"] == "alice"


def test_access_token_revoked_early_is_noticed_at_the_next_refresh(hub, idp, admin_token):
    s = oidc_login(hub.url, "erin")
    before = admin_get(hub.url, admin_token, "/users/erin").json()["auth_state"]
    # still valid by its expiry, but revoked: userinfo answers 401, the hub tries a
    # refresh, which this IdP refuses too (revoking a token revokes its whole grant)
    idp.revoke(before["access_token"], hint="access_token")
    time.sleep(6)  # past auth_refresh_age
    r = s.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
    assert r.status_code == 302
    assert "/hub/login" in r.headers["Location"]
    assert s.cookies.get("jhub-af-notice") == "iam-session-ended"
    assert "Refresh token of erin was refused (invalid_grant)" in hub.process.log.read_text()


def test_idp_down_at_refresh_keeps_a_valid_session_then_says_so(hub, idp):
    s = oidc_login(hub.url, "bob")
    server = server_like_token(s, hub.url, "bob")
    url = f"{hub.url}/hub/api/jhub-af/users/bob/bearer-token"
    idp.stop()
    try:
        wait_until_refresh_is_due()
        # the token still works for a few seconds: it is handed out as it is
        r = requests.get(url, headers=server, timeout=30)
        assert r.status_code == 200
        assert r.json()["expires_at"] > time.time()
        assert s.get(f"{hub.url}/hub/api/user", timeout=30).json()["name"] == "bob"
        time.sleep(MIN_TTL)  # now it has expired
        r = requests.get(url, headers=server, timeout=30)
        assert r.status_code == 503
        assert "IAM cannot be reached to renew your token" in r.json()["message"]
    finally:
        idp.restart()


def test_idp_down_between_redirect_and_callback(hub, idp):
    s = requests.Session()
    r = s.get(f"{hub.url}/hub/oauth_login", allow_redirects=False, timeout=10)
    url, _ = drive_login(s, r, "erin", lambda u: "/hub/oauth_callback" in u)
    idp.stop()
    try:
        r = s.get(url, allow_redirects=False, timeout=60)
        assert r.status_code == 503
        assert "503 : Cannot reach IAM" in text(r)
        assert s.get(f"{hub.url}/hub/api/user", timeout=10).status_code == 403
    finally:
        idp.restart()


@pytest.mark.parametrize("keep_old", [True, False], ids=["old key kept", "old key dropped"])
def test_key_rotation_is_followed(hub, idp, keep_old):
    new_kid = idp.rotate_keys(keep_old=keep_old)
    s, r = oidc_login_response(hub.url, "erin")
    assert r.status_code == 302, r.text[:500]
    assert s.get(f"{hub.url}/hub/api/user", timeout=10).json()["name"] == "erin"
    assert new_kid in {k["kid"] for k in idp.public_jwks["keys"]}
    assert "ID token rejected" not in hub.process.log.read_text()


@pytest.mark.browser
async def test_login_page_explains_an_ended_session(hub, page, artifacts_dir):
    host = hub.url.split("//", 1)[1].split(":")[0]
    await page.context.add_cookies(
        [{"name": "jhub-af-notice", "value": "iam-session-ended", "domain": host, "path": "/"}]
    )
    await page.goto(f"{hub.url}/hub/login")
    notice = page.locator("#jhub-af-login-notice")
    await notice.wait_for(state="visible", timeout=10_000)
    assert (await notice.inner_text()).startswith("Your IAM session has ended")
    assert await page.locator("text=Sign in with IAM").is_visible()
    await page.screenshot(path=str(artifacts_dir / "iam-session-ended.png"))
    # shown once: the cookie is gone
    await page.reload()
    assert await notice.is_hidden()


@pytest.mark.browser
async def test_login_page_without_notice_shows_only_the_button(hub, page):
    await page.goto(f"{hub.url}/hub/login")
    assert await page.locator("text=Sign in with IAM").is_visible()
    assert await page.locator("#jhub-af-login-notice").is_hidden()


def test_no_token_or_secret_in_the_logs(hub, idp, admin_token):
    oidc_login(hub.url, "bob")
    tokens = []
    for user in admin_get(hub.url, admin_token, "/users").json():
        state = admin_get(hub.url, admin_token, f"/users/{user['name']}").json()["auth_state"]
        if state:
            tokens += [state[k] for k in ("access_token", "refresh_token", "id_token")]
    assert tokens
    for log in (hub.process.log, idp.log):
        text = log.read_text()
        for secret in [*tokens, idp.client_secret]:
            assert secret not in text, f"a token or the client secret is in {log.name}"
