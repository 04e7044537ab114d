"""The Usage tab's hub side: every notebook server learns af-accounting's URL, and the
server role may call it while keeping JupyterHub's default server scopes. The handler
itself is tested against a real af-accounting in test_lab_dask.py."""

from __future__ import annotations

from traitlets.config import Config

from jhub_af.lab import usage_hub_config
from jhub_af.lab.usage import ENV_URL, PanelUsage

DEFAULT_SERVER_SCOPES = {"users:activity!user", "access:servers!server"}


def test_usage_hub_config_sets_the_url_and_the_narrow_scope():
    c = Config()
    c.AccountingClient.url = "http://127.0.0.1:10101/services/af-accounting/api/v1/"
    c.Spawner.environment = {"PATH": "/usr/bin"}
    roles = usage_hub_config(c)
    assert c.Spawner.environment == {
        "PATH": "/usr/bin",
        ENV_URL: "http://127.0.0.1:10101/services/af-accounting/api/v1/",
    }
    assert roles == [
        {
            "name": "server",
            "scopes": [
                "users:activity!user",
                "access:servers!server",
                "access:services!service=af-accounting",
            ],
        }
    ]


def test_the_demo_gives_every_server_the_usage_url_and_scope(demo_config):
    c = demo_config
    assert c.Spawner.environment[ENV_URL] == c.AccountingClient.url
    (server,) = [r for r in c.JupyterHub.load_roles if r["name"] == "server"]
    scopes = set(server["scopes"])
    assert scopes >= DEFAULT_SERVER_SCOPES
    assert "access:services!service=af-accounting" in scopes
    assert "access:services!service=dask-gateway" in scopes  # the gateway's part kept


def test_panel_usage_reads_its_defaults_from_the_environment(monkeypatch):
    monkeypatch.setenv(ENV_URL, "http://127.0.0.1:1/services/af-accounting/api/v1/")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")
    usage = PanelUsage()
    assert usage.accounting_url == "http://127.0.0.1:1/services/af-accounting/api/v1/"
    assert usage.api_token == "server-token"
    monkeypatch.delenv(ENV_URL)
    assert PanelUsage().accounting_url == ""
