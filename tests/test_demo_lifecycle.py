"""`make demo` stops every process it started when Ctrl-C reaches make's process group."""

import signal
import socket

import psutil
import pytest
from harness import login, spawn_server, start_demo

pytestmark = pytest.mark.integration


def test_ctrl_c_stops_hub_proxy_and_notebooks(tmp_path):
    demo = start_demo(tmp_path, via_make=True)
    try:
        s = login(demo.url, "alice", "demo")
        assert spawn_server(s, demo.url, "alice").status_code == 200
        tree = demo.process.descendants()
        names = " ".join(" ".join(p.cmdline()) for p in tree)
        # make, jhub-af demo, the hub, the proxy and alice's notebook were all running
        for part in [
            "make",
            "jhub-af demo",
            "jupyterhub",
            "configurable-http-proxy",
            "jupyterhub-singleuser",
        ]:
            assert part in names, f"{part} not among {names}"

        demo.process.signal_group(signal.SIGINT)  # what a terminal's Ctrl-C does
        demo.process.proc.wait(90)
        _, alive = psutil.wait_procs(tree, timeout=30)
        assert alive == [], f"still running after Ctrl-C: {[p.cmdline() for p in alive]}"
        assert "Stopped." in demo.process.log.read_text()
        port = int(demo.url.rsplit(":", 1)[1])
        with socket.socket() as sock:
            # nothing listens on the public port any more (TIME_WAIT is fine)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
    finally:
        demo.stop()
