"""The pipelined SFTP race, for real: asyncssh's SFTP client through af-ssh into a
user's JupyterLab server (a real hub, a local spawner), sending "remove ``q``, make
``q`` a symlink, open and write through it" without waiting for answers.

``l -> q/..`` is alice's own home while ``q`` is a folder; once ``q -> .``, ``l``
means the folder of all homes and ``l/bob/...`` is bob's."""

from __future__ import annotations

import asyncio
import os

import asyncssh
import pytest
from harness import free_port, local_spawner_config, login, spawn_server
from harness.ssh import hub_token, ssh_connect, start_af_ssh

pytestmark = pytest.mark.integration
SECRET = b"bob's secret, not for alice's sftp"
HUB = """
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
from jhub_af.hub import add_roles
from jhub_af.ssh import ssh_hub_config
add_roles(c, ssh_hub_config(c))
"""


@pytest.fixture(scope="module")
def hub(hub_factory, tmp_path_factory):
    homes = tmp_path_factory.mktemp("sftp-homes")
    hub = hub_factory(local_spawner_config(str(homes / "{username}")) + HUB)
    hub.homes = homes
    return hub


@pytest.fixture(scope="module")
def af_ssh(hub, tmp_path_factory):
    port = free_port()
    process = start_af_ssh(tmp_path_factory.mktemp("af-ssh"), hub.url, port)
    process.port = port
    yield process
    process.stop()


@pytest.fixture(scope="module")
def alice(hub):
    session = login(hub.url, "alice", "any")
    spawn_server(session, hub.url, "alice")
    return hub_token(session, hub.url, "alice")


@pytest.fixture
def homes(hub, alice):
    home, bob = hub.homes / "alice", hub.homes / "bob"
    bob.mkdir(exist_ok=True)
    (bob / "secret.txt").write_bytes(SECRET)
    for name in ("q", "l"):
        if (home / name).is_symlink():
            (home / name).unlink()
    (home / "q").mkdir(exist_ok=True)
    (home / "l").symlink_to("q/..")
    return home, bob


async def _outcome(coro):
    try:
        return await coro
    except (asyncssh.SFTPError, OSError) as e:
        return e


async def test_a_pipelined_swap_and_open_through_af_ssh_reaches_nothing_outside(
    af_ssh, alice, homes
):
    home, bob = homes
    conn = await ssh_connect(af_ssh.port, "alice", alice)
    async with conn, conn.start_sftp_client() as sftp:
        results = await asyncio.gather(
            _outcome(sftp.rmdir("q")),
            # af-ssh does not say it is OpenSSH, so asyncssh sends the standard order,
            # which OpenSSH's sftp-server reads swapped: this makes q -> .
            _outcome(sftp.symlink("q", ".")),
            _outcome(sftp.open("l/bob/secret.txt", "rb")),
            _outcome(sftp.open("l/bob/planted.txt", "wb")),
            _outcome(sftp.rename("l/bob/secret.txt", "stolen.txt")),
        )
        assert results[:2] == [None, None], results
        assert os.readlink(home / "q") == "."  # the swap happened: l means the homes
        for refused in results[2:]:
            assert isinstance(refused, asyncssh.SFTPPermissionDenied), results
            assert refused.reason == "Outside your home directory."
        # and the same through a second session racing the first
        async with conn.start_sftp_client() as other:
            (home / "q").unlink()
            (home / "q").mkdir()
            swaps = asyncio.gather(_outcome(sftp.rmdir("q")), _outcome(sftp.symlink("q", ".")))
            reads = asyncio.gather(*(_outcome(other.open("l/bob/secret.txt")) for _ in range(20)))
            await swaps
            for result in await reads:
                assert isinstance(result, asyncssh.SFTPError), result
    assert sorted(p.name for p in bob.iterdir()) == ["secret.txt"]
    assert (bob / "secret.txt").read_bytes() == SECRET
    assert not (home / "stolen.txt").exists()
