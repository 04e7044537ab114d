"""The Dask Gateway in the demo: a hub service behind the hub's proxy with the narrowest
roles, and alice creating a cluster from a notebook with Gateway().new_cluster()."""

from __future__ import annotations

import pytest
from harness import login, run_python, spawn_server, user_api_token
from traitlets.config import Config

from jhub_af.demo import DemoSettings, configure


def test_the_demo_runs_the_gateway_as_a_hub_service_with_narrow_roles(tmp_path):
    settings = DemoSettings(
        ip="127.0.0.1",
        port=8000,
        data_dir=str(tmp_path),
        hub_port=8081,
        proxy_api_port=8001,
        proxy_command=["configurable-http-proxy"],
        ssh_port=2222,
    )
    c = Config()
    configure(c, settings)
    (service,) = [s for s in c.JupyterHub.services if s["name"] == "dask-gateway"]
    assert service["command"][-2:] == [
        "-f",
        str(tmp_path / "dask-gateway" / "dask_gateway_config.py"),
    ]
    assert service["url"].startswith("http://127.0.0.1:")
    text = (tmp_path / "dask-gateway" / "dask_gateway_config.py").read_text()
    assert 'c.Proxy.prefix = "/services/dask-gateway"' in text.replace("'", '"')
    assert "api_token = os.environ" in text  # the token is never written to the file
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert roles["dask-gateway"]["scopes"] == [
        "custom:jhub-af:accounting-reserve",
        "access:services!service=af-accounting",
    ]
    assert "access:services!service=dask-gateway" in roles["user"]["scopes"]
    assert "access:services!service=dask-gateway" in roles["server"]["scopes"]
    env = c.Spawner.environment
    assert env["DASK_GATEWAY__ADDRESS"] == "http://127.0.0.1:8000/services/dask-gateway"
    assert env["DASK_GATEWAY__AUTH__TYPE"] == "jupyterhub"


NOTEBOOK = """
from dask_gateway import Gateway
cluster = Gateway().new_cluster()
cluster.scale(1)
with cluster.get_client() as client:
    client.wait_for_workers(1, timeout=120)
    print("answer", client.submit(lambda: 6 * 7).result())
cluster.shutdown()
"""


@pytest.mark.integration
async def test_alice_creates_a_cluster_from_a_notebook_in_the_demo(demo_facility):
    s = login(demo_facility.url, "alice", "demo")
    assert spawn_server(s, demo_facility.url, "alice").status_code == 200
    token = user_api_token(s, demo_facility.url, "alice")
    out = await run_python(demo_facility.url, "alice", token, NOTEBOOK, 240)
    assert "answer 42" in out
