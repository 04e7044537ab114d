"""What a profile means for the batch backends: ``req_*`` traits, without batchspawner.

Pure functions, like :mod:`.kube` and :mod:`.local`; the spawners that use these
traits are in :mod:`.slurm` and :mod:`.condor`, which import batchspawner.
"""

from __future__ import annotations

from jhub_af.accounting import memory_bytes

from .options import Selection


def walltime(hours: int) -> str:
    """Whole hours -> Slurm's ``days-hours:minutes:seconds``, e.g. 26 -> ``1-02:00:00``."""
    return f"{hours // 24}-{hours % 24:02d}:00:00"


def gres(gpu_type: str, count: int) -> str:
    """A Slurm generic resource for ``count`` GPUs of ``gpu_type``; "" for no GPU type."""
    return f"gpu:{gpu_type}:{count}" if gpu_type else ""


def slurm_settings(selection: Selection) -> dict:
    """Profile -> SlurmSpawner ``req_*`` traits (partition, account, QOS, walltime, cores,
    memory, GPUs as gres, and a prologue that puts the profile's environment on PATH).

    Called by ProfileSpawner for a slurm profile at every start.
    """
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


def condor_settings(selection: Selection) -> dict:
    """Profile -> CondorSpawner ``req_*`` traits (cores, memory in whole MiB, at least 1,
    GPUs). Raises :class:`jhub_af.accounting.BadRequest` for memory above 64 TiB.

    Called by ProfileSpawner for a condor profile at every start.
    """
    profile = selection.profile
    settings = {
        "req_nprocs": str(selection.cores),
        "req_memory": str(max(1, memory_bytes(selection.memory) // 2**20)),
        "req_ngpus": str(profile.gpu_count) if profile.gpu_count else "",
    }
    if profile.gpu_count:
        settings["req_options"] = f"request_GPUs = {profile.gpu_count}"
    return settings
