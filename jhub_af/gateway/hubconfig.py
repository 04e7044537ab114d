"""The hub's side of the set-up: dask-gateway-server as a hub-managed service.

:func:`gateway_hub_config` is the entry point; :func:`gateway_config_text` the
gateway's own config file it writes; :func:`gateway_roles` the roles it returns.
"""

from __future__ import annotations

import base64
import secrets
import sys
from pathlib import Path

from jhub_af.accounting import RESERVE_SCOPE
from jhub_af.hub import private_dir, private_file, secret_file, server_role, write_private

SERVICE = "dask-gateway"
PREFIX = f"/services/{SERVICE}"
ACCESS = f"access:services!service={SERVICE}"
# backend name -> (the gateway's backend class, named by its module, and its cluster
# config class)
BACKENDS = {
    "local": ("jhub_af.gateway.local.QuotaLocalBackend", "LocalClusterConfig"),
    "slurm": ("jhub_af.gateway.slurm.QuotaSlurmBackend", "SlurmClusterConfig"),
}


def _cluster_config_lines(config_class: str, bin_dir: Path, cluster_settings: dict | None) -> str:
    """``c.<config_class>.<name> = value`` lines: the dask commands of ``bin_dir``, at
    most 50 workers a cluster, then ``cluster_settings`` (which win)."""
    cluster = {
        "scheduler_cmd": [str(bin_dir / "dask"), "scheduler"],
        "worker_cmd": [str(bin_dir / "dask"), "worker"],
        "cluster_max_workers": 50,
        **(cluster_settings or {}),
    }
    return "".join(f"c.{config_class}.{k} = {v!r}\n" for k, v in cluster.items())


