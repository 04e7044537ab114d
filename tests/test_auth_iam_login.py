"""IAMAuthenticator against a real OIDC provider (node oidc-provider) and a real hub.

Logins over HTTP and in Chromium; VO groups from every claim form; admins by
group; the refusals the issue lists, each with its page and nothing stored; the
nonce; a notebook's $BEARER_TOKEN_FILE refreshed after the access token expired;
and no token in any log. (Outages, key rotation and revocation: test_auth_iam_outages.py.)
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

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
    run_python,
    spawn_server,
    start_idp,
    user_api_token,
)

pytestmark = pytest.mark.integration

ACCESS_TOKEN_TTL = 20  # seconds: short, so the bearer-token test sees a refresh
MIN_TTL = 10  # the hub refreshes tokens with less than this left

ACCOUNTS = {
    "alice": {
        "sub": "sub-alice",
        "preferred_username": "alice",
        "wlcg.groups": ["/atlas", "/atlas/users"],
    },
    "bob": {"sub": "sub-bob", "preferred_username": "bob", "groups": ["cms", "cms/gpu"]},
    "erin": {
        "sub": "sub-erin",
        "preferred_username": "erin",
        "eduperson_entitlement": ["urn:mace:egi.eu:group:cms:users:role=member#aai.egi.eu"],
    },
    "boss": {
        "sub": "sub-boss",
        "preferred_username": "boss",
        "wlcg.groups": ["/atlas", "/atlas/admins"],
    },
    "carol": {"sub": "sub-carol", "preferred_username": "carol", "wlcg.groups": []},
    "dave": {"sub": "sub-dave", "preferred_username": "dave"},
    "lhcbuser": {"sub": "sub-lhcb", "preferred_username": "lhcbuser", "wlcg.groups": ["/lhcb"]},
    "alice-twin": {"sub": "sub-twin", "preferred_username": "Alice", "wlcg.groups": ["/atlas"]},
    "longname": {"sub": "sub-long", "preferred_username": "x" * 10_000, "wlcg.groups": ["/atlas"]},
    "blocked": {"sub": "sub-blocked", "preferred_username": "blocked", "wlcg.groups": ["/atlas"]},
    "atlasonly": {
        "sub": "sub-atlasonly",
        "preferred_username": "atlasonly",
        "wlcg.groups": ["/atlas"],
    },
}


def assert_not_logged(hub, idp, secrets) -> None:
    """None of ``secrets`` (tokens a test saw) is in the hub's or the IdP's log so far.

    Each test that sees a token checks it itself, so no test depends on another
    having run before it."""
    secrets = [s for s in secrets if s]
    assert secrets, "nothing to look for"
    for name, text in {"hub": hub.process.log.read_text(), "IdP": idp.log.read_text()}.items():
        for secret in secrets:
            assert secret not in text, f"a token or the client secret is in the {name} log"


@pytest.fixture(scope="module")
def ports():
    return {"hub": free_port(), "nopkce": free_port(), "groups": free_port()}


@pytest.fixture(scope="module")
def idp(tmp_path_factory, ports):
    redirect = [f"http://127.0.0.1:{p}/hub/oauth_callback" for p in ports.values()]
    idp = start_idp(
        tmp_path_factory.mktemp("idp"), ACCOUNTS, redirect, access_token_ttl=ACCESS_TOKEN_TTL
    )
    yield idp
    idp.stop()


@pytest.fixture(scope="module")
def admin_token():
    return secrets.token_hex(32)


EXTRA = f"""
c.IAMAuthenticator.access_token_min_ttl = {MIN_TTL}
c.IAMAuthenticator.blocked_users = {{"blocked"}}
c.Spawner.args.extend(["--BearerTokenKeeper.margin_seconds=5",
                       "--BearerTokenKeeper.retry_seconds=1"])
"""


@pytest.fixture(scope="module")
def homes(tmp_path_factory) -> Path:
    """Where the main hub's users have their home directories."""
    return tmp_path_factory.mktemp("homes")


@pytest.fixture(scope="module")
def iam_hub(hub_factory, idp, ports, admin_token):
    """``iam_hub(name, homes, extra)``: a hub on ``ports[name]`` that signs in with the
    module's IdP, its users' homes under ``homes``, with ``extra`` config lines."""

    def start(name: str, homes: Path, extra: str):
        return hub_factory(
            iam_hub_config(idp, ports[name], str(homes / "{username}"), extra),
            port=ports[name],
            env=iam_hub_env(idp, admin_token),
        )

    return start


@pytest.fixture(scope="module")
def hub(iam_hub, homes):
    return iam_hub("hub", homes, EXTRA)


