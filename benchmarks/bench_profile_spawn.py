"""50 users start and stop a server through the REST API: ProfileSpawner vs JupyterHub's own.

jhub_af's side runs ProfileSpawner with a local default profile (backed by
SimpleLocalProcessSpawner); the anchor runs SimpleLocalProcessSpawner itself.
Both hubs have the same configuration otherwise (same authenticator, same
jupyterhub-singleuser, same timeouts), are started once in the same run, and
are measured in alternating rounds so that machine noise hits both. One sample:
an admin token starts the 50 users' servers (``POST /users/NAME/server``, the
JupyterHub 6 body), waits until every one is ready, stops them all, and waits
until every one is gone.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jupyterhub
import requests
from harness import local_spawner_config, start_hub

from jhub_af.hub import spawn_body

USERS = [f"bench{i:02d}" for i in range(50)]

SPEC = {
    "what": "50 users spawn + stop through the REST API",
    "anchor": "JupyterHub's SimpleLocalProcessSpawner, same hub config",
    "unit": "s",
    "target": "<= 1.10",
}

PROFILES = """
c.JupyterHub.spawner_class = "af-profiles"
c.ProfileSpawner.profiles = [
    {"slug": "default", "display_name": "Default", "backend": "local",
     "resources": {"cores": 1, "memory": "1G"}},
    {"slug": "large", "display_name": "Large", "backend": "local",
     "resources": {"cores": 4, "memory": "8G"}, "groups": ["/atlas/users"]},
]
c.ProfileSpawner.backend_classes = {"local": "jupyterhub.spawner.SimpleLocalProcessSpawner"}
"""


def common(token: str) -> str:
    return f"""
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.services = [{{"name": "bench", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "bench", "scopes": ["admin:users", "admin:servers"],
                            "services": ["bench"]}}]
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0, "slow_stop_timeout": 0}}
c.Spawner.start_timeout = 600
c.Spawner.http_timeout = 300
c.Spawner.default_url = "/api"
c.JupyterHub.concurrent_spawn_limit = 0
"""


def _wait(api: requests.Session, url: str, done, what: str, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        users = api.get(f"{url}/hub/api/users", params={"limit": 200}, timeout=30).json()
        mine = [u for u in users if u["name"] in USERS]
        if len(mine) == len(USERS) and all(done(u) for u in mine):
            return
        time.sleep(0.2)
    raise TimeoutError(f"not all servers {what} within {timeout}s")


def _ready(user: dict) -> bool:
    server = user.get("servers", {}).get("")
    return bool(server and server.get("ready"))


def _gone(user: dict) -> bool:
    return not user.get("servers") and not user.get("pending")


def one_round(url: str, token: str) -> float:
    api = requests.Session()
    api.headers["Authorization"] = f"token {token}"
    body = spawn_body({}, jupyterhub.__version__)
    with ThreadPoolExecutor(8) as pool:
        t0 = time.perf_counter()
        for r in pool.map(
            lambda n: api.post(f"{url}/hub/api/users/{n}/server", json=body, timeout=120), USERS
        ):
            if r.status_code not in (201, 202):
                raise RuntimeError(f"spawn refused: HTTP {r.status_code} {r.text[:300]}")
        _wait(api, url, _ready, "ready")
        for r in pool.map(
            lambda n: api.delete(f"{url}/hub/api/users/{n}/server", timeout=120), USERS
        ):
            if r.status_code not in (202, 204):
                raise RuntimeError(f"stop refused: HTTP {r.status_code} {r.text[:300]}")
        _wait(api, url, _gone, "stopped")
        return time.perf_counter() - t0


def _start(workdir: Path, token: str, extra: str):
    home = str(workdir / "home" / "{username}")
    hub = start_hub(workdir, local_spawner_config(home) + common(token) + extra)
    api = requests.Session()
    api.headers["Authorization"] = f"token {token}"
    r = api.post(f"{hub.url}/hub/api/users", json={"usernames": USERS}, timeout=60)
    if r.status_code not in (201, 409):
        hub.stop()
        raise RuntimeError(f"cannot create the users: HTTP {r.status_code} {r.text[:300]}")
    return hub


def run(repeats: int) -> tuple[list[float], list[float]]:
    ours, anchor = [], []
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        profile_hub = _start(Path(tmp) / "profiles", token, PROFILES)
        plain_hub = _start(Path(tmp) / "plain", token, "")
        try:
            for i in range(repeats):
                # alternate which side goes first
                sides = [("ours", profile_hub), ("anchor", plain_hub)]
                for side, hub in sides if i % 2 == 0 else reversed(sides):
                    (ours if side == "ours" else anchor).append(one_round(hub.url, token))
                print(
                    f"   run {i + 1}: ProfileSpawner {ours[-1]:.2f}s, "
                    f"SimpleLocalProcessSpawner {anchor[-1]:.2f}s",
                    flush=True,
                )
        finally:
            profile_hub.stop()
            plain_hub.stop()
    return ours, anchor
