"""The hub's side of the set-up: run dask-gateway-server as a hub-managed service.

``gateway_hub_config(c, ...)`` writes the gateway's own config file (quota backend,
JupyterHub authentication, the proxy under ``/services/dask-gateway``), adds the
service ``dask-gateway`` (one hub, one proxy: the hub's proxy forwards
``/services/dask-gateway/`` to the gateway's HTTP proxy), and sets the spawner's
environment so that ``dask_gateway.Gateway()`` in a notebook needs no arguments. It
returns the roles to merge into ``c.JupyterHub.load_roles``, each as narrow as its
holder needs:

- ``dask-gateway`` (the service's own token): reserve in af-accounting, nothing else;
- ``user``: may use the gateway (``access:services!service=dask-gateway``);
- ``server`` (the token in each notebook's environment): may use the gateway, and
  shows the gateway the user's groups (``read:users:groups!user``) for the options.
"""

from __future__ import annotations

import base64
import secrets
import sys
from pathlib import Path

from jhub_af.accounting import RESERVE_SCOPE

SERVICE = "dask-gateway"
PREFIX = f"/services/{SERVICE}"
ACCESS = f"access:services!service={SERVICE}"
# backend name -> (the gateway's backend class, named by its module, and its cluster
# config class)
BACKENDS = {
    "local": ("jhub_af.gateway.local.QuotaLocalBackend", "LocalClusterConfig"),
    "slurm": ("jhub_af.gateway.slurm.QuotaSlurmBackend", "SlurmClusterConfig"),
}


def _secret(path: Path, make) -> str:
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(make())
    return path.read_text().strip()


def gateway_config_text(
    *,
    data_dir: Path,
    http_port: int,
    tcp_port: int,
    api_port: int,
    accounting_url: str,
    backend_settings: dict | None = None,
    options: dict | None = None,
    backend: str = "local",
    cluster_settings: dict | None = None,
    job_bin: str | Path | None = None,
) -> str:
    """The gateway's config file (Python, as ``dask-gateway-server -f`` reads it).

    ``backend``: ``"local"`` (processes of the gateway's user) or ``"slurm"`` (jobs of
    each user); ``cluster_settings``: more settings of its cluster config class
    (``LocalClusterConfig`` or ``SlurmClusterConfig``, e.g. ``scheduler_memory``);
    ``job_bin``: the ``bin`` directory of the Python environment the schedulers and
    workers run in (default: the hub's own; Slurm jobs need one every user can run).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, not {backend!r}")
    backend_path, config_class = BACKENDS[backend]
    backend_class = backend_path.rsplit(".", 1)[1]
    bin_dir = Path(job_bin or Path(sys.executable).parent)
    cluster = {
        "scheduler_cmd": [str(bin_dir / "dask"), "scheduler"],
        "worker_cmd": [str(bin_dir / "dask"), "worker"],
        "cluster_max_workers": 50,
        **(cluster_settings or {}),
    }
    cluster_lines = "".join(f"c.{config_class}.{k} = {v!r}\n" for k, v in cluster.items())
    launcher = ""
    if backend == "slurm":
        launcher = (
            f"c.{backend_class}.dask_gateway_jobqueue_launcher = "
            f"{str(bin_dir / 'dask-gateway-jobqueue-launcher')!r}\n"
        )
    return f"""# written by jhub_af.gateway.gateway_hub_config; edit the hub config instead