@pytest.fixture(scope="module")
def alice(hub):
    """alice signed in once for the module (first, so that her name is hers)."""
    return oidc_login(hub.url, "alice")


def page_text(r) -> str:
    return r.text.replace("&#39;", "'").replace("&quot;", '"')


# ---- who signs in, with which groups ----------------------------------------------------
def test_alice_gets_her_wlcg_groups(hub, alice):
    me = alice.get(f"{hub.url}/hub/api/user", timeout=10).json()
    assert me["name"] == "alice"
    assert sorted(me["groups"]) == ["/atlas", "/atlas/users"]
    assert me["admin"] is False


@pytest.mark.parametrize(
    ("username", "groups"),
    [("bob", ["/cms", "/cms/gpu"]), ("erin", ["/cms/users"])],
    ids=["IAM groups claim", "eduperson_entitlement"],
)
def test_groups_from_other_claim_forms(hub, username, groups):
    me = oidc_login(hub.url, username).get(f"{hub.url}/hub/api/user", timeout=10).json()
    assert sorted(me["groups"]) == groups


def test_admin_by_group(hub):
    me = oidc_login(hub.url, "boss").get(f"{hub.url}/hub/api/user", timeout=10).json()
    assert me["admin"] is True
    assert sorted(me["groups"]) == ["/atlas", "/atlas/admins"]


def test_auth_state_keeps_tokens_encrypted_in_the_hub(hub, alice, admin_token, idp):
    state = admin_get(hub.url, admin_token, "/users/alice").json()["auth_state"]
    assert state["refresh_token"] and state["access_token"] and state["id_token"]
    assert state["af_groups"] == ["/atlas", "/atlas/users"]
    assert state["expires_at"] > time.time()
    assert_not_logged(hub, idp, [state["refresh_token"], state["access_token"], state["id_token"]])
    # encrypted at rest: the database file holds no token in clear
    db = (hub.workdir / "jupyterhub.sqlite").read_bytes()
    assert state["refresh_token"].encode() not in db
    assert state["access_token"].encode() not in db


# ---- refusals: a page that says why; nothing stored -------------------------------------
@pytest.mark.parametrize(
    ("username", "status", "title", "advice"),
    [
        ("carol", 403, "Not a member of any VO", "Ask your experiment's VO administrator"),
        ("dave", 403, "No group information from IAM", "IAM sent no group membership"),
        (
            "lhcbuser",
            403,
            "VO not admitted here",
            "You are a member of /lhcb, but this facility admits members of /atlas, /cms only.",
        ),
        ("longname", 403, "Username not usable here", "it must be at most 64 characters"),
    ],
    ids=["no VO", "no group claim", "VO not allowed", "10,000-character username"],
)
def test_refused_with_a_page_that_says_why(hub, admin_token, username, status, title, advice):
    s, r = oidc_login_response(hub.url, username)
    assert r.status_code == status
    assert f"{status} : {title}" in page_text(r)
    assert advice in page_text(r)
    assert s.get(f"{hub.url}/hub/api/user", timeout=10).status_code == 403
    users = [u["name"] for u in admin_get(hub.url, admin_token, "/users").json()]
    assert username not in users and not any(len(u) > 64 for u in users)


def test_blocked_user_is_refused(hub, admin_token):
    s, r = oidc_login_response(hub.url, "blocked")
    assert r.status_code == 403
    assert "403 : Account blocked here" in page_text(r)
    assert "Your account 'blocked' is blocked on this facility." in page_text(r)
    assert s.get(f"{hub.url}/hub/api/user", timeout=10).status_code == 403
    assert admin_get(hub.url, admin_token, "/users/blocked").status_code == 404


def test_colliding_username_does_not_take_over_the_account(hub, alice, admin_token):
    # "Alice" normalises to "alice", but belongs to another IAM subject
    s, r = oidc_login_response(hub.url, "alice-twin")
    assert r.status_code == 403
    assert "403 : Username already taken" in page_text(r)
    assert "maps to the username 'alice', which already belongs" in page_text(r)
    assert s.get(f"{hub.url}/hub/api/user", timeout=10).status_code == 403
    state = admin_get(hub.url, admin_token, "/users/alice").json()["auth_state"]
    assert state["oauth_user"]["sub"] == "sub-alice"


@pytest.fixture(scope="module")
def groups_hub(iam_hub, tmp_path_factory):
    """A hub that keeps GenericOAuthenticator's ``allowed_groups`` next to ``allowed_vos``."""
    extra = 'c.IAMAuthenticator.allowed_groups = {"/atlas/users"}\n'
    return iam_hub("groups", tmp_path_factory.mktemp("homes3"), extra)


