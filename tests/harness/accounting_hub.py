"""A real hub running af-accounting, for the accounting tests: users, policy, a spawner
that reserves through AccountingSpawnerMixin, and a second reserving client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .hub import local_spawner_config, login, user_token
from .net import free_port, wait_for_http

USERS = {
    "alice": {"groups": ["/atlas", "/atlas/users"]},
    "bob": {"groups": ["/cms", "/cms/gpu"]},
    "dave": {"groups": ["/atlas"]},
    "olga": {"groups": ["/atlas", "/atlas/admins"]},
    "admin": {"groups": ["/atlas"], "admin": True},
}
POLICY = {
    "defaults": {"servers": 1, "cores": 1, "memory": "2G", "gpus": {"*": 0}, "core_hours": 200},
    "groups": {
        "/atlas/users": {"cores": 2, "core_hours": 500},
        "/cms/gpu": {"gpus": {"t4": 1}, "gpu_hours": 50},
    },
    "users": {"dave": {"servers": 3, "cores": 100}, "bob": {"servers": 2, "cores": 4}},
    "group_totals": {"/atlas": {"servers": 50}},
}
# what each user's server asks for (the stand-in for a profile)
RESOURCES = {"bob": {"cores": 1, "memory": "1G", "gpus": {"t4": 1}}}
GATEWAY_TOKEN = "gateway-" + "0" * 40
READER_TOKEN = "reader-" + "1" * 40


def accounting_config(workdir: Path, policy: dict = POLICY, **kw) -> str:
    port = free_port()
    return (
        local_spawner_config(str(workdir / "home" / "{username}"))
        + f"""
import json
from jupyterhub.spawner import SimpleLocalProcessSpawner
from jhub_af.accounting import (
    AccountingSpawnerMixin, READ_SCOPE, RESERVE_SCOPE, accounting_hub_config,
)
from jhub_af.demo import DemoAuthenticator
from jhub_af.hub import add_roles

RESOURCES = json.loads({json.dumps(json.dumps(RESOURCES))})

class AccountedSpawner(AccountingSpawnerMixin, SimpleLocalProcessSpawner):
    def accounting_resources(self):
        return RESOURCES.get(self.user.name, {{"cores": 1, "memory": "1G"}})

c.JupyterHub.spawner_class = AccountedSpawner
c.JupyterHub.allow_named_servers = True
c.JupyterHub.authenticator_class = DemoAuthenticator
c.DemoAuthenticator.demo_users = json.loads({json.dumps(json.dumps(USERS))})
c.DemoAuthenticator.allowed_vos = ["/atlas", "/cms"]
c.Authenticator.admin_users = {{"admin"}}
roles = accounting_hub_config(
    c,
    data_dir={str(workdir / "accounting")!r},
    port={port},
    policy=json.loads({json.dumps(json.dumps(policy))}),
    admin_groups=["/atlas/admins"],
    service_settings=json.loads({json.dumps(json.dumps(kw))}),
)
c.JupyterHub.services.append({{"name": "gateway-test", "api_token": {GATEWAY_TOKEN!r}}})
roles.append({{"name": "gateway-test", "services": ["gateway-test"],
              "scopes": [RESERVE_SCOPE, "access:services!service=af-accounting"]}})
c.JupyterHub.services.append({{"name": "reader-test", "api_token": {READER_TOKEN!r}}})
roles.append({{"name": "reader-test", "services": ["reader-test"],
              "scopes": [READ_SCOPE, "access:services!service=af-accounting"]}})
add_roles(c, roles)
"""
    )


def api(hub_url: str) -> str:
    return f"{hub_url}/services/af-accounting/api/v1"


def spawner_token(workdir: Path) -> str:
    return (workdir / "accounting" / "af-spawner-token").read_text().strip()


def auth(token: str) -> dict:
    return {"Authorization": f"token {token}"}


def wait_for_service(hub_url: str, token: str, timeout: float = 60) -> None:
    """Return once af-accounting answers ``token``'s ``/policy/me`` through the hub
    (TimeoutError after ``timeout`` seconds, naming its last answer)."""
    wait_for_http(f"{api(hub_url)}/policy/me", timeout, headers=auth(token))


@pytest.fixture(scope="module")
def facility(hub_factory, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("acct")
    # the locked-database tests wait this long for their 503; long enough that 200 racing
    # requests on a busy 2-core machine are not refused as 'database busy' (seen at 1 s)
    hub = hub_factory(accounting_config(workdir, db_busy_timeout=3.0))
    sessions = {
        name: login(hub.url, name, "demo") for name in ("alice", "bob", "dave", "olga", "admin")
    }
    tokens = {name: user_token(s, hub.url, name) for name, s in sessions.items()}
    wait_for_service(hub.url, tokens["alice"])
    return {
        "hub": hub,
        "url": hub.url,
        "api": api(hub.url),
        "db": workdir / "accounting" / "af-accounting.sqlite",
        "sessions": sessions,
        "tokens": tokens,
        "spawner": spawner_token(workdir),
    }
