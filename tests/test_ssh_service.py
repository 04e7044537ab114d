"""af-ssh in the demo facility: real hub + proxy + af-ssh (hub-managed) + local
JupyterLab servers, driven by Debian's OpenSSH (ssh, sftp, scp, rsync) and asyncssh."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import secrets
import select
import signal
import struct
import subprocess
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
import pytest
import requests
from harness import free_port, login, start_demo, stop_server
from harness.ssh import OPENSSH_OPTIONS, hub_token, openssh, rsync, ssh_connect, wait_for_port

pytestmark = pytest.mark.integration


@dataclass
class Facility:
    url: str
    ssh_port: int
    workdir: Path
    process: object
    sessions: dict = field(default_factory=dict)
    tokens: list = field(default_factory=list)  # every token handed out, for the log check

    def home(self, name: str) -> Path:
        return self.workdir / "data" / "home" / name

    def session(self, name: str) -> requests.Session:
        if name not in self.sessions:
            self.sessions[name] = login(self.url, name, "demo")
        return self.sessions[name]

    def token(self, name: str, **kwargs) -> str:
        token = hub_token(self.session(name), self.url, name, **kwargs)
        self.tokens.append(token)
        return token

    def log(self) -> str:
        return (self.workdir / "demo.log").read_text(errors="replace")

    def server(self, name: str) -> dict | None:
        r = self.session(name).get(f"{self.url}/hub/api/users/{name}", timeout=10)
        return r.json().get("servers", {}).get("")

    def ssh(self, token: str, user: str, *command: str, source: str = "127.0.0.1", **kw):
        return openssh(
            "ssh", self.ssh_port, token, ["-b", source, f"{user}@127.0.0.1", *command], **kw
        )


@pytest.fixture(scope="module")
def facility(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("ssh-demo")
    port = free_port()
    hub = start_demo(workdir, extra_args=["--ssh-port", str(port)])
    try:
        wait_for_port(port, 60, hub.process.alive, hub.process.log_tail)
        yield Facility(url=hub.url, ssh_port=port, workdir=workdir, process=hub.process)
    finally:
        hub.stop()


@pytest.fixture(scope="module")
def alice_token(facility):
    return facility.token("alice")


@pytest.fixture(scope="module")
def alice_running(facility, alice_token):
    """alice's server, started through ssh (the first test checks how)."""
    if not (facility.server("alice") or {}).get("ready"):
        assert facility.ssh(alice_token, "alice", "true").returncode == 0
    return facility.home("alice")


# -- what a physicist does


def test_command_starts_the_server_with_progress_then_returns_output_and_status(
    facility, alice_token
):
    assert facility.server("alice") is None
    r = facility.ssh(alice_token, "alice", "echo hello; pwd; exit 3")
    assert r.returncode == 3, r.stderr
    assert r.stdout == f"hello\n{facility.home('alice')}\n".encode()
    assert b"Starting your server ..." in r.stderr
    assert b"[100%] Server ready at /user/alice/" in r.stderr
    assert facility.server("alice")["ready"]
    # running now: no progress the second time
    r = facility.ssh(alice_token, "alice", "echo again")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"again\n", b"")


def test_commands_keep_stdout_and_stderr_apart_and_are_binary_safe(
    facility, alice_token, alice_running
):
    r = facility.ssh(alice_token, "alice", "echo out; echo err >&2")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"out\n", b"err\n")
    blob = bytes(range(256)) * 4096 + secrets.token_bytes(3 * 1024 * 1024)
    r = facility.ssh(alice_token, "alice", "cat > blob.bin && sha256sum blob.bin", input=blob)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0].decode() == hashlib.sha256(blob).hexdigest()
    assert (alice_running / "blob.bin").read_bytes() == blob
    r = facility.ssh(alice_token, "alice", "cat blob.bin")
    assert r.returncode == 0 and r.stdout == blob
    # not valid UTF-8, which a terminal websocket would have replaced
    r = facility.ssh(alice_token, "alice", r"printf '\377\376\000\200'")
    assert r.stdout == b"\xff\xfe\x00\x80"