import os
from jhub_af.gateway.options import group_options
c = get_config()  # noqa
c.DaskGateway.address = "127.0.0.1:{api_port}"
c.Proxy.address = "127.0.0.1:{http_port}"
c.Proxy.tcp_address = "127.0.0.1:{tcp_port}"
c.Proxy.prefix = {PREFIX!r}
c.DaskGateway.authenticator_class = "jhub_af.gateway.auth.HubAuthenticator"
c.JupyterHubAuthenticator.jupyterhub_service_name = {SERVICE!r}
c.DaskGateway.backend_class = {backend_path!r}
c.{backend_class}.db_url = {"sqlite:///" + str(data_dir / "dask-gateway.sqlite")!r}
c.{backend_class}.db_encrypt_keys = [open({str(data_dir / "encrypt-key")!r}).read().strip()]
c.{backend_class}.stop_clusters_on_shutdown = False
c.{backend_class}.record_file = {str(data_dir / "events.jsonl")!r}
c.{backend_class}.cluster_options = group_options({options or None!r})
{launcher}{cluster_lines}c.AccountingClient.url = {accounting_url!r}
# the service's own token (the hub gives it to the service); never written here
c.AccountingClient.api_token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
for _name, _value in {backend_settings or {}!r}.items():
    setattr(c.{backend_class}, _name, _value)
"""


def gateway_hub_config(
    c,
    *,
    data_dir: str | Path,
    http_port: int,
    tcp_port: int,
    api_port: int,
    public_url: str,
    backend_settings: dict | None = None,
    options: dict | None = None,
    stop_with_server: bool = False,
    backend: str = "local",
    cluster_settings: dict | None = None,
    job_bin: str | Path | None = None,
) -> list[dict]:
    """Configure the hub ``c`` to run the gateway behind its proxy; return its roles.

    ``public_url`` is the hub's public URL (``http://127.0.0.1:8000``); the gateway's
    API is then ``{public_url}/services/dask-gateway``, and schedulers are reached at
    ``gateway://127.0.0.1:{tcp_port}``. ``backend_settings``: more settings of the
    backend (``QuotaLocalBackend`` or ``QuotaSlurmBackend``); ``options``: the options
    handler's per-group bounds (:func:`jhub_af.gateway.options.group_options`);
    ``stop_with_server``: stop a user's clusters when their notebook server stops
    (the service token then also gets ``read:servers`` and ``read:users:name``). Call it after
    ``accounting_hub_config`` (it reads ``c.AccountingClient.url``). ``backend``,
    ``cluster_settings``, ``job_bin``: as in :func:`gateway_config_text` (``"slurm"``
    runs clusters as Slurm jobs of each user).
    """
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    _secret(data / "encrypt-key", lambda: base64.b64encode(secrets.token_bytes(32)).decode())
    config_file = data / "dask_gateway_config.py"
    config_file.write_text(
        gateway_config_text(
            data_dir=data,
            http_port=http_port,
            tcp_port=tcp_port,
            api_port=api_port,
            accounting_url=c.AccountingClient.url,
            backend_settings={**(backend_settings or {}), "stop_with_server": stop_with_server},
            options=options,
            backend=backend,
            cluster_settings=cluster_settings,
            job_bin=job_bin,
        )
    )
    bin_dir = Path(sys.executable).parent
    services = [s for s in c.JupyterHub.get("services", []) if s["name"] != SERVICE]
    services.append(
        {
            "name": SERVICE,
            "url": f"http://127.0.0.1:{http_port}",
            "command": [str(bin_dir / "dask-gateway-server"), "-f", str(config_file)],
            "cwd": str(data),
        }
    )
    c.JupyterHub.services = services
    address = f"{public_url.rstrip('/')}{PREFIX}"
    c.Spawner.environment = {
        **c.Spawner.get("environment", {}),
        "DASK_GATEWAY__ADDRESS": address,
        "DASK_GATEWAY__PUBLIC_ADDRESS": address,
        "DASK_GATEWAY__PROXY_ADDRESS": f"gateway://127.0.0.1:{tcp_port}",
        "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
    }
    return [
        {
            "name": SERVICE,
            "services": [SERVICE],
            "scopes": [RESERVE_SCOPE, "access:services!service=af-accounting"]
            + (["read:servers", "read:users:name"] if stop_with_server else []),
        },
        {"name": "user", "scopes": ["self", ACCESS]},
        {
            "name": "server",
            "scopes": [
                "users:activity!user",
                "access:servers!server",
                ACCESS,
                "read:users:groups!user",
            ],
        },
    ]
