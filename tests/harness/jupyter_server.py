"""A real ``jupyter server`` on a free loopback port, as a user's server runs the panel's
handlers (jhub_af.lab enabled as installed), with no hub around it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .hub import VENV_BIN
from .net import free_port, wait_for_http
from .processes import ManagedProcess

# what a hub, the demo or a notebook's environment would have told the server
_NOT_INHERITED = ("JUPYTERHUB_", "DASK_", "BEARER_TOKEN", "JHUB_AF_")


@dataclass
class RunningJupyterServer:
    """A jupyter server reachable at ``url``, run by ``process``."""

    url: str
    process: ManagedProcess

    def stop(self) -> int | None:
        return self.process.stop()


def start_jupyter_server(
    work: Path,
    config: dict[str, str],
    root_dir: Path | None = None,
    timeout: float = 60,
    *,
    env: dict[str, str] | None = None,
) -> RunningJupyterServer:
    """Start ``jupyter server`` serving ``root_dir`` (``work`` if None); return once its
    ``/api`` answers.

    ``config`` maps file names in its config directory (``work/config``) to their text,
    e.g. ``{"jupyter_server_config.json": ...}``. Its runtime, data and Dask config
    directories are in ``work``; no ``JUPYTERHUB_*``, ``DASK_*``, ``BEARER_TOKEN*`` or
    ``JHUB_AF_*`` variable of this process reaches it, only those of ``env`` (what its
    hub would set: ``JUPYTERHUB_API_TOKEN``...). Stops it and re-raises if it dies
    or does not answer within ``timeout``. Called by the panel's API and Data tab tests."""
    config_dir = work / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    for name, text in config.items():
        (config_dir / name).write_text(text)
    server_env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)}
    server_env.update(
        JUPYTER_CONFIG_PATH=str(config_dir),
        JUPYTER_RUNTIME_DIR=str(work / "runtime"),
        JUPYTER_DATA_DIR=str(work / "data"),
        DASK_CONFIG=str(work / "dask"),
        **(env or {}),
    )
    port = free_port()
    process = ManagedProcess(
        [
            str(VENV_BIN / "jupyter-server"),
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--ServerApp.root_dir={root_dir or work}",
        ],
        log=work / "jupyter-server.log",
        env=server_env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/api", timeout, alive=process.alive, describe=process.log_tail)
    except Exception:
        process.stop()
        raise
    return RunningJupyterServer(url=url, process=process)
