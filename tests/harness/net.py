"""Loopback ports and waiting for a server to answer."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import requests


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(
    url: str,
    timeout: float = 60,
    alive: Callable[[], bool] = lambda: True,
    describe: Callable[[], str] = lambda: "",
    expect: int = 200,
) -> requests.Response:
    """GET ``url`` until it answers ``expect``; fail early if ``alive()`` turns False.

    (A proxy that is up before the hub has added its route answers 404.)"""
    deadline = time.monotonic() + timeout
    last: Exception | str = "no answer"
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"process died before {url} answered\n{describe()}")
        try:
            r = requests.get(url, timeout=2, allow_redirects=False)
            if r.status_code == expect:
                return r
            last = f"HTTP {r.status_code}"
        except requests.RequestException as e:
            last = e
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout}s ({last})\n{describe()}")
