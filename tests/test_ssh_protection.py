"""af-ssh's protections, with af-ssh processes of the test's own against a real hub:
rate limits under 1,000 failed logins, idle timeout, the kept host key, the admin
opt-in, and the binary channel's own refusals in the user's server."""

from __future__ import annotations

import asyncio
import json
import os
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
    return {name: login(hub.url, name, "any") for name in ("dave", "bob", "root")}


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


async def _guess(port: int, user: str, source: str, tries: int) -> int:
    client = Guesser(tries)
    with pytest.raises(asyncssh.PermissionDenied):
        await ssh_connect(
            port,
            user,
            None,
            source,
            password_auth=True,
            kbdint_auth=False,
            client_factory=lambda: client,
        )
    return tries - client.tries


async def test_a_thousand_failed_logins_are_rate_limited_and_others_still_served(
    hub, tokens, af_ssh
):
    before = _hub_token_checks(hub)
    done = 0
    while done < 1000:
        batch = [_guess(af_ssh.port, "bob", "127.0.0.2", 20) for _ in range(10)]
        done += sum(await asyncio.gather(*batch))
    assert done >= 1000
    # after the lockout the hub was not asked any more
    asked = _hub_token_checks(hub) - before
    assert 0 < asked <= 20
    log = af_ssh.log.read_text()
    assert "SSH: source 127.0.0.2 locked out after repeated failures" in log
    assert "too many failures from this source" in log
    # others keep being served
    async with await ssh_connect(af_ssh.port, "dave", tokens["dave"]) as conn:
        result = await conn.run("echo served", check=True)
        assert result.stdout == "served\n"
    # the locked-out source is refused even with a right token ...
    with pytest.raises(asyncssh.PermissionDenied):
        await ssh_connect(af_ssh.port, "dave", tokens["dave"], source="127.0.0.2")
    # ... and so is the attacked name, from anywhere, even with its right token
    with pytest.raises(asyncssh.PermissionDenied):
        await ssh_connect(af_ssh.port, "bob", tokens["bob"], source="127.0.0.3")
    log = af_ssh.log.read_text()
    assert "SSH login refused: 'bob' from 127.0.0.3: too many failures for this user" in log
    assert af_ssh.alive()


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
