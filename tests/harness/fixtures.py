"""pytest fixtures over the harness: started once per test session, stopped by PID."""

from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .browser import launch_chromium
from .demo import start_demo
from .hub import REPO, RunningHub, start_hub
from .postgres import RunningPostgres, start_postgres
from .rucio import RunningRucio, start_rucio
from .slurm import RunningSlurm, start_slurm


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests keep what a person should be able to look at afterwards (screenshots)."""
    path = Path(os.environ.get("JHUB_AF_TEST_ARTIFACTS", REPO / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def taken_port():
    """A loopback port that a socket of this test listens on (for refusals of a port in use)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def dummy_kubeconfig(tmp_path, monkeypatch):
    """A kube config that names no reachable cluster, for tests that build KubeSpawner
    (it loads a kube config at construction); nothing contacts it. kubernetes_asyncio
    reads $KUBECONFIG once, at import: its default location is pointed there too."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        """
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""
    )
    from kubernetes_asyncio.config import kube_config
    from kubespawner.clients import load_config

    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    load_config.cache_clear()
    return path


@pytest.fixture
def demo_config(tmp_path):
    """The hub config the demo builds (``jhub_af.demo.configure``), on fixed ports, with
    its data in the test's own directory; nothing is started."""
    from traitlets.config import Config

    from jhub_af.demo import DemoSettings, configure

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
    return c


@pytest.fixture(scope="session")
def demo_facility(tmp_path_factory) -> RunningHub:
    """The demo facility, started with the README's `make demo` on a free port."""
    hub = start_demo(tmp_path_factory.mktemp("demo"), via_make=True)
    yield hub
    hub.stop()


@pytest.fixture(scope="session")
def hub_factory(tmp_path_factory):
    """``hub_factory(config_text, port=None, env=None)`` starts a real hub + proxy with
    that config (``port`` and ``env`` as in ``start_hub``)."""
    started: list[RunningHub] = []

    def factory(config: str, *, port: int | None = None, env=None) -> RunningHub:
        hub = start_hub(tmp_path_factory.mktemp("hub"), config, port=port, env=env)
        started.append(hub)
        return hub

    yield factory
    # at once: each waits for its services and notebooks to go (up to a minute in all,
    # one after another)
    with ThreadPoolExecutor(max_workers=max(len(started), 1)) as pool:
        list(pool.map(RunningHub.stop, started))


@pytest.fixture(scope="session")
async def chromium():
    """One headless Chromium (Debian's) for the whole session, through Playwright's
    async API: browser tests are ``async def`` and ``await`` the page."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await launch_chromium(p)
        yield browser
        await browser.close()


@pytest.fixture
async def page(chromium):
    """A fresh browser context (no cookies) and page for one test."""
    context = await chromium.new_context()
    page = await context.new_page()
    yield page
    await context.close()


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory) -> RunningSlurm:
    """A real one-node Slurm (munged, slurmctld, slurmd) for the whole session."""
    cluster = start_slurm(tmp_path_factory.mktemp("slurm"))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def postgres() -> RunningPostgres:
    """A real PostgreSQL (Debian's) on a free loopback port for the whole session;
    ``postgres.create_database(name)`` gives a test its own database URL."""
    pg = start_postgres()
    yield pg
    pg.stop()


@pytest.fixture(scope="session")
def rucio_server(tmp_path_factory) -> RunningRucio:
    """A real Rucio 41 server (own venv, memcached, SQLite) with a seeded scope, RSEs,
    container -> datasets -> files, replicas and a 10,000-file dataset (see
    harness/rucio.py); ``rucio_server.lab_config()`` points jhub_af.lab at it."""
    server = start_rucio(tmp_path_factory.mktemp("rucio"))
    yield server
    server.stop()