def test_allowed_groups_refuses_a_vo_member_outside_the_group(groups_hub, admin_token):
    # issue 15 item 2: allowed_groups was silently ignored, admitting every /atlas member
    s, r = oidc_login_response(groups_hub.url, "atlasonly")
    assert r.status_code == 403
    assert "403 : Not admitted to this facility" in page_text(r)
    assert (
        "Your VO /atlas is admitted, but this facility admits only members of /atlas/users. "
        "Ask your VO administrator to add you to one of these groups in IAM"
    ) in page_text(r)
    assert s.get(f"{groups_hub.url}/hub/api/user", timeout=10).status_code == 403
    # neither the user nor their auth_state (tokens) was stored
    assert admin_get(groups_hub.url, admin_token, "/users/atlasonly").status_code == 404
    # a member of the group signs in, and so does an admin by group (OAuthenticator's rule)
    me = oidc_login(groups_hub.url, "alice").get(f"{groups_hub.url}/hub/api/user", timeout=10)
    assert sorted(me.json()["groups"]) == ["/atlas", "/atlas/users"]
    assert (
        oidc_login(groups_hub.url, "boss")
        .get(f"{groups_hub.url}/hub/api/user", timeout=10)
        .json()["admin"]
    )


def _start_login(hub_url: str):
    """Start a login at the hub: (session, the IdP authorize URL the hub redirects to)."""
    s = requests.Session()
    r = s.get(f"{hub_url}/hub/oauth_login", allow_redirects=False, timeout=10)
    assert r.status_code == 302
    return s, r.headers["Location"]


def _callback_url(hub_url: str, username: str, session=None) -> tuple[requests.Session, str]:
    """Go through the IdP up to the hub's callback; return it without calling it."""
    s = session or requests.Session()
    r = s.get(f"{hub_url}/hub/oauth_login", allow_redirects=False, timeout=10)
    url, _ = drive_login(s, r, username, lambda u: urlsplit(u).path.endswith("/oauth_callback"))
    assert url, "the IdP did not send us back"
    return s, url


