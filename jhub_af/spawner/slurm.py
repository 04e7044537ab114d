"""The slurm backend's spawner: a notebook as a Slurm job, through batchspawner.

:class:`GuardedSlurmSpawner` is SlurmSpawner with the guards of :mod:`.batch`,
the account and QOS lines its script lacks, and progress messages that say where
the job is. What a profile means for it is :func:`.batch_settings.slurm_settings`.

Remote submission to an HPC login node is batchspawner's ``exec_prefix``, e.g.
``c.GuardedSlurmSpawner.exec_prefix = "ssh -o BatchMode=yes {{username}}@login.hpc"``.
"""

from __future__ import annotations

import asyncio

from batchspawner import SlurmSpawner
from traitlets import Unicode, default

from .batch import BatchGuards

JOB_SCRIPT = SlurmSpawner.batch_script.default_value.replace(
    "#SBATCH --export",
    "{% if account %}#SBATCH --account={{account}}\n{% endif %}"
    "{% if qos %}#SBATCH --qos={{qos}}\n{% endif %}"
    "#SBATCH --export",
)


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
        """JupyterHub's progress hook: where the job is (queued, running, submitting)."""
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
