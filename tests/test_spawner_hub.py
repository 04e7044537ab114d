"""ProfileSpawner in a real hub (local backend): the form, refusals over the REST API and
the form, group loss between form and spawn, the remembered choice, a removed profile,
and servers that outlive a hub restart."""

from __future__ import annotations

import json
import signal
import time
from urllib.parse import quote

import psutil
import pytest
from harness import free_port, local_spawner_config, login, notebooks_of, start_hub, stop_server

from jhub_af.hub import spawn_body

pytestmark = pytest.mark.integration

HTML_NAME = '<img src=x onerror="alert(1)"> & <script>alert(2)</script>'
PROFILES = [
    {
        "slug": "default",
        "display_name": "Default",
        "description": "Small local notebook.",
        "backend": "local",
        "resources": {"cores": 1, "memory": "1G"},
    },
    {
        "slug": "large",
        "display_name": "Large",
        "backend": "local",
        "resources": {"cores": 4, "memory": "8G"},
        "groups": ["/atlas/users"],
        "start_note": "Starts in a few seconds.",
    },
    {
        "slug": "html",
        "display_name": HTML_NAME,
        "description": "<b>not bold</b>",
        "backend": "local",
        "start_note": "</p><script>alert(3)</script>",
        "groups": ["/cms"],
    },
    {
        "slug": "gpu",
        "display_name": "GPU",
        "backend": "kubernetes",
        "image": "nvcr.io/nvidia/rapidsai/notebooks:25.08-cuda12.9-py3.12",
        "accelerator": {"type": "t4", "count": 1},
        "groups": ["/cms/gpu"],
    },
]


def config(profiles, hub_port: int, home: str) -> str:
    return (
        local_spawner_config(home)
        + f"""
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.JupyterHub.cleanup_servers = False
c.JupyterHub.authenticator_class = "af-demo"
c.DemoAuthenticator.manage_groups = False
c.JupyterHub.load_groups = {{
    "/atlas/users": {{"users": ["alice"]}},
    "/cms": {{"users": ["bob"]}},
    "/cms/gpu": {{"users": ["bob"]}},
}}
c.JupyterHub.spawner_class = "af-profiles"
c.ProfileSpawner.profiles = {json.dumps(profiles)}
c.ProfileSpawner.backend_classes = {{"local": "jupyterhub.spawner.SimpleLocalProcessSpawner"}}
c.ProfileSpawner.unavailable_backends = {{"kubernetes": "No cluster is attached here."}}
"""
    )


