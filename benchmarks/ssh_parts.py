"""What the SSH benchmarks share: the demo facility with af-ssh, and Debian's OpenSSH
sshd on a loopback port with a throwaway host key and a throwaway client key.

Started once per ``run.py`` process (the ``bench_ssh*`` modules share it) and
stopped at exit. sshd logs in a throwaway unix user (``afbench``, created for the
run with a home holding nothing but Debian's skeleton files, removed at exit) with
a throwaway key; af-ssh logs in the demo's alice, whose home is as bare. So both
shells start with the same kind of (empty) environment, and neither side pays for
the machine owner's own shell start-up files.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncssh
from harness import free_port, login, start_demo
from harness.ssh import HOST_KEY_UNCHECKED, hub_token, openssh, wait_for_port
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

SFTP_SERVER = "/usr/lib/openssh/sftp-server"
ANCHOR_USER = "afbench"
# the OpenSSH client against sshd: the throwaway key only
ANCHOR_OPTIONS = [*HOST_KEY_UNCHECKED, "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]
SSHD_CONFIG = """\
ListenAddress 127.0.0.1
Port {port}
HostKey {root}/ssh_host_ed25519_key
PidFile {root}/sshd.pid
AuthorizedKeysFile {root}/authorized_keys
PermitRootLogin no
AllowUsers {user}
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp {sftp_server}
"""


@dataclass
class Parts:
    root: Path
    af_port: int
    token: str
    hub_url: str
    home: Path  # alice's home (af-ssh side)
    sshd_port: int
    key_file: Path
    anchor_dir: Path  # a directory of the same kind for the OpenSSH side


_parts: Parts | None = None


def parts() -> Parts:
    global _parts
    if _parts is None:
        _parts = _start()
    return _parts


def _start() -> Parts:
    root = Path(tempfile.mkdtemp(prefix="bench-ssh-"))
    root.chmod(0o755)  # the anchor user reaches its home and key through it
    atexit.register(shutil.rmtree, root, ignore_errors=True)  # runs last: atexit is LIFO
    af_port = free_port()
    hub = start_demo(root / "demo", extra_args=["--ssh-port", str(af_port)])
    atexit.register(hub.stop)
    wait_for_port(af_port, 60, hub.process.alive, hub.process.log_tail)
    token = hub_token(login(hub.url, "alice", "demo"), hub.url, "alice")
    r = openssh("ssh", af_port, token, ["alice@127.0.0.1", "true"])  # starts alice's server
    if r.returncode != 0:
        raise RuntimeError(f"af-ssh did not work: {r.stderr.decode()}")
    home = root / "demo" / "data" / "home" / "alice"

    sshd_port = free_port()
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "ssh_host_ed25519_key")],
        check=True,
    )
    key_file = root / "client_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_file)], check=True)
    shutil.copy(f"{key_file}.pub", root / "authorized_keys")
    (root / "authorized_keys").chmod(0o644)
    anchor_home = root / "anchor-home"
    if _ensure_user(ANCHOR_USER, anchor_home):
        atexit.register(subprocess.run, ["userdel", "-f", ANCHOR_USER], check=False)
    (root / "sshd_config").write_text(
        SSHD_CONFIG.format(port=sshd_port, root=root, sftp_server=SFTP_SERVER, user=ANCHOR_USER)
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    sshd = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-e", "-f", str(root / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=(root / "sshd.log").open("wb"),
        start_new_session=True,
    )
    atexit.register(_stop, sshd)
    log = root / "sshd.log"
    wait_for_port(sshd_port, 30, lambda: sshd.poll() is None, log.read_text)
    return Parts(root, af_port, token, hub.url, home, sshd_port, key_file, anchor_home)


def _ensure_user(name: str, home: Path) -> bool:
    """The throwaway login user of sshd, with ``home``; True if created here."""
    try:
        pwd.getpwnam(name)
        created = False
    except KeyError:
        subprocess.run(["useradd", "-m", "-d", str(home), "-s", "/bin/bash", name], check=True)
        created = True
    # a password-less account is "locked" for sshd without PAM: make it key-only instead
    subprocess.run(["usermod", "-p", "*", "-d", str(home), name], check=True)
    home.mkdir(exist_ok=True)
    shutil.chown(home, name, name)
    return created


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def sftp(side: str, commands: str) -> float:
    """Seconds for one OpenSSH ``sftp`` session running ``commands`` on that side."""
    p = parts()
    t0 = time.perf_counter()
    if side == "af-ssh":
        r = openssh("sftp", p.af_port, p.token, ["alice@127.0.0.1"], input=commands.encode())
    else:
        r = subprocess.run(
            [
                "sftp",
                "-P",
                str(p.sshd_port),
                "-i",
                str(p.key_file),
                *ANCHOR_OPTIONS,
                f"{ANCHOR_USER}@127.0.0.1",
            ],
            input=commands.encode(),
            capture_output=True,
            timeout=600,
        )
    elapsed = time.perf_counter() - t0
    if r.returncode != 0 or b"Permission denied" in r.stderr:
        raise RuntimeError(f"sftp on {side} failed: {r.stderr.decode()[-500:]}")
    return elapsed


async def _connect(side: str):
    p = parts()
    common = {"known_hosts": None, "agent_path": None, "encoding": None}
    if side == "af-ssh":
        return await asyncssh.connect(
            "127.0.0.1", p.af_port, username="alice", password=p.token, client_keys=None, **common
        )
    return await asyncssh.connect(
        "127.0.0.1", p.sshd_port, username=ANCHOR_USER, client_keys=[str(p.key_file)], **common
    )


async def login_to_prompt(side: str) -> float:
    """Seconds from connecting to the first command's output in an interactive shell."""
    t0 = time.perf_counter()
    conn = await _connect(side)
    try:
        process = await conn.create_process(term_type="xterm", term_size=(120, 40))
        process.stdin.write(b"echo READY$((6*7))\n")
        await asyncio.wait_for(process.stdout.readuntil(b"READY42"), 120)
        elapsed = time.perf_counter() - t0
        process.close()
    finally:
        conn.close()
    return elapsed


