"""A real JupyterHub + configurable-http-proxy on free loopback ports, and a user's view of it."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from .net import free_port, wait_for_http
from .processes import ManagedProcess

REPO = Path(__file__).resolve().parents[2]
PROXY_COMMAND = str(REPO / "node_modules" / ".bin" / "configurable-http-proxy")
VENV_BIN = Path(sys.executable).parent


@dataclass
class RunningHub:
    """A hub reachable at ``url`` (the proxy), run by ``process``, with files in ``workdir``."""

    url: str
    process: ManagedProcess
    workdir: Path

    def stop(self) -> int | None:
        return self.process.stop()


def hub_config(workdir: Path, port: int) -> str:
    """The base of every test hub's config: loopback ports, state in ``workdir``."""
    return f"""
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:{port}/"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{free_port()}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
c.ConfigurableHTTPProxy.command = [{PROXY_COMMAND!r}]
c.JupyterHub.db_url = "sqlite:///{workdir / "jupyterhub.sqlite"}"
c.JupyterHub.cookie_secret_file = {str(workdir / "cookie_secret")!r}
c.ConfigurableHTTPProxy.pid_file = {str(workdir / "proxy.pid")!r}
"""


def local_spawner_config(home_template: str) -> str:
    """JupyterHub's own SimpleLocalProcessSpawner running JupyterLab, as root if need be."""
    return f"""
import os
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {home_template!r}
c.Spawner.ip = "127.0.0.1"
c.Spawner.default_url = "/lab"
c.Spawner.cmd = [{str(VENV_BIN / "jupyterhub-singleuser")!r}]
c.Spawner.environment = {{"PATH": {f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin"!r}}}
if os.geteuid() == 0:
    c.Spawner.args = ["--allow-root"]
"""


def start_hub(
    workdir: Path,
    config: str,
    timeout: float = 60,
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
) -> RunningHub:
    """Start ``jupyterhub`` with the base config plus ``config``; return once it answers.

    ``port``: the public (proxy) port, a free one if None (pick it in advance when
    the config must name the hub's URL, e.g. an OAuth callback). ``env``: variables
    added to this process's environment for the hub (e.g. JUPYTERHUB_CRYPT_KEY)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    config_file = workdir / "jupyterhub_config.py"
    config_file.write_text(hub_config(workdir, port) + config)
    process = ManagedProcess(
        [sys.executable, "-m", "jupyterhub", "-f", str(config_file)],
        log=workdir / "hub.log",
        cwd=workdir,
        env={**os.environ, **env} if env else None,
    )
    return hub_answering(process, port, workdir, timeout)


def hub_answering(process: ManagedProcess, port: int, workdir: Path, timeout: float) -> RunningHub:
    """The hub that ``process`` runs, once ``/hub/api/`` answers on ``port``.

    Stops ``process`` and re-raises if it dies or does not answer within ``timeout``
    (the error carries its log tail). Called by ``start_hub`` and ``start_demo``."""
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/hub/api/", timeout, process.alive, process.log_tail)
    except Exception:
        process.stop()
        raise
    return RunningHub(url=url, process=process, workdir=workdir)


def login_response(url: str, username: str, password: str):
    """POST the hub's login form; return (session, response) without following redirects."""
    s = requests.Session()
    s.get(f"{url}/hub/login", timeout=10).raise_for_status()
    xsrf = s.cookies.get("_xsrf", path="/hub/")
    r = s.post(
        f"{url}/hub/login",
        data={"username": username, "password": password, "_xsrf": xsrf},
        allow_redirects=False,
        timeout=30,
    )
    return s, r


def login(url: str, username: str, password: str) -> requests.Session:
    """A session logged in as ``username`` (fails the test if the hub refuses)."""
    s, r = login_response(url, username, password)
    if r.status_code != 302:
        raise AssertionError(f"login of {username} refused: HTTP {r.status_code}\n{r.text[:500]}")
    s.headers["X-XSRFToken"] = s.cookies.get("_xsrf", path="/hub/")
    return s


def user_token(s: requests.Session, url: str, username: str) -> str:
    """A new API token of ``username`` with all their scopes, made through their logged-in
    session ``s`` (raises on an HTTP error)."""
    r = s.post(f"{url}/hub/api/users/{username}/tokens", json={"note": "test"}, timeout=30)
    r.raise_for_status()
    return r.json()["token"]


def notebooks_of(user: str, hub_port: int) -> list[psutil.Process]:
    """Every jupyterhub-singleuser process of ``user`` whose hub API is on ``hub_port``
    (other tests may run notebooks for a user of the same name at the same time)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any("jupyterhub-singleuser" in part for part in p.info["cmdline"] or []):
                env = p.environ()
                if env.get("JUPYTERHUB_USER") == user and env.get(
                    "JUPYTERHUB_API_URL", ""
                ).startswith(f"http://127.0.0.1:{hub_port}/"):
                    found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def spawn_server(s: requests.Session, url: str, username: str, timeout: float = 120):
    """Start the user's default server through the REST API, wait until ready,
    and return the response of ``/user/NAME/lab`` (redirects and hub OAuth followed)."""
    r = s.post(f"{url}/hub/api/users/{username}/server", json={}, timeout=30)
    if r.status_code not in (201, 202, 400):
        raise AssertionError(f"spawn of {username}: HTTP {r.status_code} {r.text[:500]}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = s.get(f"{url}/hub/api/users/{username}", timeout=10).json()
        server = model.get("servers", {}).get("")
        if server and server.get("ready"):
            return s.get(f"{url}/user/{username}/lab", timeout=60)
        if not server and not model.get("pending"):
            raise AssertionError(f"server of {username} is gone: {model}")
        time.sleep(0.25)
    raise TimeoutError(f"server of {username} not ready within {timeout}s")


def stop_server(s: requests.Session, url: str, username: str, timeout: float = 60) -> None:
    """Stop the user's default server and wait until the hub says it is gone."""
    r = s.delete(f"{url}/hub/api/users/{username}/server", timeout=30)
    if r.status_code not in (202, 204):
        raise AssertionError(f"stop of {username}: HTTP {r.status_code} {r.text[:500]}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = s.get(f"{url}/hub/api/users/{username}", timeout=10).json()
        if not model.get("servers") and not model.get("pending"):
            return
        time.sleep(0.25)
    raise TimeoutError(f"server of {username} did not stop within {timeout}s")
