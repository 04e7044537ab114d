"""A real Rucio server (with memcached) on loopback, seeded with what the panel browses.

``start_rucio(workdir)`` runs Rucio 41 from its own venv (``.venv-rucio``, made by
``make .venv-rucio/.installed``: the server and jhub_af's venv must not share the
``rucio`` package) under gunicorn on a free port, with SQLite and memcached as
../shared/RECIPES.md describes, plus a small HTTPS file server behind one RSE so
https:// PFNs can really be downloaded. It seeds (tests/harness/rucio_seed.py):

- account ``physicist`` (userpass) with quota on every RSE (rules need it);
- scope ``mc23``; RSEs ``SITE_DISK`` (file:// and root:// PFNs), ``SITE_WEB``
  (https://, served for real) and ``SITE_SCRATCH`` (a rule destination);
- container -> two datasets -> files with sizes and events, on disk and web;
- a dataset whose name is HTML that would run script if rendered unescaped (a
  test policy package widens Rucio's generic name rule, as experiments' own
  policy packages do);
- a dataset of ``big_files`` files (10,000 for the tests, 100,000 for the benchmark).

Seeding the large dataset costs about 1.2 ms a file, so the seeded database and the
files are cached under /var/tmp/jhub-af-rucio-cache, keyed by the seed plan and
script; a second session copies the database and starts in a few seconds.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from .net import free_port, wait_for_http
from .processes import ManagedProcess

REPO = Path(__file__).resolve().parents[2]
RUCIO_VENV = Path(os.environ.get("JHUB_AF_RUCIO_VENV", REPO / ".venv-rucio"))
CACHE_ROOT = Path(os.environ.get("JHUB_AF_RUCIO_CACHE", "/var/tmp/jhub-af-rucio-cache"))
SEED_SCRIPT = Path(__file__).with_name("rucio_seed.py")
ROOT_PASSWORD = "rucio-root-secret"
ROOT_PORT = 1094  # the root:// door is advertised, not served
ENDPOINTS = [
    *("accounts", "auth", "config", "dids", "identities", "meta_conventions", "ping"),
    *("redirect", "replicas", "rses", "rules", "scopes", "locks", "requests", "vos"),
]

SMALL = {
    "container": "cont.ttbar.v1",
    "datasets": {
        "ds.ttbar.001": [
            {"name": "ttbar.001.0001.root", "bytes": 300_000, "events": 1000, "web": True},
            {"name": "ttbar.001.0002.root", "bytes": 200_000, "events": 700, "web": True},
            {"name": "ttbar.001.0003.root", "bytes": 4096, "events": 12},
        ],
        "ds.ttbar.002": [
            {"name": "ttbar.002.0001.root", "bytes": 8192, "events": 30},
            {"name": "ttbar.002.0002.root", "bytes": 1024},
        ],
    },
}
HTML_NAME = "<svg/onload=alert(document.domain)>"


def rucio_python() -> Path:
    python = RUCIO_VENV / "bin" / "python"
    if not python.exists():
        raise RuntimeError(
            f"The Rucio server venv {RUCIO_VENV} is missing: run `make .venv-rucio/.installed` "
            "(make test does)"
        )
    return python


def _site_packages() -> Path:
    out = subprocess.run(
        [str(rucio_python()), "-c", "import rucio, os; print(os.path.dirname(rucio.__file__))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return Path(out.stdout.strip()).parent


# a policy package whose schema is Rucio's generic one with a wider DID name rule
POLICY_INIT = '"""jhub_af test policy: Rucio generic, any printable DID name."""\n'
POLICY_SCHEMA = textwrap.dedent(
    '''
    """Rucio's generic schema, but DID names may hold any printable character."""
    import importlib.util

    _spec = importlib.util.find_spec("rucio.common.schema.generic")
    _source = open(_spec.origin).read().replace(
        r'"pattern": r"^[/A-Za-z0-9][/A-Za-z0-9\\.\\-_]*$"', r'"pattern": r"^[^\\s].*$"'
    )
    exec(compile(_source, _spec.origin, "exec"))
    '''
)


@dataclass
class RunningRucio:
    url: str
    account: str
    username: str
    password: str
    scope: str
    workdir: Path
    ca_cert: Path
    disk_dir: Path
    web_dir: Path
    rse_disk: str = "SITE_DISK"
    rse_web: str = "SITE_WEB"
    rse_dest: str = "SITE_SCRATCH"
    container: str = SMALL["container"]
    datasets: dict = field(default_factory=lambda: SMALL["datasets"])
    html_name: str = HTML_NAME
    big_name: str = "ds.big"
    big_files: int = 0
    processes: list[ManagedProcess] = field(default_factory=list)

    def instance(self, name: str = "test", **overrides) -> dict:
        """One entry of ``RucioPanel.instances`` for this server (userpass). The test
        Rucio answers on http://127.0.0.1, so the entry sets ``allow_insecure_http``
        (the panel refuses a plain-http Rucio without it)."""
        entry = {
            "name": name,
            "url": self.url,
            "allow_insecure_http": True,
            "account": self.account,
            "auth": "userpass",
            "username": self.username,
            "password": self.password,
            "ca_cert": str(self.ca_cert),
            "replica_requests": True,
            "destination_rses": [self.rse_dest],
        }
        entry.update(overrides)
        return entry

    def lab_config(self, *instances: dict, **panel) -> dict:
        """A jupyter-server config (JSON-able) that points jhub_af.lab at this Rucio:
        write it as ``jupyter_server_config.json`` in a dir on JUPYTER_CONFIG_PATH."""
        return {"RucioPanel": {"instances": list(instances) or [self.instance()], **panel}}

    def alive(self) -> bool:
        return all(p.alive() for p in self.processes)

    def stop(self) -> None:
        for p in reversed(self.processes):
            p.stop()


def _https_server_script(root: Path, port: int, cert: Path, key: Path) -> str:
    return textwrap.dedent(
        f"""
        import functools, ssl
        from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

        class Handler(SimpleHTTPRequestHandler):
            def translate_path(self, path):
                if not path.startswith("/data/"):
                    return "/nonexistent"
                return super().translate_path(path[len("/data"):])

        handler = functools.partial(Handler, directory={str(root)!r})
        server = ThreadingHTTPServer(("127.0.0.1", {port}), handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain({str(cert)!r}, {str(key)!r})
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        server.serve_forever()
        """
    )


def _self_signed(workdir: Path) -> tuple[Path, Path]:
    cert, key = workdir / "web-cert.pem", workdir / "web-key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return cert, key


def _server_config(workdir: Path, db: Path, memcached_port: int, site_packages: Path) -> Path:
    alembic = workdir / "alembic.ini"
    alembic.write_text(
        textwrap.dedent(
            f"""
            [alembic]
            script_location = {site_packages}/rucio/db/sqla/migrate_repo
            sqlalchemy.url = sqlite:///{db}

            [loggers]
            keys = root
            [handlers]
            keys = console
            [formatters]
            keys = generic
            [logger_root]
            level = WARN
            handlers = console
            [handler_console]
            class = StreamHandler
            args = (sys.stderr,)
            level = NOTSET
            formatter = generic
            [formatter_generic]
            format = %(levelname)-5.5s [%(name)s] %(message)s
            """
        )
    )
    cfg = workdir / "rucio.cfg"
    cfg.write_text(
        textwrap.dedent(
            f"""
            [common]
            logdir = {workdir}
            loglevel = WARNING
            [database]
            default = sqlite:///{db}
            [bootstrap]
            userpass_identity = root
            userpass_pwd = {ROOT_PASSWORD}
            [alembic]
            cfg = {alembic}
            [policy]
            package = jhub_af_test_policy
            permission = generic
            schema = generic
            lfn2pfn_algorithm_default = hash
            [cache]
            url = 127.0.0.1:{memcached_port}
            [api]
            endpoints = {", ".join(ENDPOINTS)}
            """
        )
    )
    return cfg


def _client_config(workdir: Path, url: str) -> Path:
    cfg = workdir / "rucio-client.cfg"
    cfg.write_text(
        textwrap.dedent(
            f"""
            [client]
            rucio_host = {url}
            auth_host = {url}
            auth_type = userpass
            account = root
            username = root
            password = {ROOT_PASSWORD}
            request_retries = 1
            """
        )
    )
    return cfg


def _run_client(python: Path, args: list[str], env: dict, timeout: float, what: str) -> None:
    """Run the Rucio venv's ``python`` with ``args`` as a Rucio client (``env`` names its
    config); raise RuntimeError saying ``what`` failed, with its stderr's end."""
    done = subprocess.run(
        [str(python), *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-4000:]}")


def _cache_key(plan: dict) -> str:
    stable = {k: v for k, v in plan.items() if k not in ("client_config", "web_port")}
    digest = hashlib.sha256(json.dumps(stable, sort_keys=True).encode())
    digest.update(SEED_SCRIPT.read_bytes())
    digest.update(POLICY_SCHEMA.encode())
    return digest.hexdigest()[:16]


def start_rucio(workdir: Path, big_files: int = 10_000, timeout: float = 60) -> RunningRucio:
    """Start memcached, the HTTPS RSE and Rucio; seed (or reuse a cached seed)."""
    workdir.mkdir(parents=True, exist_ok=True)
    python = rucio_python()
    site_packages = _site_packages()
    policy = workdir / "policy" / "jhub_af_test_policy"
    policy.mkdir(parents=True, exist_ok=True)
    (policy / "__init__.py").write_text(POLICY_INIT)
    (policy / "schema.py").write_text(POLICY_SCHEMA)

    plan = {
        "scope": "mc23",
        "account": "physicist",
        "username": "physicist",
        "password": "physicist-secret",
        "rse_disk": "SITE_DISK",
        "rse_web": "SITE_WEB",
        "rse_dest": "SITE_SCRATCH",
        "root_port": ROOT_PORT,
        "small": SMALL,
        "html_name": HTML_NAME,
        "big_name": "ds.big",
        "big_files": big_files,
    }
    cache = CACHE_ROOT / _cache_key(plan)
    plan.update(
        disk_dir=str(cache / "disk"), web_dir=str(cache / "web"), dest_dir=str(cache / "scratch")
    )
    # one session seeds a cache entry at a time; the others wait, then copy it
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    lock = (CACHE_ROOT / f"{cache.name}.lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    cached = (cache / "complete").exists()
    db = workdir / "rucio.db"
    if cached:
        shutil.copyfile(cache / "rucio.db", db)
    else:
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)

    processes: list[ManagedProcess] = []
    try:
        mc_port = free_port()
        mc_cmd = ["memcached", "-l", "127.0.0.1", "-p", str(mc_port), "-U", "0", "-m", "256"]
        if os.geteuid() == 0:
            mc_cmd += ["-u", "root"]
        processes.append(ManagedProcess(mc_cmd, log=workdir / "memcached.log"))

        cert, key = _self_signed(workdir)
        web_port = free_port()
        Path(plan["web_dir"]).mkdir(parents=True, exist_ok=True)
        processes.append(
            ManagedProcess(
                [
                    sys.executable,
                    "-c",
                    _https_server_script(Path(plan["web_dir"]), web_port, cert, key),
                ],
                log=workdir / "https-rse.log",
            )
        )

        cfg = _server_config(workdir, db, mc_port, site_packages)
        env = {
            **os.environ,
            "RUCIO_CONFIG": str(cfg),
            "PYTHONPATH": str(policy.parent),
        }
        if not cached:
            subprocess.run(
                [
                    str(python),
                    "-c",
                    "from rucio.db.sqla.util import build_database, create_base_vo, "
                    "create_root_account\n"
                    "build_database(); create_base_vo(); create_root_account()",
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                timeout=300,
            )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        gunicorn = ManagedProcess(
            [
                str(RUCIO_VENV / "bin" / "gunicorn"),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--threads",
                "4",
                "--timeout",
                "600",
                "rucio.web.rest.flaskapi.v1.main:application",
            ],
            log=workdir / "rucio-server.log",
            env=env,
        )
        processes.append(gunicorn)
        wait_for_http(
            f"{url}/ping", timeout=timeout, alive=gunicorn.alive, describe=gunicorn.log_tail
        )
        client_cfg = _client_config(workdir, url)
        plan["client_config"] = str(client_cfg)
        plan["web_port"] = web_port
        client_env = {**os.environ, "RUCIO_CONFIG": str(client_cfg)}
        if not cached:
            plan_file = workdir / "seed-plan.json"
            plan_file.write_text(json.dumps(plan))
            started = time.monotonic()
            _run_client(
                python, [str(SEED_SCRIPT), str(plan_file)], client_env, 1800, "seeding Rucio"
            )
            (workdir / "seed-seconds").write_text(f"{time.monotonic() - started:.1f}\n")
            shutil.copyfile(db, cache / "rucio.db")
            (cache / "web_port").write_text(f"{web_port}\n")
            (cache / "complete").write_text("seeded\n")
        else:
            # the HTTPS RSE listens on a new port in every session
            seeded_port = int((cache / "web_port").read_text())
            move = (
                "from rucio.client import Client\n"
                f"Client().update_protocols('SITE_WEB', 'https', "
                f"{{'port': {web_port}}}, hostname='127.0.0.1', port={seeded_port})"
            )
            _run_client(python, ["-c", move], client_env, 120, "moving the HTTPS RSE's port")
    except BaseException:
        for p in reversed(processes):
            p.stop()
        raise
    finally:
        lock.close()  # releases the flock

    return RunningRucio(
        url=url,
        account=plan["account"],
        username=plan["username"],
        password=plan["password"],
        scope=plan["scope"],
        workdir=workdir,
        ca_cert=cert,
        disk_dir=Path(plan["disk_dir"]),
        web_dir=Path(plan["web_dir"]),
        big_files=big_files,
        processes=processes,
    )