def _launcher_line(backend: str, backend_class: str, bin_dir: Path) -> str:
    """The jobqueue launcher of a batch backend (Slurm), run as each user; else ""."""
    if backend != "slurm":
        return ""
    launcher = str(bin_dir / "dask-gateway-jobqueue-launcher")
    return f"c.{backend_class}.dask_gateway_jobqueue_launcher = {launcher!r}\n"


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

    The gateway listens on 127.0.0.1: ``api_port`` (its API), ``http_port`` (its HTTP
    proxy, under ``/services/dask-gateway``), ``tcp_port`` (its TCP proxy to the
    schedulers); its database, encryption key and event record are in ``data_dir``;
    it reserves at ``accounting_url`` with the token the hub gives it.

    ``backend``: ``"local"`` (processes of the gateway's user) or ``"slurm"`` (jobs of
    each user); ``backend_settings``: more settings of the backend class;
    ``options``: the per-group bounds of :func:`jhub_af.gateway.options.group_options`;
    ``cluster_settings``: more settings of its cluster config class
    (``LocalClusterConfig`` or ``SlurmClusterConfig``, e.g. ``scheduler_memory``);
    ``job_bin``: the ``bin`` directory of the Python environment the schedulers and
    workers run in (default: the hub's own; Slurm jobs need one every user can run).

    Returns the text; raises ``ValueError`` for an unknown ``backend``. Called by
    :func:`gateway_hub_config`.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, not {backend!r}")
    backend_path, config_class = BACKENDS[backend]
    backend_class = backend_path.rsplit(".", 1)[1]
    bin_dir = Path(job_bin or Path(sys.executable).parent)
    cluster_lines = _cluster_config_lines(config_class, bin_dir, cluster_settings)
    launcher = _launcher_line(backend, backend_class, bin_dir)
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


def _add_service(c, *, http_port: int, config_file: Path, data_dir: Path) -> None:
    """Add (or replace) the hub-managed service ``dask-gateway`` in ``c``: the hub
    starts ``dask-gateway-server -f config_file`` and its proxy forwards
    ``/services/dask-gateway/`` to the gateway's HTTP proxy on ``http_port``."""
    bin_dir = Path(sys.executable).parent
    services = [s for s in c.JupyterHub.get("services", []) if s["name"] != SERVICE]
    services.append(
        {
            "name": SERVICE,
            "url": f"http://127.0.0.1:{http_port}",
            "command": [str(bin_dir / "dask-gateway-server"), "-f", str(config_file)],
            "cwd": str(data_dir),
        }
    )
    c.JupyterHub.services = services


def _set_notebook_environment(c, *, public_url: str, tcp_port: int) -> None:
    """Set the spawner's environment so that ``dask_gateway.Gateway()`` in a notebook
    needs no arguments (the gateway behind the hub, the user's hub token)."""
    address = f"{public_url.rstrip('/')}{PREFIX}"
    c.Spawner.environment = {
        **c.Spawner.get("environment", {}),
        "DASK_GATEWAY__ADDRESS": address,
        "DASK_GATEWAY__PUBLIC_ADDRESS": address,
        "DASK_GATEWAY__PROXY_ADDRESS": f"gateway://127.0.0.1:{tcp_port}",
        "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
    }


def gateway_roles(*, stop_with_server: bool = False) -> list[dict]:
    """The roles the gateway needs, each as narrow as its holder needs.

    - ``dask-gateway`` (the service's own token): reserve in af-accounting; with
      ``stop_with_server`` also ``read:servers`` and ``read:users:name`` (to see
      whether a user's server runs);
    - ``user``: may use the gateway (``access:services!service=dask-gateway``);
    - ``server`` (the token in each notebook): JupyterHub's defaults, may use the
      gateway, and shows it the user's groups (``read:users:groups!user``).

    Returns them for ``c.JupyterHub.load_roles`` (merge with
    :func:`jhub_af.hub.add_roles`). Called by :func:`gateway_hub_config`.
    """
    service_scopes = [RESERVE_SCOPE, "access:services!service=af-accounting"]
    if stop_with_server:
        service_scopes += ["read:servers", "read:users:name"]
    return [
        {"name": SERVICE, "services": [SERVICE], "scopes": service_scopes},
        {"name": "user", "scopes": ["self", ACCESS]},
        server_role([ACCESS, "read:users:groups!user"]),
    ]


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
    """Configure the hub ``c`` to run the Dask Gateway behind its proxy.

    Writes the gateway's encryption key (once) and config file
    (:func:`gateway_config_text`) into ``data_dir`` (made 0700; the key, the config
    file and the gateway's SQLite database, created empty here, are 0600), adds the service
    ``dask-gateway``, and sets the notebooks' ``DASK_GATEWAY__*`` environment.
    ``public_url`` is the hub's public URL (``http://127.0.0.1:8000``); the gateway's
    API is then ``{public_url}/services/dask-gateway``, and schedulers are reached at
    ``gateway://127.0.0.1:{tcp_port}``. ``stop_with_server``: stop a user's clusters
    when their notebook server stops. ``backend_settings``, ``options``, ``backend``,
    ``cluster_settings``, ``job_bin``: as in :func:`gateway_config_text`.

    Returns the roles to merge into ``c.JupyterHub.load_roles``
    (:func:`gateway_roles`). Raises ``ValueError`` for an unknown ``backend``,
    ``OSError`` when ``data_dir`` cannot be written. Call it after
    ``accounting_hub_config`` (it reads ``c.AccountingClient.url``); called by the
    demo's hub config and facility hub configs.
    """
    data = private_dir(data_dir)
    secret_file(data / "encrypt-key", lambda: base64.b64encode(secrets.token_bytes(32)).decode())
    private_file(data / "dask-gateway.sqlite")
    config_file = write_private(
        data / "dask_gateway_config.py",
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
        ),
    )
    _add_service(c, http_port=http_port, config_file=config_file, data_dir=data)
    _set_notebook_environment(c, public_url=public_url, tcp_port=tcp_port)
    return gateway_roles(stop_with_server=stop_with_server)
