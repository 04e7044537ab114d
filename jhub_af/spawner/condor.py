"""The condor backend's spawner, at configuration level only: batchspawner's CondorSpawner.

No HTCondor pool can run where jhub_af is tested (there is no Debian package,
and the PyPI wheel has bindings but no daemons), so this backend is checked
only as far as its settings and job description go. What a profile means for
it is :func:`.batch_settings.condor_settings`.
"""

from __future__ import annotations

from batchspawner import CondorSpawner
from traitlets import default

from .batch import BatchGuards


class GuardedCondorSpawner(BatchGuards, CondorSpawner):
    """batchspawner's CondorSpawner with jhub_af's guards (see :mod:`.batch`)."""

    @default("job_gone_pattern")
    def _job_gone(self):
        return r"(?i)no such job|doesn't exist"
