"""The local backend: a notebook as a process on the hub's machine (the demo, the tests).

The life cycle is JupyterHub's own (``LocalProcessSpawner`` or, in the demo,
``SimpleLocalProcessSpawner``); this module only says what a profile means for it.
"""

from __future__ import annotations

from .options import Selection


def local_settings(selection: Selection) -> dict:
    """Profile -> local spawner traits. Limits are advertised to the notebook
    (``CPU_LIMIT``, ``MEM_LIMIT``), not enforced: a local process has no cgroup of its own."""
    profile = selection.profile
    return {
        "cpu_limit": float(selection.cores),
        "mem_limit": selection.memory,
        "cpu_guarantee": profile.cores_guarantee,
        "mem_guarantee": profile.memory_guarantee or None,
    }
