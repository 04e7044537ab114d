"""A real PostgreSQL (Debian's postgresql-15) on a free loopback port, in a temporary directory.

``start_postgres(workdir)`` runs ``initdb`` and ``postgres`` as the ``postgres``
user (PostgreSQL refuses to run as root), trusts loopback connections, and
returns once it accepts them. ``RunningPostgres.stop()`` stops it by its PID.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .net import free_port
from .processes import ManagedProcess

PG_USER = "postgres"
PG_ROOT = Path("/var/tmp/jhub-af-test")


def pg_bindir() -> Path:
    """Debian keeps the server binaries off PATH, under /usr/lib/postgresql/N/bin."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (make test does)")


def _as_postgres(cmd: list[str]) -> list[str]:
    return cmd if os.geteuid() != 0 else ["runuser", "-u", PG_USER, "--", *cmd]


@dataclass
class RunningPostgres:
    process: ManagedProcess
    port: int
    datadir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        cmd = [
            str(pg_bindir() / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            PG_USER,
            "-d",
            database,
            "-At",
            "-c",
            sql,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=30).stdout

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        self.process.stop()
        if self.datadir.parent.parent == PG_ROOT:
            shutil.rmtree(self.datadir.parent, ignore_errors=True)


def start_postgres(workdir: Path | None = None, timeout: float = 60) -> RunningPostgres:
    """Start PostgreSQL in ``workdir`` (default: a new directory under /var/tmp, since
    pytest's tmp dirs are private to root and the postgres user could not enter them)."""
    bindir = pg_bindir()
    if workdir is None:
        PG_ROOT.mkdir(parents=True, exist_ok=True)
        PG_ROOT.chmod(0o755)
        workdir = Path(tempfile.mkdtemp(prefix="pg-", dir=PG_ROOT))
    workdir.mkdir(parents=True, exist_ok=True)
    datadir = workdir / "pgdata"
    if os.geteuid() == 0:
        shutil.chown(workdir, PG_USER)
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-U",
                PG_USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        ),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    port = free_port()
    log = workdir / "postgres.log"
    if os.geteuid() == 0:
        log.touch()
        shutil.chown(log, PG_USER)
    process = ManagedProcess(
        _as_postgres(
            [
                str(bindir / "postgres"),
                "-D",
                str(datadir),
                "-p",
                str(port),
                "-h",
                "127.0.0.1",
                "-k",
                str(workdir),
                "-c",
                "fsync=off",
                "-c",
                "max_connections=300",
            ]
        ),
        log=log,
    )
    pg = RunningPostgres(process, port, datadir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"postgres exited\n{process.log_tail()}")
        ready = subprocess.run(
            [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
            capture_output=True,
            timeout=10,
        )
        if ready.returncode == 0:
            return pg
        time.sleep(0.2)
    process.stop()
    raise TimeoutError(
        f"postgres did not accept connections within {timeout}s\n{process.log_tail()}"
    )
