"""Real-parts test harness: start JupyterHub, the proxy, the demo and Chromium on loopback.

Used by tests/ (through the fixtures in ``harness.fixtures``) and by benchmarks/.
Everything binds to 127.0.0.1 on free ports and is stopped by the PID it was
started with.
"""

from .browser import CHROMIUM_ARGS, chromium_path, launch_chromium
from .demo import start_demo
from .hub import (
    RunningHub,
    hub_config,
    local_spawner_config,
    login,
    login_response,
    notebooks_of,
    spawn_server,
    start_hub,
    stop_server,
    user_token,
)
from .iam import admin_get, generic_oauth_config, iam_hub_config, iam_hub_env
from .idp import (
    RunningIdP,
    drive_login,
    make_rsa_jwk,
    oidc_login,
    oidc_login_response,
    public_jwks,
    start_idp,
)
from .jupyter_server import RunningJupyterServer, start_jupyter_server
from .kernel import run_python, user_api_token
from .net import free_port, wait_for_http, wait_until
from .postgres import RunningPostgres, start_postgres
from .processes import ManagedProcess
from .rucio import RunningRucio, start_rucio
from .slurm import RunningSlurm, batch_venv, ensure_unix_user, remove_unix_user, start_slurm
from .ssh import (
    OPENSSH_OPTIONS,
    hub_token,
    openssh,
    rsync,
    ssh_connect,
    start_af_ssh,
    wait_for_port,
)

__all__ = [
    "CHROMIUM_ARGS",
    "OPENSSH_OPTIONS",
    "ManagedProcess",
    "RunningHub",
    "RunningIdP",
    "RunningJupyterServer",
    "RunningPostgres",
    "RunningRucio",
    "RunningSlurm",
    "admin_get",
    "batch_venv",
    "chromium_path",
    "drive_login",
    "ensure_unix_user",
    "free_port",
    "generic_oauth_config",
    "hub_config",
    "hub_token",
    "iam_hub_config",
    "iam_hub_env",
    "launch_chromium",
    "local_spawner_config",
    "login",
    "login_response",
    "make_rsa_jwk",
    "notebooks_of",
    "oidc_login",
    "oidc_login_response",
    "openssh",
    "public_jwks",
    "remove_unix_user",
    "rsync",
    "run_python",
    "spawn_server",
    "ssh_connect",
    "start_af_ssh",
    "start_demo",
    "start_hub",
    "start_idp",
    "start_jupyter_server",
    "start_postgres",
    "start_rucio",
    "start_slurm",
    "stop_server",
    "user_api_token",
    "user_token",
    "wait_for_http",
    "wait_for_port",
    "wait_until",
]
