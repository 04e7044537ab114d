"""Cluster options by group: what a user may choose for their Dask workers.

``group_options(settings)`` returns the gateway's ``cluster_options`` callable. For
each user it offers worker cores, worker memory (GiB) and an environment, bounded by
the most generous of ``settings["default"]`` and the entries of the user's groups
(the hub's groups, as JupyterHubAuthenticator reports them; never the request), and
sets the scheduler's ``idle_timeout`` the same way. Settings::

    {
      "default": {"worker_cores": 1, "worker_memory": 2, "idle_timeout": 1800,
                  "environments": {"default": {}}},
      "groups": {"/atlas/users": {"worker_cores": 2, "worker_memory": 8,
                                  "environments": {"atlas": {"AF_IMAGE": "atlas"}}}},
    }

``worker_cores`` and ``worker_memory`` are the largest a user may ask for (the
smallest is 1 core, 1 GiB, the default of the field); ``environments`` maps a name
to environment variables the scheduler and workers get (the local and Slurm
backends) and are joined over the user's groups; ``idle_timeout`` in seconds (0: never).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from dask_gateway_server.options import Float, Options, Select

GIB = 1024**3
DEFAULT = {"worker_cores": 1, "worker_memory": 2, "idle_timeout": 1800, "environments": {}}


class Bounded(Float):
    """dask-gateway's Float, refusing non-numbers and NaN with a sentence naming the field."""

    def validate(self, x):
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
            raise TypeError(f"{self.field} must be a number, got {str(x)[:20]!r}")
        return super().validate(float(x))


def bounds_for(settings: Mapping, groups) -> dict:
    """The bounds a user with ``groups`` gets: the most generous value per key."""
    entries = [settings.get("default", DEFAULT)]
    entries += [v for g, v in sorted(settings.get("groups", {}).items()) if g in set(groups)]
    out = {"worker_cores": 1, "worker_memory": 1, "idle_timeout": 0, "environments": {}}
    for entry in entries:
        for key in ("worker_cores", "worker_memory"):
            if key in entry:
                out[key] = max(out[key], float(entry[key]))
        if "idle_timeout" in entry:
            # 0 is "never", the most generous
            current, value = out["idle_timeout"], float(entry["idle_timeout"])
            if entry is entries[0] or (current and (value == 0 or value > current)):
                out["idle_timeout"] = value
        out["environments"].update(entry.get("environments", {}))
    if not out["environments"]:
        out["environments"] = {"default": {}}
    return out


def group_options(settings: Mapping | None = None):
    """The ``c.Backend.cluster_options`` callable for ``settings`` (see the module)."""
    settings = dict(settings or {"default": DEFAULT})

    def options_for(user):
        b = bounds_for(settings, user.groups)
        names = sorted(b["environments"])

        def handler(options):
            return {
                "worker_cores": options.worker_cores,
                "worker_memory": int(options.worker_memory * GIB),
                "idle_timeout": b["idle_timeout"],
                "environment": dict(b["environments"][options.environment]),
            }

        return Options(
            Bounded("worker_cores", default=1, min=1, max=b["worker_cores"], label="Worker cores"),
            Bounded("worker_memory", default=1, min=1, max=b["worker_memory"], label="GiB"),
            Select("environment", names, default=names[0], label="Environment"),
            handler=handler,
        )

    return options_for
