"""af-ssh in the demo: `--ssh-port`, refused when taken, a service with no scopes, and
the SSH scope on users' tokens (not on their servers')."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from harness import free_port

JHUB_AF = str(Path(sys.executable).parent / "jhub-af")


def run_demo(*args):
    return subprocess.run([JHUB_AF, "demo", *args], capture_output=True, text=True, timeout=60)


def test_a_taken_ssh_port_is_refused_with_the_option_to_change(taken_port, tmp_path):
    data_dir = tmp_path / "state"
    r = run_demo(
        "--port", str(free_port()), "--ssh-port", str(taken_port), "--data-dir", str(data_dir)
    )
    assert r.returncode == 2
    assert f"Port {taken_port} on 127.0.0.1 is already in use by another program." in r.stderr
    assert "make demo DEMO_ARGS='--ssh-port " in r.stderr
    assert "jhub-af demo --ssh-port " in r.stderr
    assert "Traceback" not in r.stderr
    assert not data_dir.exists()


def test_the_ssh_port_may_not_be_the_web_port(tmp_path):
    port = free_port()
    r = run_demo("--port", str(port), "--ssh-port", str(port), "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 2
    assert f"--ssh-port {port} is the same as --port; pick another one." in r.stderr
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("bad", ["0", "65536", "ssh"])
def test_a_bad_ssh_port_is_refused_by_the_command_line(bad, tmp_path):
    r = run_demo("--ssh-port", bad, "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 2
    assert "--ssh-port" in r.stderr
    assert not (tmp_path / "d").exists()


def test_the_demo_runs_af_ssh_as_a_managed_service_without_scopes(demo_config, tmp_path):
    c = demo_config
    (service,) = [s for s in c.JupyterHub.services if s["name"] == "af-ssh"]
    assert service["command"][:3] == [sys.executable, "-m", "jhub_af.ssh"]
    assert "--ip=127.0.0.1" in service["command"]
    assert "--port=2222" in service["command"]
    assert "--hub-url=http://127.0.0.1:8000" in service["command"]
    assert f"--host-key-file={tmp_path / 'af-ssh' / 'ssh_host_ed25519_key'}" in service["command"]
    assert "url" not in service and "api_token" not in service
    # it acts only with the tokens users log in with: no role gives it any scope
    roles = c.JupyterHub.get("load_roles", [])
    assert not [r for r in roles if "af-ssh" in r.get("services", [])]


def test_the_demo_gives_the_ssh_scope_to_users_and_not_to_their_servers(demo_config):
    c = demo_config
    assert "custom:jhub-af:ssh" in c.JupyterHub.custom_scopes
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert "custom:jhub-af:ssh!user" in roles["user"]["scopes"]
    assert "self" in roles["user"]["scopes"]
    assert not [s for s in roles["server"]["scopes"] if s.startswith("custom:jhub-af:ssh")]
    # the other components' scopes are kept
    assert "custom:jhub-af:accounting-reserve" in c.JupyterHub.custom_scopes
