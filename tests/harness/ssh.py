"""SSH clients for tests: Debian's OpenSSH (ssh, sftp, scp, rsync through sshpass) and
asyncssh, against af-ssh; and af-ssh processes started by a test itself."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from .processes import ManagedProcess

# only the password (the hub token); with HOST_KEY_UNCHECKED: never ask, never remember
HOST_KEY_UNCHECKED = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
OPENSSH_OPTIONS = [
    *HOST_KEY_UNCHECKED,
    "-o",
    "PubkeyAuthentication=no",
    "-o",
    "PreferredAuthentications=password",
    "-o",
    "NumberOfPasswordPrompts=1",
    "-o",
    "LogLevel=ERROR",
]


def hub_token(
    s: requests.Session,
    hub_url: str,
    name: str,
    scopes: list[str] | None = None,
    expires_in: int | None = None,
) -> str:
    """A new API token of ``name``, as from /hub/token (all their permissions unless
    ``scopes`` says otherwise)."""
    body: dict = {"note": "ssh test"}
    if scopes is not None:
        body["scopes"] = scopes
    if expires_in is not None:
        body["expires_in"] = expires_in
    r = s.post(f"{hub_url}/hub/api/users/{name}/tokens", json=body, timeout=10)
    r.raise_for_status()
    return r.json()["token"]


async def ssh_connect(port: int, user: str, password: str | None, source="127.0.0.1", **kw):
    """An asyncssh connection to 127.0.0.1:``port`` as ``user`` with ``password`` (the
    hub token; None: none offered) from the loopback address ``source``, offering no
    keys, no agent and checking no host key; ``kw`` goes to ``asyncssh.connect``
    (e.g. ``client_factory``). Raises what asyncssh raises (PermissionDenied...)."""
    import asyncssh

    return await asyncssh.connect(
        "127.0.0.1",
        port,
        username=user,
        password=password,
        known_hosts=None,
        client_keys=None,
        agent_path=None,
        local_addr=(source, 0),
        **kw,
    )


def wait_for_port(port: int, timeout: float = 60, alive=lambda: True, describe=lambda: "") -> None:
    """Until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"process died before port {port} opened\n{describe()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s\n{describe()}")


def openssh(
    tool: str,
    port: int,
    token: str,
    args: list[str],
    *,
    input: bytes | None = None,
    timeout: float = 180,
    cwd: Path | None = None,
    known_hosts: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run ``ssh``/``sftp``/``scp`` with the token as the password (through sshpass -e,
    so it is on no command line). With ``known_hosts``, the host key is checked
    against that file (and added to it the first time)."""
    port_flag = "-p" if tool == "ssh" else "-P"
    options = OPENSSH_OPTIONS
    if known_hosts is not None:
        options = [
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            "StrictHostKeyChecking=accept-new",
            *OPENSSH_OPTIONS[len(HOST_KEY_UNCHECKED) :],
        ]
    cmd = ["sshpass", "-e", tool, port_flag, str(port), *options, *args]
    return subprocess.run(
        cmd,
        input=input,
        capture_output=True,
        timeout=timeout,
        env={**os.environ, "SSHPASS": token},
        cwd=cwd,
    )


def rsync(port: int, token: str, args: list[str], timeout: float = 180):
    """rsync over ``ssh -p port`` with the token as the password."""
    shell = " ".join(["sshpass", "-e", "ssh", "-p", str(port), *OPENSSH_OPTIONS])
    return subprocess.run(
        ["rsync", "-e", shell, *args],
        capture_output=True,
        timeout=timeout,
        env={**os.environ, "SSHPASS": token},
    )


def start_af_ssh(workdir: Path, hub_url: str, port: int, *args: str, env=None) -> ManagedProcess:
    """An af-ssh process of the test's own (not the hub's), on ``port``, logging to
    ``workdir/af-ssh.log``; returns once it listens."""
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "jhub_af.ssh",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--hub-url={hub_url}",
        f"--hub-api-url={hub_url}/hub/api",
        f"--host-key-file={workdir / 'ssh_host_ed25519_key'}",
        *args,
    ]
    process = ManagedProcess(cmd, log=workdir / "af-ssh.log", cwd=workdir, env=env)
    try:
        wait_for_port(port, 60, process.alive, process.log_tail)
    except Exception:
        process.stop()
        raise
    return process
