"""Loopback ports, waiting for a server to answer, and waiting for a condition."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

import requests

T = TypeVar("T")


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
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """GET ``url`` (with ``headers``) until it answers ``expect``; return that response.

    Fails early (RuntimeError) if ``alive()`` turns False, with ``describe()`` (e.g. a
    log tail) in the message; raises TimeoutError after ``timeout`` seconds, naming the
    last answer. Called by the harness's ``start_*`` functions and by the facility
    fixtures that wait for a hub service. (A proxy that is up before the hub has added
    its route answers 404.)"""
    deadline = time.monotonic() + timeout
    last: Exception | str = "no answer"
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"process died before {url} answered\n{describe()}")
        try:
            r = requests.get(url, headers=headers, timeout=5, allow_redirects=False)
            if r.status_code == expect:
                return r
            last = f"HTTP {r.status_code} {r.text[:200]}"
        except requests.RequestException as e:
            last = e
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout}s ({last})\n{describe()}")


def wait_until(predicate: Callable[[], T], timeout: float = 60, what: str = "condition") -> T:
    """Call ``predicate()`` every 0.3 s until it returns something true; return that.

    Raises TimeoutError naming ``what`` after ``timeout`` seconds. For a state the test
    cannot be told about (a row in a ledger, a process gone, a line in a log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise TimeoutError(f"{what} not reached within {timeout}s")
