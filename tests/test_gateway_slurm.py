"""jhub_af's quota backend on dask-gateway-server's jobqueue Slurm backend, against the
real Slurm of the tests (slurmctld + slurmd, session fixture): schedulers and workers
are Slurm jobs of a real unix user, submitted through sudo and
``dask-gateway-jobqueue-launcher``; the per-user cap holds across clusters, and
stopping releases the jobs and the reservations."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import pytest
from harness import ensure_unix_user, remove_unix_user, wait_until
from harness.gateway_hub import (
    all_reservations,
    close_clusters,
    gateway,
    holds_nothing,
    open_reservations,
    rest,
    scale_warnings,
    start_gateway_facility,
)
from harness.slurm import SHARED_PARTITION, dask_job_venv

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="Slurm's daemons, sudo and job users need root"),
    # the jobs' python is Debian's 3.11.2, the test client's 3.11.x of the venv
    pytest.mark.filterwarnings("ignore:Mismatched versions found"),
]

USER = "afdask"  # a hub user and the unix user their jobs run as
USERS = {USER: {"groups": ["/atlas", "/atlas/users"]}}
POLICY = {"defaults": {"dask_clusters": 2, "dask_workers": 2}}
OPTIONS = {
    "default": {
        "worker_cores": 1,
        "worker_memory": 1,
        "idle_timeout": 0,
        "partitions": [SHARED_PARTITION],
    },
}
BACKEND = {
    "default_host": "127.0.0.1",
    "cluster_heartbeat_period": 2,
    "check_timeouts_period": 1.0,
    "worker_status_period": 1.0,
    "cluster_status_period": 1.0,
    "denied_retry_interval": 1.0,
    # a job's python starts slowly on a shared 2-core machine
    "cluster_start_timeout": 180,
    "worker_start_timeout": 180,
}


@pytest.fixture(scope="module")
def slurm_gateway(slurm_cluster, hub_factory, tmp_path_factory):
    venv = dask_job_venv()
    created = ensure_unix_user(USER)[1]
    facility = start_gateway_facility(
        hub_factory,
        tmp_path_factory.mktemp("gateway-slurm"),
        users=USERS,
        policy=POLICY,
        options=OPTIONS,
        backend_settings=BACKEND,
        backend="slurm",
        job_bin=str(venv / "bin"),
        cluster_settings={"scheduler_memory": "256 M"},
        stop_with_server=False,
    )
    yield facility
    close_clusters(facility)
    for job in slurm_cluster.jobs(USER):
        subprocess.run(["scancel", job], check=False)
    if created:
        remove_unix_user(USER)


def jobs(user: str = USER) -> dict[str, tuple[str, str]]:
    """The user's Slurm jobs: id -> (partition, name)."""
    out = subprocess.run(
        ["squeue", "-h", "-u", user, "-o", "%i %P %j"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return {i: (p, n) for i, p, n in (line.split() for line in out.splitlines())}


def staging_dir(name: str) -> Path:
    return Path(pwd.getpwnam(USER).pw_dir) / ".dask-gateway" / name


def test_slurm_clusters_share_the_users_worker_limit_and_stop_cleanly(slurm_gateway):
    g = gateway(slurm_gateway, USER)
    first = g.new_cluster()
    second = None
    try:
        # the scheduler is a job of the user, its TLS files staged in their home
        (scheduler_job,) = jobs()
        assert jobs()[scheduler_job] == (SHARED_PARTITION, "dask-gateway")
        assert staging_dir(first.name).joinpath("dask.crt").exists()
        assert staging_dir(first.name).stat().st_uid == pwd.getpwnam(USER).pw_uid
        messages = scale_warnings(first, 3)
        assert len(messages) == 1, messages
        assert "Scale request of 3 workers exceeds your Dask quota" in messages[0]
        assert "2 Dask workers" in messages[0]
        assert "Scaling to 2 instead" in messages[0]
        with first.get_client() as client:
            client.wait_for_workers(2, timeout=180)
            assert client.submit(sum, [1, 2, 3]).result(timeout=60) == 6
        assert len(jobs()) == 3  # a scheduler and two workers
        assert len(open_reservations(slurm_gateway, USER)) == 2

        # a second cluster gets no worker while the first holds the user's two
        second = g.new_cluster()
        messages = scale_warnings(second, 1)
        assert len(messages) == 1 and "Scaling to 0 instead" in messages[0], messages
        assert len(jobs()) == 4  # the second scheduler only
        # one worker less in the first: the second cluster's scheduler gets it
        first.scale(1)
        with second.get_client() as client:
            client.wait_for_workers(1, timeout=180)
        rows = open_reservations(slurm_gateway, USER)
        assert sorted(r[2] for r in rows) == sorted([first.name, second.name])
        wait_until(lambda: len(jobs()) == 4, what="the first cluster's second worker job ended")
    finally:
        first.shutdown()
        if second is not None:
            second.shutdown()
    wait_until(lambda: not jobs(), timeout=120, what="the user's Slurm jobs cancelled")
    wait_until(
        lambda: holds_nothing(slurm_gateway, USER),
        what="the reservations released",
    )
    assert not staging_dir(first.name).exists()


def test_forged_partition_refused_nothing_submitted(slurm_gateway):
    before = all_reservations(slurm_gateway)
    r = rest(
        slurm_gateway,
        "POST",
        "clusters/",
        USER,
        json={"cluster_options": {"partition": "debug"}},
    )
    assert r.status_code == 422, r.text
    assert "'debug' is not a valid option for partition" in r.json()["error"]
    assert all_reservations(slurm_gateway) == before
    assert jobs() == {}
