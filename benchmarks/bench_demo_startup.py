"""From launch to a logged-in JupyterLab: `jhub-af demo` vs a plain `jupyterhub`.

Both sides use JupyterHub's SimpleLocalProcessSpawner running the same
jupyterhub-singleuser; the anchor logs in with JupyterHub's DummyAuthenticator.
One sample is: start the command, wait for the hub API, log alice in over HTTP,
start her server through the REST API and load /user/alice/lab (200, JupyterLab).
The runs alternate between the two sides so that machine noise hits both.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from harness import local_spawner_config, login, spawn_server, start_demo, start_hub

SPEC = {
    "what": "launch to logged-in JupyterLab",
    "anchor": "plain jupyterhub, same spawner",
    "unit": "s",
    "target": None,
}

ANCHOR_LOGIN = """
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
"""


def _to_lab(start, password: str, workdir: Path) -> float:
    t0 = time.perf_counter()
    hub = start(workdir)
    try:
        s = login(hub.url, "alice", password)
        r = spawn_server(s, hub.url, "alice")
        if r.status_code != 200 or "<title>JupyterLab</title>" not in r.text:
            raise RuntimeError(f"no JupyterLab at {r.url}: HTTP {r.status_code}")
        return time.perf_counter() - t0
    finally:
        hub.stop()


def run(repeats: int) -> tuple[list[float], list[float]]:
    ours, anchor = [], []
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        root = Path(tmp)
        for i in range(repeats):
            ours.append(_to_lab(start_demo, "demo", root / f"demo{i}"))

            def plain(workdir: Path):
                home = str(workdir / "home" / "{username}")
                return start_hub(workdir, local_spawner_config(home) + ANCHOR_LOGIN)

            anchor.append(_to_lab(plain, "any", root / f"plain{i}"))
            print(f"   run {i + 1}: jhub_af {ours[-1]:.2f}s, plain {anchor[-1]:.2f}s", flush=True)
    return ours, anchor