def _with_query(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_wrong_state_is_refused(hub):
    s, url = _callback_url(hub.url, "bob")
    forged = base64.urlsafe_b64encode(json.dumps({"state_id": "0" * 32}).encode()).decode()
    r = s.get(_with_query(url, state=forged), allow_redirects=False, timeout=30)
    assert r.status_code == 400
    assert "400 : Sign-in could not be completed" in page_text(r)
    assert "sign in again" in page_text(r)
    assert s.get(f"{hub.url}/hub/api/user", timeout=10).status_code == 403


def test_replayed_code_is_refused(hub):
    first, url = _callback_url(hub.url, "bob")
    assert first.get(url, allow_redirects=False, timeout=30).status_code == 302  # used once
    # a second browser: its own state, the old code
    second, authorize = _start_login(hub.url)
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    code = parse_qs(urlsplit(url).query)["code"][0]
    replay = f"{hub.url}/hub/oauth_callback?{urlencode({'code': code, 'state': state})}"
    r = second.get(replay, allow_redirects=False, timeout=30)
    assert r.status_code == 400
    assert "400 : Sign-in could not be completed" in page_text(r)
    assert second.get(f"{hub.url}/hub/api/user", timeout=10).status_code == 403


def test_error_from_the_idp_is_shown_escaped(hub):
    s, authorize = _start_login(hub.url)
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    evil = "<script>alert(1)</script>"
    q = urlencode({"error": "access_denied", "error_description": evil, "state": state})
    r = s.get(f"{hub.url}/hub/oauth_callback?{q}", allow_redirects=False, timeout=10)
    assert r.status_code == 403
    assert "IAM did not sign you in" in r.text
    assert evil not in r.text and "&lt;script&gt;" in r.text


@pytest.fixture(scope="module")
def nopkce_hub(iam_hub, tmp_path_factory):
    """A hub without PKCE, so that only the nonce stands between a stolen code and a login."""
    extra = "c.IAMAuthenticator.enable_pkce = False\n"
    return iam_hub("nopkce", tmp_path_factory.mktemp("homes2"), extra)


def test_code_from_another_login_fails_the_nonce_check(nopkce_hub):
    victim, authorize = _start_login(nopkce_hub.url)
    victim_state = parse_qs(urlsplit(authorize).query)["state"][0]
    # the attacker's own login: its code carries the attacker's nonce
    _, attacker_url = _callback_url(nopkce_hub.url, "bob")
    code = parse_qs(urlsplit(attacker_url).query)["code"][0]
    injected = f"{nopkce_hub.url}/hub/oauth_callback?" + urlencode(
        {"code": code, "state": victim_state}
    )
    r = victim.get(injected, allow_redirects=False, timeout=30)
    assert r.status_code == 403
    assert "403 : Sign-in could not be verified" in page_text(r)
    assert victim.get(f"{nopkce_hub.url}/hub/api/user", timeout=10).status_code == 403
    assert "ID token rejected: wrong nonce" in nopkce_hub.process.log.read_text()


# ---- the notebook's bearer token ---------------------------------------------------------
def _read(path: Path) -> str:
    return path.read_text().strip() if path.exists() else ""


def _userinfo_ok(idp, token: str) -> bool:
    r = requests.get(
        idp.discovery()["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    return r.status_code == 200


async def test_notebook_bearer_token_file_is_refreshed_after_expiry(hub, alice, idp, homes):
    r = spawn_server(alice, hub.url, "alice")
    assert r.status_code == 200
    token_file = homes / "alice" / ".local" / "share" / "jupyter" / "runtime" / "bearer_token"
    deadline = time.monotonic() + 30
    while not _read(token_file) and time.monotonic() < deadline:
        time.sleep(0.5)
    first = _read(token_file)
    assert first, "the server extension wrote no bearer token"
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"

    # the keeper fetches again shortly before expiry; the hub refreshes it with IAM
    deadline = time.monotonic() + ACCESS_TOKEN_TTL + 30
    while _read(token_file) in ("", first) and time.monotonic() < deadline:
        time.sleep(0.5)
    second = _read(token_file)
    assert second and second != first, "the token file was not refreshed"
    time.sleep(max(0.0, ACCESS_TOKEN_TTL + 1 - MIN_TTL))  # let the first token expire
    assert not _userinfo_ok(idp, first)
    assert _userinfo_ok(idp, _read(token_file))

    # what a notebook sees: the variable, and the fresh token in the file it names
    code = "import os; p = os.environ['BEARER_TOKEN_FILE']; print(p); print(open(p).read())"
    printed = await run_python(hub.url, "alice", user_api_token(alice, hub.url, "alice"), code)
    path, token = printed.split()
    assert Path(path).resolve() == token_file.resolve()
    assert token == _read(token_file)
    assert _userinfo_ok(idp, token)
    assert_not_logged(hub, idp, [first, second, token])


def test_bearer_token_endpoint_is_only_for_the_owner(hub, alice, idp):
    bob = oidc_login(hub.url, "bob")
    r = bob.get(f"{hub.url}/hub/api/jhub-af/users/alice/bearer-token", timeout=10)
    assert r.status_code == 404
    assert "access_token" not in r.text
    r = requests.get(f"{hub.url}/hub/api/jhub-af/users/alice/bearer-token", timeout=10)
    assert r.status_code == 403
    own = bob.get(f"{hub.url}/hub/api/jhub-af/users/bob/bearer-token", timeout=10).json()
    assert set(own) == {"access_token", "token_type", "expires_at"}
    assert_not_logged(hub, idp, [own["access_token"]])


# ---- in a browser -------------------------------------------------------------------------
@pytest.mark.browser
async def test_signing_in_with_iam_in_chromium(hub, page, artifacts_dir):
    await page.goto(f"{hub.url}/hub/login")
    await page.click("text=Sign in with IAM")
    await page.fill("input[name=login]", "erin")
    await page.fill("input[name=password]", "any")
    await page.click("button[type=submit]")
    await page.click("button[type=submit]")  # consent
    # back at the hub, which starts erin's server and opens JupyterLab
    await page.wait_for_selector(".jp-Launcher", timeout=120_000)
    assert page.url.startswith(f"{hub.url}/user/erin/lab")
    await page.screenshot(path=str(artifacts_dir / "iam-erin-jupyterlab.png"))
    me = await (await page.request.get(f"{hub.url}/hub/api/user")).json()
    assert me["name"] == "erin"
    assert me["groups"] == ["/cms/users"]


# ---- nothing secret in the logs, whatever ran before ------------------------------------
def test_no_token_or_secret_in_any_log(hub, nopkce_hub, idp, admin_token):
    oidc_login(hub.url, "bob")
    tokens = []  # every user's current tokens (each earlier test checked those it saw)
    for user in admin_get(hub.url, admin_token, "/users").json():
        state = admin_get(hub.url, admin_token, f"/users/{user['name']}").json()["auth_state"]
        if state:
            tokens += [state[k] for k in ("access_token", "refresh_token", "id_token")]
    assert tokens
    logs = {
        "hub": hub.process.log.read_text(),
        "hub without PKCE": nopkce_hub.process.log.read_text(),
        "IdP": idp.log.read_text(),
    }
    for name, text in logs.items():
        for token in [*tokens, idp.client_secret]:
            assert token not in text, f"a token or the client secret is in the {name} log"