def test_sftp_puts_and_gets_a_large_binary_file(facility, alice_token, alice_running, tmp_path):
    data = secrets.token_bytes(40 * 1024 * 1024)
    (tmp_path / "up.bin").write_bytes(data)
    commands = b"put up.bin sftp-up.bin\nget sftp-up.bin down.bin\nls -l sftp-up.bin\n"
    # commands on stdin: `sftp -b` would turn password logins off (BatchMode)
    r = openssh(
        "sftp", facility.ssh_port, alice_token, ["alice@127.0.0.1"], input=commands, cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert (alice_running / "sftp-up.bin").read_bytes() == data
    assert (tmp_path / "down.bin").read_bytes() == data
    assert str(len(data)).encode() in r.stdout
    # nothing left behind under a temporary name
    assert not [p for p in alice_running.iterdir() if ".part-" in p.name]


def test_scp_and_rsync_copy_both_ways(facility, alice_token, alice_running, tmp_path):
    data = secrets.token_bytes(5 * 1024 * 1024)
    (tmp_path / "a.bin").write_bytes(data)
    r = openssh(
        "scp", facility.ssh_port, alice_token, [str(tmp_path / "a.bin"), "alice@127.0.0.1:scp.bin"]
    )
    assert r.returncode == 0, r.stderr
    assert (alice_running / "scp.bin").read_bytes() == data
    r = openssh(
        "scp", facility.ssh_port, alice_token, ["alice@127.0.0.1:scp.bin", str(tmp_path / "b.bin")]
    )
    assert r.returncode == 0 and (tmp_path / "b.bin").read_bytes() == data
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "c.bin").write_bytes(data[:100_000])
    r = rsync(
        facility.ssh_port, alice_token, ["-a", f"{tmp_path / 'tree'}/", "alice@127.0.0.1:tree/"]
    )
    assert r.returncode == 0, r.stderr
    assert (alice_running / "tree" / "sub" / "c.bin").read_bytes() == data[:100_000]
    r = rsync(
        facility.ssh_port, alice_token, ["-a", "alice@127.0.0.1:tree/", f"{tmp_path / 'back'}/"]
    )
    assert (
        r.returncode == 0 and (tmp_path / "back" / "sub" / "c.bin").read_bytes() == data[:100_000]
    )


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _read_until(fd: int, needle: bytes, timeout: float = 60) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while needle not in out:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{needle!r} not seen in {out[-500:]!r}")
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
    return out


