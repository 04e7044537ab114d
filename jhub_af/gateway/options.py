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
smallest is 1 core, 1 GiB, the default of the field); ``idle_timeout`` is the
seconds after which the cluster's scheduler stops an idle cluster (0: never). For
each of them the most generous value among the user's groups that set it wins,
otherwise the default. ``environments`` maps a name to environment variables the
scheduler and workers get (the local and Slurm backends); the default's and the
user's groups' are joined. ``partitions`` (Slurm, and other batch backends with a
``partition`` setting) lists the partitions or queues a user may submit to, joined
the same way (the default's first, then each group's in turn); the first is the
default choice. Without any, no partition is offered and the backend's own setting
holds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from dask_gateway_server.options import Float, Options, Select

from jhub_af.accounting import most_generous

GIB = 1024**3
DEFAULT = {"worker_cores": 1, "worker_memory": 2, "idle_timeout": 1800, "environments": {}}


class Bounded(Float):
    """dask-gateway's Float, refusing non-numbers and NaN with a sentence naming the field."""

    def validate(self, x):
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
            raise TypeError(f"{self.field} must be a number, got {str(x)[:20]!r}")
        return super().validate(float(x))


def bounds_for(settings: Mapping, groups) -> dict:
    """The bounds of a user with ``groups``, resolved as af-accounting resolves quotas:
    per key, the most generous value among the user's groups that set it, otherwise
    the default (a group can be stricter than the default)."""
    default = {**DEFAULT, **settings.get("default", {})}
    entries = [v for g, v in sorted(settings.get("groups", {}).items()) if g in set(groups)]
    out = {}
    for key in ("worker_cores", "worker_memory", "idle_timeout"):
        values = [float(e[key]) for e in entries if key in e]
        # an idle timeout of 0 means never culled: the most generous of all
        no_limit = 0 if key == "idle_timeout" else None
        out[key] = (
            float(most_generous(values, no_limit=no_limit)) if values else float(default[key])
        )
    out["environments"] = dict(default.get("environments", {}))
    out["partitions"] = list(default.get("partitions", []))
    for entry in entries:
        out["environments"].update(entry.get("environments", {}))
        out["partitions"] += [p for p in entry.get("partitions", []) if p not in out["partitions"]]
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
            config = {
                "worker_cores": options.worker_cores,
                "worker_memory": int(options.worker_memory * GIB),
                "idle_timeout": b["idle_timeout"],
                "environment": dict(b["environments"][options.environment]),
            }
            if b["partitions"]:
                config["partition"] = options.partition
            return config

        fields = [
            Bounded("worker_cores", default=1, min=1, max=b["worker_cores"], label="Worker cores"),
            Bounded("worker_memory", default=1, min=1, max=b["worker_memory"], label="GiB"),
            Select("environment", names, default=names[0], label="Environment"),
        ]
        if b["partitions"]:
            partitions = b["partitions"]
            fields.append(Select("partition", partitions, default=partitions[0], label="Partition"))
        return Options(*fields, handler=handler)

    return options_for
