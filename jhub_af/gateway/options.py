"""Cluster options by group: what a user may choose for their Dask workers
(:func:`group_options`, with the bounds of :func:`bounds_for`)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from dask_gateway_server.options import Float, Options, Select

from jhub_af.accounting import most_generous

GIB = 1024**3
# the bounds of a user in no group, for settings without a "default"
DEFAULT = {"worker_cores": 1, "worker_memory": 2, "idle_timeout": 1800, "environments": {}}


class Bounded(Float):
    """dask-gateway's Float, refusing non-numbers and NaN with a sentence naming the field."""

    def validate(self, x):
        """``x`` as a float within the field's bounds; raises ``TypeError`` naming the
        field for a non-number (a bool included) or NaN, ``ValueError`` out of bounds.
        Called by dask-gateway-server's ``Options`` for each field a user sends."""
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
            raise TypeError(f"{self.field} must be a number, got {str(x)[:20]!r}")
        return super().validate(float(x))


def bounds_for(settings: Mapping, groups) -> dict:
    """The bounds of a user in ``groups`` under ``settings`` (see :func:`group_options`).

    Resolved as af-accounting resolves quotas: for ``worker_cores``, ``worker_memory``
    and ``idle_timeout`` the most generous value among the user's groups that set it
    (an idle timeout of 0, never, is the most generous), otherwise the default (a
    group can be stricter than the default). ``environments`` are joined (the
    default's, then each group's), and so are ``partitions`` (without repeats; the
    default's first). Returns ``{"worker_cores", "worker_memory", "idle_timeout":
    float, "environments": {name: env}, "partitions": [name]}``; ``environments`` is
    never empty (``{"default": {}}``). Called by the options handler of
    :func:`group_options` for each user.
    """
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
    """The ``c.Backend.cluster_options`` callable for ``settings``.

    For each user it offers worker cores, worker memory (GiB) and an environment
    (and a partition, when there are any), bounded by :func:`bounds_for` from the
    user's hub groups as JupyterHubAuthenticator reports them (never the request),
    and sets the scheduler's ``idle_timeout`` the same way. Settings::

        {
          "default": {"worker_cores": 1, "worker_memory": 2, "idle_timeout": 1800,
                      "environments": {"default": {}}},
          "groups": {"/atlas/users": {"worker_cores": 2, "worker_memory": 8,
                                      "environments": {"atlas": {"AF_IMAGE": "atlas"}}}},
        }

    ``worker_cores`` and ``worker_memory`` are the largest a user may ask for (the
    smallest is 1 core, 1 GiB, the default of the field); ``idle_timeout`` is the
    seconds after which the cluster's scheduler stops an idle cluster (0: never).
    ``environments`` maps a name to environment variables the scheduler and workers
    get (the local and Slurm backends). ``partitions`` (Slurm, and other batch
    backends with a ``partition`` setting) lists the partitions or queues a user may
    submit to; the first is the default choice; without any, no partition is offered
    and the backend's own setting holds. ``settings`` None: :data:`DEFAULT` for all.

    Returns ``options_for(user) -> dask_gateway_server.options.Options``. Named in
    the gateway's config (``jhub_af.gateway.options.group_options``); the callable is
    called by dask-gateway-server for every cluster request and options form.
    """
    settings = dict(settings or {"default": DEFAULT})

    def options_for(user):
        bounds = bounds_for(settings, user.groups)
        names = sorted(bounds["environments"])

        def cluster_config(options):
            config = {
                "worker_cores": options.worker_cores,
                "worker_memory": int(options.worker_memory * GIB),
                "idle_timeout": bounds["idle_timeout"],
                "environment": dict(bounds["environments"][options.environment]),
            }
            if bounds["partitions"]:
                config["partition"] = options.partition
            return config

        fields = [
            Bounded(
                "worker_cores", default=1, min=1, max=bounds["worker_cores"], label="Worker cores"
            ),
            Bounded("worker_memory", default=1, min=1, max=bounds["worker_memory"], label="GiB"),
            Select("environment", names, default=names[0], label="Environment"),
        ]
        if bounds["partitions"]:
            partitions = bounds["partitions"]
            fields.append(Select("partition", partitions, default=partitions[0], label="Partition"))
        return Options(*fields, handler=cluster_config)

    return options_for
