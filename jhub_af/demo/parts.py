"""The demo's configuration, one part per component.

Every part is a function ``part(c, settings)`` that sets the JupyterHub config
``c`` for one component, through that component's public API. A component that
joins the demo (accounting, Dask Gateway, SSH, the panel) adds its part to
``DEMO_PARTS``; nothing else in the demo needs to change.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner

from jhub_af.accounting import accounting_hub_config
from jhub_af.auth import CUSTOM_SCOPES, IAMAuthenticator, bearer_token_roles
from jhub_af.gateway import gateway_hub_config
from jhub_af.hub import add_roles, private_dir, private_file, secret_file
from jhub_af.spawner import ProfileSpawner, install_job_callback
from jhub_af.ssh import ssh_hub_config

from .authenticator import DemoAuthenticator
from .cluster_options import DEMO_GATEWAY_OPTIONS
from .launcher import free_loopback_port
from .policy import DEMO_POLICY
from .profiles import DEMO_PROFILES, NO_CLUSTER
from .settings import DemoSettings

DEMO_VOS = ["/atlas", "/cms"]

TEMPLATES = Path(__file__).with_name("templates")


def hub(c, s: DemoSettings) -> None:
    """The hub and its proxy on loopback, with state in the data directory: the
    directory 0700 (also when this config runs without `jhub-af demo`), the hub's
    database 0600 from its creation (the hub makes its cookie secret 0600 itself)."""
    data = private_dir(s.data_path)
    c.JupyterHub.bind_url = f"{s.public_url}/"
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{s.hub_port}"
    c.JupyterHub.db_url = f"sqlite:///{private_file(data / 'jupyterhub.sqlite')}"
    c.JupyterHub.cookie_secret_file = str(data / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(data / "jupyterhub.pid")
    c.JupyterHub.cleanup_servers = True
    c.JupyterHub.cleanup_proxy = True
    c.JupyterHub.template_paths = [str(TEMPLATES)]
    c.ConfigurableHTTPProxy.command = list(s.proxy_command)
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{s.proxy_api_port}"
    c.ConfigurableHTTPProxy.pid_file = str(data / "jupyterhub-proxy.pid")


def login(c, s: DemoSettings) -> None:
    """The demo login (alice, bob, carol, admin; password 'demo'), or IAM with --login iam."""
    if s.login != "iam":
        c.JupyterHub.authenticator_class = DemoAuthenticator
        c.DemoAuthenticator.allowed_vos = DEMO_VOS
        return
    c.JupyterHub.authenticator_class = IAMAuthenticator
    c.IAMAuthenticator.issuer = s.issuer
    c.IAMAuthenticator.client_id = s.client_id
    c.IAMAuthenticator.client_secret = Path(s.client_secret_file).read_text().strip()
    c.IAMAuthenticator.oauth_callback_url = f"{s.public_url}/hub/oauth_callback"
    c.IAMAuthenticator.allowed_vos = DEMO_VOS
    # the key that encrypts auth_state (IAM tokens), made once and kept in the data dir
    c.CryptKeeper.keys = [bytes.fromhex(secret_file(s.data_path / "jupyterhub_crypt_key"))]
    # notebooks get the user's access token in $BEARER_TOKEN_FILE
    c.JupyterHub.custom_scopes = CUSTOM_SCOPES
    add_roles(c, bearer_token_roles())


def notebooks(c, s: DemoSettings) -> None:
    """Notebooks are JupyterLab processes on this machine, one home per user, started
    from the demo's profiles (local ones run; kubernetes ones explain there is no cluster)."""
    bin_dir = Path(sys.executable).parent
    c.JupyterHub.spawner_class = ProfileSpawner
    # no demo profile is a batch job, but a copy of this config may add one
    install_job_callback()
    c.ProfileSpawner.profiles = DEMO_PROFILES
    c.ProfileSpawner.backend_classes = {"local": SimpleLocalProcessSpawner}
    c.ProfileSpawner.unavailable_backends = {"kubernetes": NO_CLUSTER}
    # every notebook runs as the demo's own user, so a 0700 "home" hides the users'
    # homes from other accounts on the machine and still lets each notebook use its own
    homes = private_dir(s.data_path / "home")
    c.SimpleLocalProcessSpawner.home_dir_template = str(homes / "{username}")
    c.Spawner.ip = "127.0.0.1"
    c.Spawner.default_url = "/lab"
    # JupyterHub 6 passes almost no environment on, so name the command by path
    c.Spawner.cmd = [str(bin_dir / "jupyterhub-singleuser")]
    c.Spawner.environment = {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"}
    if os.geteuid() == 0:
        c.Spawner.args = ["--allow-root"]
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 60


def ssh(c, s: DemoSettings) -> None:
    """af-ssh on ip:ssh_port, a hub-managed service with no scopes of its own: it acts
    only with the token each user logs in with. Its host key is kept in the data dir.
    Users' tokens carry custom:jhub-af:ssh (their servers' tokens do not). The key's
    directory is 0700 (af-ssh writes the key 0600)."""
    key_dir = private_dir(s.data_path / "af-ssh")
    services = [x for x in c.JupyterHub.get("services", []) if x.get("name") != "af-ssh"]
    services.append(
        {
            "name": "af-ssh",
            "command": [
                sys.executable,
                "-m",
                "jhub_af.ssh",
                f"--ip={s.ip}",
                f"--port={s.ssh_port}",
                f"--hub-url={s.public_url}",
                f"--host-key-file={key_dir / 'ssh_host_ed25519_key'}",
            ],
        }
    )
    c.JupyterHub.services = services
    add_roles(c, ssh_hub_config(c))


def accounting(c, s: DemoSettings) -> None:
    """af-accounting, started by the hub on a free loopback port, with the demo's quotas
    (alice: 1 server of up to 2 cores; bob: 1 GPU server; monthly core-hour budgets) and
    its ledger in the data dir. Its pages are in the hub's Services menu."""
    roles = accounting_hub_config(
        c, data_dir=s.data_path / "accounting", port=free_loopback_port(), policy=DEMO_POLICY
    )
    add_roles(c, roles)


def dask_gateway(c, s: DemoSettings) -> None:
    """dask-gateway-server at /services/dask-gateway behind the hub's proxy, with jhub_af's
    quota backend (clusters are local processes; af-accounting caps each user's workers
    across their clusters) and options by group; Gateway() in a notebook needs no
    arguments. Its state is in the data dir. Needs the accounting part first."""
    roles = gateway_hub_config(
        c,
        data_dir=s.data_path / "dask-gateway",
        http_port=free_loopback_port(),
        tcp_port=free_loopback_port(),
        api_port=free_loopback_port(),
        public_url=s.public_url,
        options=DEMO_GATEWAY_OPTIONS,
    )
    add_roles(c, roles)


def panel(c, s: DemoSettings) -> None:
    """The JupyterLab panel's Usage tab: each notebook server learns af-accounting's URL
    and its token may read the user's own usage. Needs the accounting part first."""
    from jhub_af.lab import usage_hub_config

    add_roles(c, usage_hub_config(c))


DEMO_PARTS = (hub, login, notebooks, ssh, accounting, dask_gateway, panel)


def configure(c, settings: DemoSettings) -> None:
    """Apply every demo part to the JupyterHub config ``c``, in DEMO_PARTS order.

    Called by the ``jupyterhub_config.py`` that `jhub-af demo` writes, and by
    `jhub-af check-config` (without a file). Installs the guarded batch-job
    call-back in this process (see :func:`jhub_af.spawner.install_job_callback`).
    """
    for part in DEMO_PARTS:
        part(c, settings)
