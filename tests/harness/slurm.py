"""A real Slurm on this machine (Debian's slurm-wlm + munge): munged, slurmctld, slurmd.

``start_slurm(workdir)`` writes /etc/slurm/slurm.conf (one node, partition
``debug``), starts the three daemons in the foreground as ManagedProcesses and
returns once ``sinfo`` shows the node idle. ``RunningSlurm.stop()`` stops them
by PID. Jobs run as a real unix user (``ensure_unix_user``) from a venv made
with Debian's python (``batch_venv``): the test venv's python lives under
/root, which job users cannot read. Needs root, as Slurm's daemons do.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .processes import ManagedProcess

SLURM_CONF = Path("/etc/slurm/slurm.conf")
BATCH_VENV = Path("/var/tmp/jhub-af-test/batch-venv")
SLURM_STATE = Path("/var/tmp/jhub-af-test/slurm-state")
# one Slurm per machine (its config, ports and munge socket are global): a second
# test session waits for the first to finish with it
SLURM_LOCK = Path("/var/tmp/jhub-af-test/slurm.lock")
LOCK_TIMEOUT = 1800
PARTITION = "debug"
# a second partition where up to 4 jobs share a core, so that a Dask cluster (a
# scheduler and its workers, one job each) fits on a 2-core test machine; ``debug``
# stays one job per core (a test fills it to queue a job)
SHARED_PARTITION = "shared"


def slurm_conf(workdir: Path, state: Path, cpus: int) -> str:
    return f"""\