async def cat_through_pty(side: str, path: Path) -> float:
    """Seconds to ``cat`` the text file ``path`` in an interactive shell (pty)."""
    conn = await _connect(side)
    try:
        process = await conn.create_process(term_type="xterm", term_size=(200, 50))
        process.stdin.write(b"stty -echo; echo GO$((1+1))\n")
        await asyncio.wait_for(process.stdout.readuntil(b"GO2"), 120)
        t0 = time.perf_counter()
        process.stdin.write(f"cat {path}; echo DONE$((6*7))\n".encode())
        await asyncio.wait_for(_read_until(process.stdout, b"DONE42"), 600)
        elapsed = time.perf_counter() - t0
        process.close()
    finally:
        conn.close()
    return elapsed


async def _read_until(stdout, marker: bytes) -> None:
    """Read (and drop) output until ``marker``; readuntil() would buffer it all."""
    tail = b""
    while marker not in tail:
        data = await stdout.read(1 << 16)
        if not data:
            raise RuntimeError("the shell's output ended before the marker")
        tail = (tail + data)[-256:]


async def cat_through_bare_terminal(path: Path) -> float:
    """The floor of any terminal bridge: the same ``cat`` straight over alice's
    Jupyter terminal websocket (REST API + websocket, no SSH)."""
    import requests

    p = parts()
    headers = {"Authorization": f"token {p.token}"}
    base = f"{p.hub_url}/user/alice"
    name = requests.post(f"{base}/api/terminals", headers=headers, timeout=30).json()["name"]
    url = f"{base}/terminals/websocket/{name}".replace("http", "ws", 1)
    ws = await websocket_connect(HTTPRequest(url, headers=headers), max_message_size=1 << 26)
    try:
        await ws.write_message(json.dumps(["set_size", 50, 200]))
        await ws.write_message(json.dumps(["stdin", "stty -echo; echo GO$((1+1))\r"]))
        await _read_terminal_until(ws, "GO2")
        t0 = time.perf_counter()
        await ws.write_message(json.dumps(["stdin", f"cat {path}; echo DONE$((6*7))\r"]))
        await _read_terminal_until(ws, "DONE42")
        return time.perf_counter() - t0
    finally:
        ws.close()
        requests.delete(f"{base}/api/terminals/{name}", headers=headers, timeout=30)


async def _read_terminal_until(ws, marker: str) -> None:
    tail = ""
    while marker not in tail:
        raw = await asyncio.wait_for(ws.read_message(), 600)
        if raw is None:
            raise RuntimeError("the terminal websocket closed")
        message = json.loads(raw)
        if message[0] == "stdout":
            tail = (tail + message[1])[-200:]


def text_file(directory: Path, name: str, megabytes: int) -> Path:
    """A file of printable text (lines of base64), as a PTY passes it unchanged."""
    path = directory / name
    if not path.exists() or path.stat().st_size != megabytes * 1024 * 1024:
        import base64

        line = base64.b64encode(os.urandom(57)) + b"\n"  # 77 bytes a line
        data = (line * (megabytes * 1024 * 1024 // len(line) + 1))[: megabytes * 1024 * 1024]
        path.write_bytes(data)
    return path


def binary_file(directory: Path, name: str, megabytes: int) -> Path:
    path = directory / name
    if not path.exists() or path.stat().st_size != megabytes * 1024 * 1024:
        with path.open("wb") as f:
            for _ in range(megabytes):
                f.write(os.urandom(1024 * 1024))
    return path