def test_interactive_openssh_in_a_pty_gets_size_resize_and_exit_status(
    facility, alice_token, alice_running, tmp_path
):
    # ssh itself on the pty (sshpass would put its own pty in between, which does
    # not pass resizes on): the token comes from an askpass program
    askpass = tmp_path / "askpass"
    askpass.write_text('#!/bin/sh\nprintf "%s\\n" "$AF_TOKEN"\n')
    askpass.chmod(0o700)
    master, slave = os.openpty()
    _set_size(slave, 33, 101)
    proc = subprocess.Popen(
        ["ssh", "-tt", "-p", str(facility.ssh_port), *OPENSSH_OPTIONS, "alice@127.0.0.1"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={
            **os.environ,
            "AF_TOKEN": alice_token,
            "SSH_ASKPASS": str(askpass),
            "SSH_ASKPASS_REQUIRE": "force",
            "TERM": "xterm",
        },
        start_new_session=True,
    )
    os.close(slave)
    try:
        # the marker is computed, so the echoed command line does not match it
        os.write(master, b"stty size; echo READY$((0+1))\r")
        assert b"33 101" in _read_until(master, b"READY1\r\n")
        # what a terminal window does when it is resized
        _set_size(master, 41, 77)
        proc.send_signal(signal.SIGWINCH)
        # ssh sends the new size when it handles the signal, which may be after it
        # has sent what is typed next: ask until the shell sees it (or give up)
        for attempt in range(2, 40):
            os.write(master, b"stty size; echo READY$((%d))\r" % attempt)
            if b"41 77" in _read_until(master, b"READY%d\r\n" % attempt):
                break
        else:
            raise AssertionError("the shell never saw the new size 41x77")
        os.write(master, b"exit 5\r")
        assert proc.wait(60) == 5
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


async def test_asyncssh_shell_is_a_jupyter_terminal_with_live_resize(
    facility, alice_token, alice_running
):
    async with await ssh_connect(facility.ssh_port, "alice", alice_token) as conn:
        process = await conn.create_process(term_type="xterm", term_size=(120, 40))
        process.stdin.write("stty size; echo R$((0+1))\n")
        out = await asyncio.wait_for(process.stdout.readuntil("R1\r\n"), 60)
        assert "40 120" in out
        # the shell runs in a terminal of alice's server, seen by its terminals API
        r = requests.get(
            f"{facility.url}/user/alice/api/terminals",
            headers={"Authorization": f"token {alice_token}"},
            timeout=10,
        )
        assert r.status_code == 200 and len(r.json()) >= 1
        process.change_terminal_size(90, 30)
        process.stdin.write("stty size; echo R$((1+1))\n")
        out = await asyncio.wait_for(process.stdout.readuntil("R2\r\n"), 60)
        assert "30 90" in out
        process.stdin.write("exit 4\n")
        result = await asyncio.wait_for(process.wait(), 60)
        assert result.exit_status == 4


def test_ssh_t_runs_a_command_on_a_pty(facility, alice_token, alice_running):
    args = ["-tt", "alice@127.0.0.1", "stty size; tty; exit 3"]
    r = openssh("ssh", facility.ssh_port, alice_token, args)
    assert r.returncode == 3, r.stderr
    lines = r.stdout.split(b"\r\n")
    assert lines[0] == b"24 80"  # ssh's default when its own stdin is no terminal
    assert lines[1].startswith(b"/dev/pts/")


async def test_a_command_on_a_pty_sees_resizes(facility, alice_token, alice_running):
    async with await ssh_connect(facility.ssh_port, "alice", alice_token) as conn:
        process = await conn.create_process(
            "stty size; read x; stty size; exit 9", term_type="xterm", term_size=(100, 30)
        )
        assert "30 100" in await asyncio.wait_for(process.stdout.readuntil("30 100"), 60)
        process.change_terminal_size(70, 20)
        process.stdin.write("\n")
        assert "20 70" in await asyncio.wait_for(process.stdout.readuntil("20 70"), 60)
        result = await asyncio.wait_for(process.wait(), 60)
        assert result.exit_status == 9


def test_profile_from_the_login_name(facility):
    s = facility.session("alice")
    stop_server(s, facility.url, "alice")
    token = facility.token("alice")
    # the demo's quota lets alice run up to 2 cores: "large" (4) is refused, "default" runs
    r = facility.ssh(token, "alice+default", "echo on default")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"on default\n"
    assert b"with profile 'default'" in r.stderr
    assert facility.server("alice")["user_options"]["profile"] == "default"


def test_a_profile_the_user_may_not_use_is_refused_with_the_reason(facility):
    token = facility.token("bob")
    r = facility.ssh(token, "bob+large", "echo never")
    assert r.returncode == 1
    assert r.stdout == b""
    assert b"af-ssh: Your server could not be started" in r.stderr
    assert b"large" in r.stderr
    assert facility.server("bob") is None


def test_a_token_that_may_not_start_the_server_says_how_to_start_it(facility):
    assert facility.server("bob") is None
    scopes = ["custom:jhub-af:ssh!user=bob", "access:servers!user=bob", "read:servers!user=bob"]
    token = facility.token("bob", scopes=scopes)
    r = facility.ssh(token, "bob", "echo never", source="127.0.0.20")
    assert r.returncode == 1
    assert b"this token may not start it" in r.stderr
    assert f"{facility.url}/hub/home".encode() in r.stderr
    assert facility.server("bob") is None


# -- bad input: refused, the service stays up, nothing half-written


def _refused(r) -> bool:
    return r.returncode == 255 and b"Permission denied" in r.stderr and r.stdout == b""


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("wrong token", "invalid, expired or revoked token"),
        ("not a token", "the password is not a hub token"),
        ("another user's token", "the token belongs to another user"),
        ("an admin's token", "the token belongs to another user"),
        ("expired token", "invalid, expired or revoked token"),
        ("revoked token", "invalid, expired or revoked token"),
        ("SSH token without access:servers", "needs access:servers"),
    ],
)
def test_bad_passwords_are_refused_and_logged(facility, alice_running, case, reason):
    s = facility.session("alice")
    if case == "wrong token":
        password = secrets.token_hex(16)
    elif case == "not a token":
        password = "demo"
    elif case == "another user's token":
        password = facility.token("bob")
    elif case == "an admin's token":
        password = facility.token("admin")
    elif case == "expired token":
        password = facility.token("alice", expires_in=1)
        time.sleep(2.5)
    elif case == "revoked token":
        r = s.post(f"{facility.url}/hub/api/users/alice/tokens", json={}, timeout=10)
        password = r.json()["token"]
        facility.tokens.append(password)
        s.delete(f"{facility.url}/hub/api/users/alice/tokens/{r.json()['id']}", timeout=10)
    else:
        scopes = ["custom:jhub-af:ssh!user=alice", "read:users:name!user=alice"]
        password = facility.token("alice", scopes=scopes)
    before = len(facility.log())
    source = f"127.0.0.{30 + len(facility.tokens)}"  # never lock the tests' own source out
    r = facility.ssh(password, "alice", "touch pwned", source=source)
    assert _refused(r), r
    assert not (alice_running / "pwned").exists()
    new = facility.log()[before:]
    assert f"SSH login refused: 'alice' from {source}: " in new
    assert reason in new
    # the service keeps serving
    good = facility.ssh(facility.token("alice"), "alice", "echo still here")
    assert good.stdout == b"still here\n"


