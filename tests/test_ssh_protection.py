"""af-ssh's protections, with af-ssh processes of the test's own against a real hub:
1,000 failed logins from one address lock nobody out, only tokens meant for SSH log
in, idle timeout, the kept host key, the admin opt-in, and the binary channel's own
refusals in the user's server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import stat

import asyncssh
import pytest
import requests
from harness import free_port, local_spawner_config, login, spawn_server
from harness.ssh import hub_token, openssh, ssh_connect, start_af_ssh
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

pytestmark = pytest.mark.integration

SERVICE_TOKEN = secrets.token_hex(32)

HUB = """
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{"root"}}
# af-ssh as an external service whose token may reach servers (for the admin opt-in)
c.JupyterHub.services = [{{"name": "af-ssh", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [
    {{"name": "af-ssh", "services": ["af-ssh"], "scopes": ["access:servers"]}},
]
# users' tokens carry custom:jhub-af:ssh, their servers' tokens do not
from jhub_af.hub import add_roles
from jhub_af.ssh import ssh_hub_config
add_roles(c, ssh_hub_config(c))
"""


@pytest.fixture(scope="module")
def hub(hub_factory, tmp_path_factory):
    homes = tmp_path_factory.mktemp("ssh-homes")
    config = local_spawner_config(str(homes / "{username}")) + HUB.format(token=SERVICE_TOKEN)
    hub = hub_factory(config)
    hub.homes = homes
    return hub


@pytest.fixture(scope="module")
def sessions(hub):
    return {name: login(hub.url, name, "any") for name in ("alice", "dave", "bob", "root")}


@pytest.fixture(scope="module")
def tokens(hub, sessions):
    return {name: hub_token(s, hub.url, name) for name, s in sessions.items()}


@pytest.fixture(scope="module")
def af_ssh(hub, tmp_path_factory):
    """af-ssh with the admin opt-in and its own service token."""
    workdir = tmp_path_factory.mktemp("af-ssh")
    port = free_port()
    env = {**os.environ, "JUPYTERHUB_API_TOKEN": SERVICE_TOKEN}
    process = start_af_ssh(workdir, hub.url, port, "--allow-admin-access", env=env)
    process.port = port
    yield process
    process.stop()


def _hub_token_checks(hub) -> int:
    return hub.process.log.read_text(errors="replace").count("GET /hub/api/user (")


class Guesser(asyncssh.SSHClient):
    """Tries ``tries`` wrong tokens on one connection."""

    def __init__(self, tries: int):
        self.tries = tries

    def password_auth_requested(self):
        if self.tries == 0:
            return None
        self.tries -= 1
        return secrets.token_hex(16)


async def _guess(port: int, user: str, source: str, tries: int) -> tuple[int, str]:
    """(wrong tokens tried, af-ssh's reason for ending the connection)."""
    client = Guesser(tries)
    with pytest.raises(asyncssh.PermissionDenied) as refused:
        await ssh_connect(
            port,
            user,
            None,
            source,
            password_auth=True,
            kbdint_auth=False,
            client_factory=lambda: client,
        )
    return tries - client.tries, refused.value.reason


async def _in_log(process, text: str, timeout: float) -> None:
    """Until ``text`` is in ``process``'s log, letting the event loop run meanwhile."""
    deadline = asyncio.get_running_loop().time() + timeout
    while text not in process.log.read_text():
        assert asyncio.get_running_loop().time() < deadline, f"not in the log: {text}"
        await asyncio.sleep(0.2)


STORM = "127.0.0.50"
LIMITED = f"SSH: source {STORM} rate-limited after 20 failed logins within 300 seconds"


async def test_a_thousand_failed_logins_from_one_address_lock_nobody_out(hub, tokens, af_ssh):
    before = _hub_token_checks(hub)
    failed, reasons = 0, []

    async def storm():
        nonlocal failed
        while failed < 1000:
            batch = [_guess(af_ssh.port, "alice", STORM, 20) for _ in range(10)]
            for tried, reason in await asyncio.gather(*batch):
                failed += tried
                reasons.append(reason)

    attack = asyncio.ensure_future(storm())
    try:
        await _in_log(af_ssh, LIMITED, 120)
        # during the storm, alice logs in with her token from another address and
        # from the attacked one: a valid token is never refused for failures
        elsewhere = await ssh_connect(af_ssh.port, "alice", tokens["alice"], "127.0.0.51")
        same = await ssh_connect(af_ssh.port, "alice", tokens["alice"], STORM)
        assert not attack.done() and failed < 1000
        await attack
    finally:
        attack.cancel()
    assert failed >= 1000
    for conn in (elsewhere, same):
        async with conn:
            assert (await conn.run("echo served", check=True)).stdout == "served\n"
    # the attacked address was told why, plainly, and when it may retry
    told = re.fullmatch(
        rf"af-ssh: too many failed logins from your address \({STORM}\): it is rate-limited "
        r"for (\d+) more seconds, and every wrong token ends the connection\. A valid token "
        rf"still logs in at once: paste yours again, or make a new one at {hub.url}/hub/token\.",
        reasons[-1],
    )
    assert told and 290 < int(told[1]) <= 300, reasons[-1]
    r = openssh("ssh", af_ssh.port, secrets.token_hex(16), ["-b", STORM, "alice@127.0.0.1"])
    assert r.returncode == 255, r.stderr
    assert re.search(rb"rate-limited for \d+ more seconds.*/hub/token\.", r.stderr), r.stderr
    log = af_ssh.log.read_text()
    assert log.count(LIMITED) == 1  # said once, however long the storm
    assert "SSH login: 'alice' from 127.0.0.51 (token of the user)" in log
    assert f"SSH login: 'alice' from {STORM} (token of the user)" in log
    # every try was a real answer from the hub (one at a time from the limited address)
    assert _hub_token_checks(hub) - before >= 1000
    # others keep being served
    async with await ssh_connect(af_ssh.port, "dave", tokens["dave"]) as conn:
        assert (await conn.run("echo served", check=True)).stdout == "served\n"
    assert af_ssh.alive()


# -- only tokens meant for SSH


def _not_for_ssh(hub) -> str:
    return (
        "af-ssh: this token is not meant for SSH (it lacks custom:jhub-af:ssh). Make a new "
        f"token on the hub's token page, {hub.url}/hub/token, keeping its default "
        "permissions, and log in with that one."
    )


async def test_a_token_from_the_token_page_logs_in(hub, sessions, af_ssh):
    # what /hub/token sends: no scopes, so the token has the user's own
    r = sessions["alice"].post(f"{hub.url}/hub/api/users/alice/tokens", json={}, timeout=10)
    r.raise_for_status()
    async with await ssh_connect(af_ssh.port, "alice", r.json()["token"], "127.0.0.52") as conn:
        assert (await conn.run("echo in", check=True)).stdout == "in\n"


async def test_the_servers_own_token_is_refused_with_where_to_make_one(hub, tokens, af_ssh):
    # the token services receive from alice's server (af-accounting, the Dask Gateway)
    async with await ssh_connect(af_ssh.port, "alice", tokens["alice"]) as conn:
        result = await conn.run("printenv JUPYTERHUB_API_TOKEN", check=True)
    server_token = result.stdout.strip()
    assert server_token and server_token != tokens["alice"]
    r = requests.get(
        f"{hub.url}/hub/api/user", headers={"Authorization": f"token {server_token}"}, timeout=10
    )
    assert r.json()["name"] == "alice"  # a valid token of alice's ...
    with pytest.raises(asyncssh.PermissionDenied) as refused:  # ... that opens no session
        await ssh_connect(af_ssh.port, "alice", server_token, "127.0.0.53")
    assert refused.value.reason == _not_for_ssh(hub)
    assert "SSH login refused: 'alice' from 127.0.0.53: the token is not meant for SSH" in (
        af_ssh.log.read_text()
    )
    assert server_token not in af_ssh.log.read_text()


async def test_a_token_with_only_read_users_name_is_refused_with_a_sentence(hub, sessions, af_ssh):
    token = hub_token(sessions["alice"], hub.url, "alice", scopes=["read:users:name!user=alice"])
    with pytest.raises(asyncssh.PermissionDenied) as refused:
        await ssh_connect(af_ssh.port, "alice", token, "127.0.0.54")
    assert refused.value.reason == _not_for_ssh(hub)
    # OpenSSH prints it at the prompt
    r = openssh("ssh", af_ssh.port, token, ["-b", "127.0.0.54", "alice@127.0.0.1", "true"])
    assert r.returncode == 255 and _not_for_ssh(hub).encode() in r.stderr, r.stderr


async def test_an_admin_token_opens_another_server_only_with_the_opt_in(hub, tokens, af_ssh):
    async with await ssh_connect(af_ssh.port, "dave", tokens["root"]) as conn:
        result = await conn.run("echo $HOME", check=True)
    assert result.stdout.strip() == str(hub.homes / "dave")
    log = af_ssh.log.read_text()
    assert "SSH login: 'dave' from 127.0.0.1 (token of 'root')" in log
    # another user's token is still refused, opt-in or not
    with pytest.raises(asyncssh.PermissionDenied):
        await ssh_connect(af_ssh.port, "dave", tokens["bob"], source="127.0.0.5")


async def test_idle_connections_are_closed(hub, tokens, tmp_path):
    port = free_port()
    process = start_af_ssh(tmp_path, hub.url, port, "--idle-timeout=2")
    try:
        conn = await ssh_connect(port, "dave", tokens["dave"])
        await conn.run("true", check=True)
        # nothing more is sent: af-ssh ends the connection
        await asyncio.wait_for(conn.wait_closed(), 60)
        assert "SSH: closing idle connection of dave from 127.0.0.1" in process.log.read_text()
    finally:
        process.stop()


async def test_the_host_key_is_generated_once_and_kept(hub, tokens, tmp_path):
    port = free_port()
    fingerprints = []
    for _ in range(2):
        process = start_af_ssh(tmp_path, hub.url, port)
        try:
            async with await ssh_connect(port, "dave", tokens["dave"]) as conn:
                fingerprints.append(conn.get_server_host_key().get_fingerprint())
        finally:
            process.stop()
    key_file = tmp_path / "ssh_host_ed25519_key"
    assert fingerprints[0] == fingerprints[1]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert fingerprints[0] in process.log.read_text()
    assert process.log.read_text().count("Generated the SSH host key") == 1


def test_openssh_verifies_the_kept_host_key_across_restarts(hub, tokens, tmp_path):
    port = free_port()
    known = tmp_path / "known_hosts"
    for _ in range(2):
        process = start_af_ssh(tmp_path, hub.url, port)
        try:
            r = openssh(
                "ssh", port, tokens["dave"], ["dave@127.0.0.1", "echo ok"], known_hosts=known
            )
        finally:
            process.stop()
        assert (r.returncode, r.stdout) == (0, b"ok\n"), r.stderr
    assert known.read_text().count("ssh-ed25519") == 1


# -- the binary channel in the user's server, asked directly


async def _channel(hub, name: str, token: str, first: str):
    url = f"{hub.url}/user/{name}/jhub-af/ssh/channel".replace("http", "ws", 1)
    request = HTTPRequest(url, headers={"Authorization": f"token {token}"})
    conn = await websocket_connect(request)
    await conn.write_message(first)
    frames = []
    while True:
        message = await asyncio.wait_for(conn.read_message(), 60)
        if message is None:
            return frames
        frames.append(message)


@pytest.fixture(scope="module")
def dave_running(hub, sessions):
    spawn_server(sessions["dave"], hub.url, "dave")
    return hub.homes / "dave"


async def test_the_channel_runs_commands_for_the_owner_binary_safe(hub, tokens, dave_running):
    command = json.dumps({"kind": "exec", "command": r"printf '\000\377'; echo e >&2; exit 6"})
    frames = await _channel(hub, "dave", tokens["dave"], command)
    assert b"\x01\x00\xff" in frames
    assert b"\x02e\n" in frames
    assert frames[-1] == json.dumps({"exit_status": 6})


@pytest.mark.parametrize(
    "first",
    [
        "not json",
        json.dumps({"kind": "shell"}),
        json.dumps({"kind": "exec", "command": ""}),
        "[]",
        json.dumps({"kind": "exec", "command": "true", "pty": [0, 24]}),
        json.dumps({"kind": "exec", "command": "true", "pty": "80x24"}),
        json.dumps({"kind": "exec", "command": "true", "pty": [80, 24, 1]}),
    ],
)
async def test_the_channel_refuses_bad_requests(hub, tokens, dave_running, first):
    frames = await _channel(hub, "dave", tokens["dave"], first)
    assert len(frames) == 1 and "error" in json.loads(frames[0])


@pytest.mark.parametrize(
    ("who", "why"),
    [
        ("root", "an admin's token: the hub lets it in, the channel does not"),
        ("bob", "another user's token"),
        ("no-scope", "dave's token without access to his server"),
        ("wrong", "not a token"),
    ],
)
async def test_the_channel_accepts_only_the_owner_or_af_ssh(
    hub, sessions, tokens, dave_running, who, why
):
    if who == "no-scope":
        token = hub_token(sessions["dave"], hub.url, "dave", scopes=["read:users:name!user=dave"])
    elif who == "wrong":
        token = secrets.token_hex(16)
    else:
        token = tokens[who]
    with pytest.raises(HTTPClientError) as refused:
        await _channel(hub, "dave", token, json.dumps({"kind": "exec", "command": "touch x"}))
    assert refused.value.code == 403, why
    assert not (dave_running / "x").exists()
    if who == "root":
        # the same token may use dave's terminals API: the refusal is the channel's own
        r = requests.get(
            f"{hub.url}/user/dave/api/terminals",
            headers={"Authorization": f"token {token}"},
            timeout=10,
        )
        assert r.status_code == 200


async def test_the_channel_accepts_the_af_ssh_service(hub, dave_running):
    command = json.dumps({"kind": "exec", "command": "echo from af-ssh"})
    frames = await _channel(hub, "dave", SERVICE_TOKEN, command)
    assert b"\x01from af-ssh\n" in frames
