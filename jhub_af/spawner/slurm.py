"""The slurm backend: a notebook as a Slurm job, through batchspawner's SlurmSpawner.

:func:`slurm_settings` is pure: profile -> ``req_*`` traits (partition, account,
QOS, walltime, cores, memory, GPUs as gres). :class:`GuardedSlurmSpawner` is
SlurmSpawner with the guards of :mod:`.batch`, the account and QOS lines its
script lacks, and progress messages that say where the job is.

Remote submission to an HPC login node is batchspawner's ``exec_prefix``, e.g.
``c.GuardedSlurmSpawner.exec_prefix = "ssh -o BatchMode=yes {{username}}@login.hpc"``.
"""

from __future__ import annotations

import asyncio

from batchspawner import SlurmSpawner
from traitlets import Unicode, default

from .batch import BatchGuards
from .options import Selection

JOB_SCRIPT = SlurmSpawner.batch_script.default_value.replace(
    "#SBATCH --export",
    "{% if account %}#SBATCH --account={{account}}\n{% endif %}"
    "{% if qos %}#SBATCH --qos={{qos}}\n{% endif %}"
    "#SBATCH --export",
)


def walltime(hours: int) -> str:
    """Whole hours -> Slurm's ``days-hours:minutes:seconds``."""
    return f"{hours // 24}-{hours % 24:02d}:00:00"


def gres(gpu_type: str, count: int) -> str:
    return f"gpu:{gpu_type}:{count}" if gpu_type else ""


def slurm_settings(selection: Selection) -> dict:
    """Profile -> SlurmSpawner ``req_*`` traits."""
    profile = selection.profile
    settings = {
        "req_partition": selection.partition,
        "req_account": profile.account,
        "req_qos": profile.qos,
        "req_runtime": walltime(selection.walltime_hours) if selection.walltime_hours else "",
        "req_nprocs": str(selection.cores),
        "req_memory": selection.memory,
        "req_gres": gres(profile.gpu_type, profile.gpu_count),
    }
    if profile.environment:
        settings["req_prologue"] = f"export PATH={profile.environment}/bin:$PATH"
    return settings


class GuardedSlurmSpawner(BatchGuards, SlurmSpawner):
    """batchspawner's SlurmSpawner with jhub_af's guards (see :mod:`.batch`)."""

    batch_script = Unicode(
        JOB_SCRIPT,
        config=True,
        help="""
        The job script, a Jinja2 template over the ``req_*`` values (without the
        ``req_`` prefix) and ``cmd``. Default: batchspawner's SlurmSpawner script
        with ``--account`` and ``--qos`` lines added. ``user_options`` never reach it.
        """,
    )

    @default("job_gone_pattern")
    def _job_gone(self):
        return r"Invalid job id specified"

    async def progress(self):
        while True:
            if self.state_ispending():
                partition = self.req_partition or "the default partition"
                yield {"message": f"Queued in Slurm (job {self.job_id}, {partition})"}
            elif self.state_isrunning():
                yield {"message": f"Slurm job {self.job_id} is running; waiting for the notebook"}
                return
            else:
                yield {"message": "Submitting the job to Slurm"}
            await asyncio.sleep(1)