@pytest.fixture(scope="module")
def facility(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("profiles-hub")
    home = str(workdir / "home" / "{username}")
    state = {"workdir": workdir, "home": home, "hub_port": HUB_PORT, "port": free_port()}
    state["hub"] = start_hub(workdir, config(PROFILES, state["hub_port"], home), port=state["port"])
    yield state
    state["hub"].stop()
    for p in state.get("orphans", []):
        if p.is_running():
            p.kill()


HUB_PORT = free_port()


def wait_ready(s, url, user, timeout=120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = s.get(f"{url}/hub/api/users/{user}", timeout=10).json()
        server = model["servers"].get("")
        if server and server["ready"]:
            return server
        if not server and not model["pending"]:
            raise AssertionError(f"server of {user} is gone: {model}")
        time.sleep(0.25)
    raise TimeoutError(user)


def start(s, url, user, options) -> dict:
    r = s.post(f"{url}/hub/api/users/{user}/server", json=spawn_body(options, "6"), timeout=60)
    assert r.status_code in (201, 202), r.text
    return wait_ready(s, url, user)


def test_no_profile_given_starts_the_users_default_profile(facility):
    url = facility["hub"].url
    s = login(url, "bob", "demo")
    r = s.post(f"{url}/hub/api/users/bob/server", timeout=60)  # no body at all
    assert r.status_code in (201, 202), r.text
    server = wait_ready(s, url, "bob")
    assert server["user_options"] == {"profile": "default"}
    [proc] = notebooks_of("bob", HUB_PORT)
    assert proc.environ()["CPU_LIMIT"] == "1.0"
    assert proc.environ()["MEM_LIMIT"] == str(2**30)
    stop_server(s, url, "bob")
    assert notebooks_of("bob", HUB_PORT) == []


def test_the_form_shows_only_the_users_profiles_as_cards_with_every_text_escaped(facility):
    url = facility["hub"].url
    bob = login(url, "bob", "demo").get(f"{url}/hub/spawn", timeout=10).text
    assert 'class="card mb-3 jhub-af-profile' in bob
    assert 'id="profile-html"' in bob and 'id="profile-gpu"' in bob
    assert 'id="profile-large"' not in bob
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; &lt;script&gt;alert(2)" in bob
    assert "&lt;b&gt;not bold&lt;/b&gt;" in bob
    assert "&lt;/p&gt;&lt;script&gt;alert(3)&lt;/script&gt;" in bob
    assert "<script>alert" not in bob and "<img src=x" not in bob
    assert "No cluster is attached here." in bob
    alice = login(url, "alice", "demo").get(f"{url}/hub/spawn", timeout=10).text
    assert 'id="profile-large"' in alice and 'id="profile-html"' not in alice


ALICE_CHOICES = "Profiles you can use: default, large."
FORGED = [
    (
        "another group's profile",
        {"profile": "html"},
        f"The profile 'html' is for members of /cms; ask your VO admin. {ALICE_CHOICES}",
    ),
    (
        "extra keys",
        {"profile": "large", "cmd": ["/bin/sh", "-c", "id"], "environment": {"X": "1"}},
        "Unknown option(s) 'cmd', 'environment' for profile 'large'; "
        "the options it takes are: profile.",
    ),
    (
        "huge number as the profile",
        {"profile": 10**400},
        f"The option 'profile' must be the short name of a profile. {ALICE_CHOICES}",
    ),
    (
        "wrong type",
        {"profile": {"slug": "large"}},
        f"The option 'profile' must be the short name of a profile. {ALICE_CHOICES}",
    ),
    (
        "HTML in the name",
        {"profile": "<script>alert(1)</script>"},
        f"The option 'profile' must be the short name of a profile. {ALICE_CHOICES}",
    ),
    (
        "unknown profile",
        {"profile": "huge"},
        f"There is no profile 'huge' (your admins may have removed it). {ALICE_CHOICES}",
    ),
]


@pytest.mark.parametrize(
    ("options", "message"), [f[1:] for f in FORGED], ids=[f[0] for f in FORGED]
)
def test_forged_api_options_are_refused_and_leave_nothing_behind(facility, options, message):
    url = facility["hub"].url
    s = login(url, "alice", "demo")
    before = s.get(f"{url}/hub/api/users/alice/server", timeout=10)
    r = s.post(f"{url}/hub/api/users/alice/server", json=spawn_body(options, "6.1.1"), timeout=60)
    assert r.status_code == 400, r.text
    assert r.json()["message"] == message
    model = s.get(f"{url}/hub/api/users/alice", timeout=10).json()
    assert model["servers"] == {} and model["pending"] is None
    assert notebooks_of("alice", HUB_PORT) == []
    # the refused options were not kept as alice's "last choice"
    after = s.get(f"{url}/hub/api/users/alice/server", timeout=10)
    if before.status_code == 200:
        assert after.json()["user_options"] == before.json()["user_options"]
    assert "html" not in json.dumps(after.json().get("user_options", {}))


def test_unavailable_backend_is_refused_with_its_explanation(facility):
    url = facility["hub"].url
    s = login(url, "bob", "demo")
    r = s.post(f"{url}/hub/api/users/bob/server", json=spawn_body({"profile": "gpu"}, "6"))
    assert r.status_code == 400
    assert r.json()["message"] == (
        "The profile 'GPU' cannot start here: No cluster is attached here. Pick another profile."
    )
    assert notebooks_of("bob", HUB_PORT) == []


def test_both_spawn_bodies_give_the_same_server(facility):
    url = facility["hub"].url
    s = login(url, "alice", "demo")
    for body in (spawn_body({"profile": "large"}, "6.1.1"), spawn_body({"profile": "large"}, "5")):
        r = s.post(f"{url}/hub/api/users/alice/server", json=body, timeout=60)
        assert r.status_code in (201, 202), r.text
        assert wait_ready(s, url, "alice")["user_options"] == {"profile": "large"}
        stop_server(s, url, "alice")


def _set_membership(url: str, group: str, user: str, member: bool) -> None:
    admin = login(url, "admin", "demo")
    path = f"{url}/hub/api/groups/{quote(group, safe='')}/users"
    r = (admin.post if member else admin.delete)(path, json={"users": [user]}, timeout=10)
    assert r.status_code == 200, r.text


def test_group_lost_between_form_and_spawn_is_refused_on_the_form(facility):
    url = facility["hub"].url
    s = login(url, "alice", "demo")
    form = s.get(f"{url}/hub/spawn", timeout=10)
    assert 'id="profile-large"' in form.text
    _set_membership(url, "/atlas/users", "alice", member=False)
    try:
        r = s.post(
            f"{url}/hub/spawn",
            data={"profile": "large", "_xsrf": s.cookies.get("_xsrf", path="/hub/")},
            timeout=60,
        )
        assert r.status_code == 400
        assert (
            "Error: The profile &#39;large&#39; is for members of /atlas/users; ask your VO admin. "
            "Profiles you can use: default." in r.text
        )
        assert 'id="profile-large"' not in r.text  # the form shown again is today's
        assert s.get(f"{url}/hub/api/users/alice", timeout=10).json()["servers"] == {}
        assert notebooks_of("alice", HUB_PORT) == []
    finally:
        _set_membership(url, "/atlas/users", "alice", member=True)


def test_last_choice_is_remembered_by_the_form(facility):
    url = facility["hub"].url
    s = login(url, "alice", "demo")
    start(s, url, "alice", {"profile": "large"})
    stop_server(s, url, "alice")
    form = s.get(f"{url}/hub/spawn", timeout=10).text
    assert 'value="large" checked>' in " ".join(form.split())


def test_every_start_is_rebuilt_from_config(facility):
    url = facility["hub"].url
    s = login(url, "alice", "demo")
    start(s, url, "alice", {"profile": "large"})
    [proc] = notebooks_of("alice", HUB_PORT)
    assert proc.environ()["CPU_LIMIT"] == "4.0"
    stop_server(s, url, "alice")
    start(s, url, "alice", {"profile": "default"})
    [proc] = notebooks_of("alice", HUB_PORT)
    assert proc.environ()["CPU_LIMIT"] == "1.0"
    assert proc.environ()["MEM_LIMIT"] == str(2**30)
    stop_server(s, url, "alice")


def _restart(facility, profiles) -> None:
    """Stop the hub alone (its notebooks keep running) and start it on the same ports."""
    old = facility["hub"]
    orphans = notebooks_of("alice", HUB_PORT) + notebooks_of("bob", HUB_PORT)
    facility.setdefault("orphans", []).extend(orphans)
    old.process.proc.send_signal(signal.SIGTERM)
    old.process.proc.wait(60)
    old.stop()
    cfg = config(profiles, facility["hub_port"], facility["home"])
    facility["hub"] = start_hub(facility["workdir"], cfg, port=facility["port"])


def test_servers_outlive_a_hub_restart_even_when_their_profile_was_removed(facility):
    url = facility["hub"].url
    alice, bob = login(url, "alice", "demo"), login(url, "bob", "demo")
    alice_server = start(alice, url, "alice", {"profile": "large"})
    bob_server = start(bob, url, "bob", {})
    [alice_proc], [bob_proc] = notebooks_of("alice", HUB_PORT), notebooks_of("bob", HUB_PORT)

    # the admin drops "large" from the catalogue and restarts the hub
    _restart(facility, [p for p in PROFILES if p["slug"] != "large"])
    url = facility["hub"].url
    alice, bob = login(url, "alice", "demo"), login(url, "bob", "demo")
    assert wait_ready(alice, url, "alice")["url"] == alice_server["url"]
    assert wait_ready(bob, url, "bob")["url"] == bob_server["url"]
    assert alice_proc.is_running() and bob_proc.is_running()
    assert alice.get(f"{url}/user/alice/api", timeout=30).status_code == 200

    stop_server(alice, url, "alice")
    stop_server(bob, url, "bob")
    psutil.wait_procs([alice_proc, bob_proc], timeout=30)
    assert not alice_proc.is_running() and not bob_proc.is_running()

    # alice's saved choice points to the removed profile: refused, and the form says so
    r = alice.post(f"{url}/hub/api/users/alice/server", timeout=60)
    assert r.status_code == 400
    assert r.json()["message"] == (
        "There is no profile 'large' (your admins may have removed it). "
        "Profiles you can use: default."
    )
    assert notebooks_of("alice", HUB_PORT) == []
    form = alice.get(f"{url}/hub/spawn", timeout=10).text
    assert "The profile you used last time is no longer offered to you" in form
    assert 'id="profile-large"' not in form
    assert "checked" in form.split('id="profile-default"')[1].split(">")[0]
