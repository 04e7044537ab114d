"""The condor backend, at configuration level only: batchspawner's CondorSpawner.

No HTCondor pool can run where jhub_af is tested (there is no Debian package,
and the PyPI wheel has bindings but no daemons), so this backend is checked
only as far as its settings and job description go. :func:`condor_settings` is
pure: profile -> ``req_*`` traits.
"""

from __future__ import annotations

from batchspawner import CondorSpawner
from traitlets import default

from .batch import BatchGuards
from .options import Selection


def condor_settings(selection: Selection) -> dict:
    """Profile -> CondorSpawner ``req_*`` traits (cores, memory in MB, GPUs)."""
    profile = selection.profile
    number, unit = int(selection.memory[:-1]), selection.memory[-1]
    megabytes = number * {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}[unit]
    settings = {
        "req_nprocs": str(selection.cores),
        "req_memory": str(max(1, int(megabytes))),
        "req_ngpus": str(profile.gpu_count) if profile.gpu_count else "",
    }
    if profile.gpu_count:
        settings["req_options"] = f"request_GPUs = {profile.gpu_count}"
    return settings


class GuardedCondorSpawner(BatchGuards, CondorSpawner):
    """batchspawner's CondorSpawner with jhub_af's guards (see :mod:`.batch`)."""

    @default("job_gone_pattern")
    def _job_gone(self):
        return r"(?i)no such job|doesn't exist"
