"""`jhub-af demo` refuses what it cannot run, says what to do, and starts nothing."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from jhub_af.demo import DemoError
from jhub_af.demo.launcher import find_proxy_command

REPO = Path(__file__).resolve().parents[1]
JHUB_AF = str(Path(sys.executable).parent / "jhub-af")


def run_cli(*args, env=None, cwd=None):
    return subprocess.run(
        [JHUB_AF, *args], capture_output=True, text=True, timeout=60, env=env, cwd=cwd
    )


def test_port_in_use_names_the_port_and_how_to_pick_another(taken_port, tmp_path):
    data_dir = tmp_path / "state"
    r = run_cli("demo", "--port", str(taken_port), "--data-dir", str(data_dir))
    assert r.returncode == 2
    assert f"Port {taken_port} on 127.0.0.1 is already in use by another program." in r.stderr
    assert "make demo DEMO_ARGS='--port " in r.stderr
    assert "Traceback" not in r.stderr
    # refused before anything was written or started
    assert not data_dir.exists()


def test_suggested_port_is_free(taken_port, tmp_path):
    r = run_cli("demo", "--port", str(taken_port), "--data-dir", str(tmp_path / "d"))
    suggested = int(r.stderr.split("--port ")[1].split("'")[0])
    assert suggested != taken_port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", suggested))


def test_missing_node_says_what_to_install(tmp_path):
    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path)}
    r = run_cli("demo", "--port", "18999", "--data-dir", str(tmp_path / "d"), env=env)
    assert r.returncode == 2
    assert "Node.js (`node`) is not on PATH" in r.stderr
    assert "apt-get install nodejs npm" in r.stderr
    assert not (tmp_path / "d").exists()


def test_missing_proxy_says_to_run_npm_ci(tmp_path, monkeypatch):
    node_dir = Path(subprocess.check_output(["which", "node"], text=True).strip()).parent
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "node").symlink_to(node_dir / "node")
    monkeypatch.setenv("PATH", str(bare))
    with pytest.raises(DemoError, match=r"configurable-http-proxy is not installed\. Run `npm ci`"):
        find_proxy_command([tmp_path])


def test_proxy_is_found_in_node_modules_first(tmp_path):
    chp = tmp_path / "node_modules" / ".bin" / "configurable-http-proxy"
    chp.parent.mkdir(parents=True)
    chp.write_text("#!/bin/sh\n")
    assert find_proxy_command([tmp_path, REPO]) == [str(chp)]


def test_data_dir_that_is_a_file_is_refused_and_kept(tmp_path):
    afile = tmp_path / "notes.txt"
    afile.write_text("my notes")
    r = run_cli("demo", "--port", "18998", "--data-dir", str(afile))
    assert r.returncode == 2
    assert f"--data-dir {afile} is a file; give a directory" in r.stderr
    assert afile.read_text() == "my notes"


@pytest.mark.parametrize(
    ("port", "message"),
    [("70000", "70000 is not a port number (1-65535)"), ("http", "'http' is not a port number")],
)
def test_bad_port_value(port, message, tmp_path):
    r = run_cli("demo", "--port", port, "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 2
    assert message in r.stderr


def test_ip_that_is_not_on_this_machine(tmp_path):
    r = run_cli("demo", "--ip", "192.0.2.1", "--port", "18997", "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 2
    assert "Cannot listen on 192.0.2.1:18997" in r.stderr
    assert "Give --ip an address of this machine" in r.stderr


def test_make_refuses_without_node_and_says_what_to_install(tmp_path):
    # the Makefile runs this check before `npm ci`
    r = subprocess.run(
        ["/bin/sh", str(REPO / "scripts" / "require-node")],
        capture_output=True,
        text=True,
        env={"PATH": str(tmp_path)},
    )
    assert r.returncode == 1
    assert "not found on PATH: node npm" in r.stderr
    assert "apt-get install nodejs npm" in r.stderr


def test_make_accepts_this_machines_node():
    r = subprocess.run(
        ["/bin/sh", str(REPO / "scripts" / "require-node")],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
    )
    assert r.returncode == 0, r.stderr
