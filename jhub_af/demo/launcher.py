"""`jhub-af demo`: check the machine, write the hub's config, run the hub, stop it cleanly."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from shutil import which

import jhub_af
from jhub_af.hub import private_dir

from .authenticator import DEMO_USERS
from .settings import DemoSettings

CONFIG_FILE = """\
# Written by `jhub-af demo` at every start: change the demo with its options
# (jhub-af demo --help), or copy this file and run `jupyterhub -f` on the copy.
from pathlib import Path

from jhub_af.demo import DemoSettings, configure

configure(c, DemoSettings.load(Path(__file__).with_name("demo-settings.json")))
"""

NODE_ADVICE = (
    "Install Node.js 20 or newer with npm (Debian: apt-get install nodejs npm), "
    "then run `make demo` again: it installs the proxy with `npm ci`."
)

STOP_TIMEOUT = 60


class DemoError(Exception):
    """A problem the person running the demo can fix; the message says how."""


def _port_problem(ip: str, port: int) -> OSError | None:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # the proxy listens with SO_REUSEADDR, so a port in TIME_WAIT is usable
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError as e:
            return e
    return None


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS's choice); the demo's internal ports."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_port(ip: str, port: int, flag: str = "--port") -> None:
    """Refuse, with what to do instead, when the demo cannot listen on ip:port
    (``flag`` is the option that sets this port)."""
    problem = _port_problem(ip, port)
    if problem is None:
        return
    if problem.errno == errno.EADDRINUSE:
        other = next(p for p in range(port + 1, 65536) if _port_problem(ip, p) is None)
        raise DemoError(
            f"Port {port} on {ip} is already in use by another program. Stop that "
            f"program, or pick another port: make demo DEMO_ARGS='{flag} {other}' "
            f"(or jhub-af demo {flag} {other})."
        )
    if problem.errno == errno.EACCES:
        raise DemoError(
            f"Listening on port {port} needs root. Pick a port above 1023: "
            f"make demo DEMO_ARGS='{flag} {8022 if flag == '--ssh-port' else 8000}'."
        )
    raise DemoError(
        f"Cannot listen on {ip}:{port} ({problem.strerror or problem}). "
        "Give --ip an address of this machine, such as 127.0.0.1."
    )


def find_proxy_command(search_roots: list[Path]) -> list[str]:
    """The configurable-http-proxy command: node_modules of a root first, then PATH.

    Raises DemoError (what to install) without Node.js or the proxy."""
    if which("node") is None:
        raise DemoError(f"Node.js (`node`) is not on PATH; the proxy needs it. {NODE_ADVICE}")
    for root in search_roots:
        candidate = root / "node_modules" / ".bin" / "configurable-http-proxy"
        if candidate.exists():
            return [str(candidate)]
    on_path = which("configurable-http-proxy")
    if on_path:
        return [on_path]
    raise DemoError(
        "configurable-http-proxy is not installed. Run `npm ci` in the jhub_af checkout "
        f"(`make demo` does this), or put it on PATH. {NODE_ADVICE}"
    )


def check_iam_options(issuer: str, client_id: str, client_secret_file: str) -> None:
    """Raise DemoError, saying which flag to fix, unless ``--login iam`` has an issuer URL,
    a client id and a readable, non-empty client secret file."""
    missing = [
        flag
        for flag, value in (
            ("--issuer", issuer),
            ("--client-id", client_id),
            ("--client-secret-file", client_secret_file),
        )
        if not value
    ]
    if missing:
        raise DemoError(
            f"--login iam needs {', '.join(missing)}: the IAM issuer URL and the OIDC "
            "client registered for this hub (redirect URI http://IP:PORT/hub/oauth_callback)."
        )
    if not issuer.startswith(("https://", "http://")):
        raise DemoError(f"--issuer {issuer!r} is not a URL; give the IAM's issuer URL.")
    try:
        secret = Path(client_secret_file).read_text().strip()
    except OSError as e:
        raise DemoError(
            f"Cannot read --client-secret-file {client_secret_file}: {e.strerror}."
        ) from e
    if not secret:
        raise DemoError(f"--client-secret-file {client_secret_file} is empty.")


def prepare(
    ip: str,
    port: int,
    data_dir: Path,
    login: str = "demo",
    issuer: str = "",
    client_id: str = "",
    client_secret_file: str = "",
    ssh_port: int = 8022,
) -> DemoSettings:
    """Check the machine and write the hub's config; start nothing.

    Returns the settings written to ``data_dir/demo-settings.json`` beside
    ``jupyterhub_config.py``; ``data_dir`` is made (or changed to) 0700. Raises
    DemoError (the message says what to do) for a busy or forbidden port, a missing
    Node.js or proxy, a bad data dir or IAM flags.
    """
    if login == "iam":
        check_iam_options(issuer, client_id, client_secret_file)
    check_port(ip, port)
    package_root = Path(jhub_af.__file__).resolve().parent.parent
    proxy_command = find_proxy_command([Path.cwd(), package_root])
    if data_dir.exists() and not data_dir.is_dir():
        raise DemoError(f"--data-dir {data_dir} is a file; give a directory for the demo's state.")
    if ssh_port == port:
        raise DemoError(f"--ssh-port {ssh_port} is the same as --port; pick another one.")
    check_port(ip, ssh_port, "--ssh-port")
    try:
        # 0700: tokens, keys and databases live in it; every notebook runs as this
        # same user, so the users' homes under it stay theirs to use
        private_dir(data_dir)
    except OSError as e:
        raise DemoError(f"Cannot create --data-dir {data_dir}: {e.strerror}.") from e
    settings = DemoSettings(
        ip=ip,
        port=port,
        data_dir=str(data_dir.resolve()),
        hub_port=free_loopback_port(),
        proxy_api_port=free_loopback_port(),
        proxy_command=proxy_command,
        login=login,
        issuer=issuer,
        client_id=client_id,
        client_secret_file=str(Path(client_secret_file).resolve()) if client_secret_file else "",
        ssh_port=ssh_port,
    )
    settings.dump(data_dir / "demo-settings.json")
    (data_dir / "jupyterhub_config.py").write_text(CONFIG_FILE)
    return settings


def _banner(settings: DemoSettings) -> str:
    if settings.login == "iam":
        who = f"  sign in with IAM at {settings.issuer}\n"
    else:
        who = f"  demo users: {', '.join(DEMO_USERS)}; the password is 'demo' for all of them\n"
    return (
        f"\njhub_af demo facility is up: open {settings.public_url}/\n"
        f"{who}"
        f"  ssh: ssh -p {settings.ssh_port} alice@{settings.ip} "
        f"(password: a token from {settings.public_url}/hub/token)\n"
        f"  state in {settings.data_dir}\n"
        "  press Ctrl-C to stop it and every notebook it started\n"
    )


def _hub_answers(settings: DemoSettings) -> bool:
    try:
        url = f"{settings.public_url}/hub/api/"
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 (our own http URL)
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen) -> int:
    """One SIGTERM to the hub (it stops notebooks and proxy), then clear its group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"The hub did not stop within {STOP_TIMEOUT}s; killing it.", file=sys.stderr)
    _clear_group(proc)
    return proc.wait()


