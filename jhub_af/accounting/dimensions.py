"""The dimensions a quota limits, the words for them, and :class:`Limit`."""

from __future__ import annotations

from dataclasses import dataclass

# dimension -> (unit word for one, for many, verb)
DIMENSIONS = {
    "servers": ("server", "servers", "run"),
    "cores": ("core", "cores", "use"),
    "memory": ("of memory", "of memory", "use"),
    "gpus": ("GPU", "GPUs", "run"),
    "dask_clusters": ("Dask cluster", "Dask clusters", "run"),
    "dask_workers": ("Dask worker", "Dask workers", "run"),
    "dask_cores": ("Dask worker core", "Dask worker cores", "use"),
    "dask_memory": ("of Dask worker memory", "of Dask worker memory", "use"),
    "core_hours": ("core-hour", "core-hours", "use"),
    "gpu_hours": ("GPU-hour", "GPU-hours", "use"),
}
# budgets are used up over a period; every other dimension counts what runs at once
BUDGETS = ("core_hours", "gpu_hours")
MEMORY_DIMS = ("memory", "dask_memory")
# dimensions counted in whole things, where "asked for 1 more" says nothing
COUNTED = ("servers", "gpus", "dask_clusters", "dask_workers")
PERIODS = ("day", "week", "month", "year")
UNLIMITED = None


def dimension_of(key: str) -> str:
    """The dimension of a limit key: ``gpus`` for ``gpus:t4``, the key itself otherwise."""
    return key.split(":")[0]


@dataclass(frozen=True)
class Limit:
    """One effective limit and where it came from.

    ``source`` is ``user``, ``group`` (then ``group`` names it), ``default``, ``none``
    (nothing sets it: unlimited) or ``total`` (a group total, in budget checks).
    """

    value: float | None
    source: str
    group: str = ""

    @property
    def unlimited(self) -> bool:
        """True when nothing limits this dimension (``value`` is None)."""
        return self.value is None