# written by jhub_af's test harness (tests/harness/slurm.py); rewritten at every test run
ClusterName=jhubaf
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
StateSaveLocation={state}/ctld
SlurmdSpoolDir={state}/d
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={workdir}/slurmctld.log
SlurmdLogFile={workdir}/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={_real_memory_mb()} State=UNKNOWN
PartitionName={PARTITION} Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName={SHARED_PARTITION} Nodes=localhost MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
"""


def _real_memory_mb() -> int:
    """The node's memory for slurm.conf: what the machine has, less a margin, at most
    8 GB (slurmd drains a node that has less than configured; jobs asking for more
    are refused at submission, e.g. Dask Gateway's 1-2 GiB workers and schedulers).
    Memory is not a consumable resource here (CR_Core): this only bounds a request."""
    try:
        with open("/proc/meminfo") as f:
            total_kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration, ValueError):
        return 1000
    return max(1000, min(8000, int(total_kb / 1024 * 0.8)))


@dataclass
class RunningSlurm:
    processes: list[ManagedProcess]
    workdir: Path
    lock_fd: int = -1

    def run(self, *cmd: str) -> str:
        return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=30).stdout

    def jobs(self, user: str | None = None) -> list[str]:
        """Job ids in the queue (of ``user``)."""
        args = ["squeue", "-h", "-o", "%i"] + (["-u", user] if user else [])
        return self.run(*args).split()

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        if self.lock_fd >= 0:
            os.close(self.lock_fd)  # releases the machine's Slurm to the next session
            self.lock_fd = -1


def _take_lock() -> int:
    SLURM_LOCK.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(SLURM_LOCK, os.O_CREAT | os.O_RDWR, 0o644)
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise TimeoutError(
                    f"another test session has held this machine's Slurm for {LOCK_TIMEOUT}s "
                    f"({SLURM_LOCK}); wait for it to finish"
                ) from None
            time.sleep(1)


def _wait_idle(processes: list[ManagedProcess], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        for p in processes:
            if not p.alive():
                raise RuntimeError(f"{p.cmd[0]} died while Slurm was starting\n{p.log_tail()}")
        r = subprocess.run(
            ["sinfo", "-h", "-p", PARTITION, "-o", "%t"], capture_output=True, text=True
        )
        last = (r.stdout + r.stderr).strip()
        if r.returncode == 0 and last == "idle":
            return
        time.sleep(0.3)
    raise TimeoutError(f"Slurm's node did not become idle within {timeout}s (sinfo: {last})")


def start_slurm(workdir: Path) -> RunningSlurm:
    if os.geteuid() != 0:
        raise RuntimeError("the Slurm test fixture needs root (Slurm's daemons run as root)")
    for tool in ("slurmctld", "slurmd", "munged", "sinfo"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise RuntimeError(f"{tool} is missing: apt-get install slurm-wlm munge (make test)")
    workdir.mkdir(parents=True, exist_ok=True)
    lock_fd = _take_lock()
    # slurmd runs job scripts from its spool as the job's user: it must be reachable
    # by every user (pytest's tmp dirs are not), so state lives under /var/tmp
    shutil.rmtree(SLURM_STATE, ignore_errors=True)
    for sub in ("ctld", "d"):
        (SLURM_STATE / sub).mkdir(parents=True, exist_ok=True)
    for path in (SLURM_STATE.parent, SLURM_STATE, SLURM_STATE / "d"):
        os.chmod(path, 0o755)  # noqa: S103
    SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
    SLURM_CONF.write_text(slurm_conf(workdir, SLURM_STATE, os.cpu_count() or 1))
    munge_run = Path("/run/munge")
    munge_run.mkdir(exist_ok=True)
    shutil.chown(munge_run, "munge", "munge")
    munged = ManagedProcess(
        ["runuser", "-u", "munge", "--", "/usr/sbin/munged", "-F", "--force"],
        log=workdir / "munged.log",
    )
    processes = [munged]
    try:
        deadline = time.monotonic() + 20
        while not Path("/run/munge/munge.socket.2").exists():
            if not munged.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"munged did not start\n{munged.log_tail()}")
            time.sleep(0.1)
        processes.append(
            ManagedProcess(["/usr/sbin/slurmctld", "-D", "-i"], log=workdir / "slurmctld.out")
        )
        slurmd = ["/usr/sbin/slurmd", "-D", "-N", "localhost"]
        processes.append(ManagedProcess(slurmd, log=workdir / "slurmd.out"))
        _wait_idle(processes)
    except Exception:
        for p in reversed(processes):
            p.stop()
        os.close(lock_fd)
        raise
    return RunningSlurm(processes=processes, workdir=workdir, lock_fd=lock_fd)


def ensure_unix_user(name: str) -> tuple[pwd.struct_passwd, bool]:
    """The unix user ``name`` (created with a home if missing); True if created here."""
    try:
        return pwd.getpwnam(name), False
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True)
        return pwd.getpwnam(name), True


def remove_unix_user(name: str) -> None:
    subprocess.run(["userdel", "-r", "-f", name], capture_output=True, check=False)


def pinned_venv(path: Path, pins: list[str]) -> Path:
    """A venv at ``path`` that any user can run, with exactly ``pins`` installed by
    Debian's python3 (made again only when ``pins`` change; a stamp file records them).

    Called by ``batch_venv`` and ``dask_job_venv``: Slurm jobs run as other unix users,
    who cannot read the test venv."""
    stamp = path / "jhub-af-pins.txt"
    if stamp.exists() and stamp.read_text() == "\n".join(pins):
        return path
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    # job users must be able to run it
    os.chmod(path.parent, 0o755)  # noqa: S103
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(path)], check=True)
    subprocess.run(
        [str(path / "bin" / "pip"), "install", "-q", *pins],
        check=True,
        stdout=sys.stderr,
    )
    stamp.write_text("\n".join(pins))
    return path


def batch_venv() -> Path:
    """A venv any user can run, with the same jupyterhub and batchspawner as the tests."""
    import batchspawner
    import jupyter_server
    import jupyterhub

    pins = [
        f"jupyterhub=={jupyterhub.__version__}",
        f"jupyter-server=={jupyter_server.__version__}",
        f"batchspawner=={batchspawner.__version__}",
    ]
    return pinned_venv(BATCH_VENV, pins)


DASK_JOB_VENV = Path("/var/tmp/jhub-af-test/dask-job-venv")


def dask_job_venv() -> Path:
    """A venv any user can run, for Dask Gateway's Slurm jobs: the test venv's dask,
    distributed, dask-gateway (the scheduler's preload) and dask-gateway-server (its
    ``dask-gateway-jobqueue-launcher``, which the gateway runs through sudo as the user)."""
    from importlib.metadata import version

    names = ("dask", "distributed", "dask-gateway", "dask-gateway-server", "cloudpickle", "msgpack")
    return pinned_venv(DASK_JOB_VENV, [f"{name}=={version(name)}" for name in names])