def _clear_group(proc: subprocess.Popen) -> None:
    """Stop anything left in the hub's process group (the proxy, if the hub died)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL if proc.poll() is None else signal.SIGTERM)


def run_demo(ip: str, port: int, data_dir: Path, **login_options) -> int:
    """Run the demo facility until Ctrl-C or SIGTERM; return the hub's exit status.

    ``login_options`` (login, issuer, client_id, client_secret_file) choose the login;
    ``ssh_port`` may be among them too. Raises DemoError from :func:`prepare`.
    Called by `jhub-af demo`.
    """
    settings = prepare(ip, port, data_dir, **login_options)
    config = Path(settings.data_dir) / "jupyterhub_config.py"
    print(f"Starting the jhub_af demo facility on {settings.public_url}/ ...", flush=True)
    # The hub gets its own process group, so a terminal's Ctrl-C reaches only
    # this process, which then stops the hub exactly once.
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(config)],
        cwd=settings.data_dir,
        start_new_session=True,
    )

    def _on_term(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _on_term)
    try:
        announced = False
        while proc.poll() is None:
            if not announced and _hub_answers(settings):
                print(_banner(settings), flush=True)
                announced = True
            time.sleep(0.5)
        _clear_group(proc)
        print(f"The hub exited with status {proc.returncode}.", file=sys.stderr)
        return proc.returncode or 1
    except KeyboardInterrupt:
        print("\nStopping the jhub_af demo facility ...", flush=True)
        _stop(proc)
        print("Stopped.", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