@pytest.mark.parametrize(
    ("name", "refusal"),
    [
        ("alice;id", "not a hub user name"),
        ("../alice", "not a hub user name"),
        ("Alice", "not a hub user name"),
        ("al ice", "not a hub user name"),
        ("ålice", "not a hub user name"),
        ("alice%2f", "not a hub user name"),
        ("alice+../x", "not a profile name"),
        ("a" * 200, "not a hub user name"),
        ("-oProxy", "not a hub user name"),
    ],
)
async def test_odd_login_names_are_refused_before_the_hub_is_asked(
    facility, alice_token, name, refusal
):
    before = len(facility.log())
    with pytest.raises(asyncssh.PermissionDenied):
        await ssh_connect(facility.ssh_port, name, alice_token, source="127.0.0.50")
    new = facility.log()[before:]
    assert "SSH login refused: " in new
    assert refusal in new
    assert "GET /hub/api/user " not in new  # the token never went to the hub
    assert alice_token not in new


async def test_a_disconnect_mid_upload_leaves_no_partial_file(facility, alice_token, alice_running):
    old = b"the complete result of yesterday"
    (alice_running / "result.bin").write_bytes(old)
    conn = await ssh_connect(facility.ssh_port, "alice", alice_token)
    sftp = await conn.start_sftp_client()
    for name in ("result.bin", "fresh.bin"):
        f = await sftp.open(name, "wb")
        for _ in range(8):
            await f.write(secrets.token_bytes(512 * 1024))
    conn.abort()  # no close, no goodbye
    deadline = time.monotonic() + 60
    while [p for p in alice_running.iterdir() if ".part-" in p.name]:
        assert time.monotonic() < deadline, list(alice_running.iterdir())
        await asyncio.sleep(0.2)
    assert (alice_running / "result.bin").read_bytes() == old
    assert not (alice_running / "fresh.bin").exists()


def test_sftp_paths_outside_the_home_are_refused(facility, alice_token, alice_running, tmp_path):
    outside = alice_running.parent / "outside.txt"
    outside.write_text("not for sftp")
    (alice_running / "link-out").unlink(missing_ok=True)
    os.symlink(alice_running.parent, alice_running / "link-out")
    (tmp_path / "x.txt").write_text("x")
    commands = (
        b"put x.txt ../escape.txt\n"
        b"get ../outside.txt got1.txt\n"
        b"get /etc/hostname got2.txt\n"
        b"get link-out/outside.txt got3.txt\n"
        b"rename link-out/outside.txt moved.txt\n"
        b"rm ../outside.txt\n"
        b"put x.txt inside.txt\n"
    )
    r = openssh(
        "sftp", facility.ssh_port, alice_token, ["alice@127.0.0.1"], input=commands, cwd=tmp_path
    )
    home = str(alice_running).encode()
    assert r.returncode == 0, r.stderr
    for refusal in (
        b'dest open "' + home + b'/../escape.txt": Permission denied',
        b'File "' + home + b'/../outside.txt" not found.',
        b'File "/etc/hostname" not found.',
        b'File "' + home + b'/link-out/outside.txt" not found.',
        b'remote rename "' + home + b'/link-out/outside.txt" to "' + home + b'/moved.txt": '
        b"Permission denied",
        b"remote delete " + home + b"/../outside.txt: Permission denied",
    ):
        assert refusal in r.stderr, r.stderr
    assert "jhub_af sftp: refused a path outside the home" in facility.log()
    assert not (alice_running.parent / "escape.txt").exists()
    assert outside.read_text() == "not for sftp"
    assert not any((tmp_path / f"got{i}.txt").exists() for i in (1, 2, 3))
    assert not (alice_running / "moved.txt").exists()
    assert (alice_running / "inside.txt").read_text() == "x"


def test_logins_and_failures_are_logged_and_no_token_ever_is(facility):
    log = facility.log()
    assert "SSH login: 'alice' from 127.0.0.1" in log
    assert "SSH login: 'alice+default' from 127.0.0.1, profile default" in log
    assert "SSH login refused: " in log
    leaked = [t[:6] for t in facility.tokens if t in log]
    assert leaked == []
    assert facility.process.alive()
