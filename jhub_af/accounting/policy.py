"""The quota policy: what admins write in config, and the pure rules that apply it.

A policy has four levels, each a YAML-friendly dict from a dimension to a limit:
``defaults``, ``groups`` (per VO group, applied to each member), ``users``
(per-user overrides) and ``group_totals`` (a cap on a whole group: the sum over
all its members).

The resolution rule, per dimension, for one user:

1. a value in ``users[name]`` wins, whatever the groups say;
2. otherwise the most generous value among the user's groups that set the
   dimension: ``None``/``"unlimited"`` is the most generous, then the largest
   number (``0`` forbids);
3. otherwise the value in ``defaults``;
4. otherwise the dimension is unlimited.

A group that does not mention a dimension has no say in it. ``group_totals``
are checked on top of that, for every group of the user that has one.

GPUs are limited per type: ``gpus: {t4: 1, "*": 0}``; within one level a type's
own entry wins over ``"*"``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from traitlets import Dict, Float, Unicode, validate
from traitlets.config import LoggingConfigurable

from .resources import BadRequest, Request, format_memory, memory_bytes

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
BUDGETS = ("core_hours", "gpu_hours")
MEMORY_DIMS = ("memory", "dask_memory")
PERIODS = ("day", "week", "month", "year")
UNLIMITED = None
_MISSING = object()


@dataclass(frozen=True)
class Limit:
    """One effective limit and where it came from (``user``, ``group``, ``default``, ``none``)."""

    value: float | None
    source: str
    group: str = ""

    @property
    def unlimited(self) -> bool:
        return self.value is None


@dataclass(frozen=True)
class Decision:
    granted: bool
    reason: str = ""  # the dimension that refused (metrics label), "" when granted
    message: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)


def _limit_value(value, where: str):
    if value is None or value == "unlimited":
        return UNLIMITED
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{where} must be a number, 'unlimited' or null, not {value!r}")
    if isinstance(value, str):
        try:
            return memory_bytes(value, where)
        except BadRequest as e:
            raise ValueError(str(e)) from None
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise ValueError(f"{where} must be a finite number >= 0, not {value!r}")
    return value


def check_level(level, where: str) -> dict:
    """One level of the policy, checked and normalised (memory in bytes, gpus a dict)."""
    if not isinstance(level, Mapping):
        raise ValueError(f"{where} must be a mapping from dimension to limit")
    out = {}
    for dim, value in level.items():
        if dim not in DIMENSIONS:
            known = ", ".join(DIMENSIONS)
            raise ValueError(f"{where} has unknown dimension {dim!r}; known: {known}")
        if dim == "gpus":
            if not isinstance(value, Mapping):
                raise ValueError(f'{where}.gpus must map GPU types to counts, like {{"t4": 1}}')
            out[dim] = {t: _limit_value(v, f"{where}.gpus.{t}") for t, v in value.items()}
        elif isinstance(value, str) and value != "unlimited" and dim not in MEMORY_DIMS:
            raise ValueError(f"{where}.{dim} must be a number, 'unlimited' or null")
        else:
            out[dim] = _limit_value(value, f"{where}.{dim}")
    return out


def _level_value(level: Mapping, key: str):
    if key.startswith("gpus:"):
        gpus = level.get("gpus", {})
        return gpus.get(key[5:], gpus.get("*", _MISSING))
    return level.get(key, _MISSING)


def _more_generous(a, b) -> bool:
    """Is limit a more generous than b (None = unlimited)?"""
    if a is None:
        return b is not None
    return b is not None and a > b


class QuotaPolicy(LoggingConfigurable):
    """Quota limits per default, group and user, and the period of the hour budgets."""

    defaults = Dict(
        config=True,
        help="""
        Limits for everyone, used for a dimension no group of the user and no user
        override sets. Dimensions: servers, cores, memory (bytes or "8G"), gpus
        (per type, {"t4": 1, "*": 0}), dask_clusters, dask_workers, dask_cores,
        dask_memory, core_hours and gpu_hours (per period). A limit is a number
        (0 forbids), or null / "unlimited". Default: {} (a dimension set nowhere
        is unlimited). Example: {"servers": 1, "cores": 4, "memory": "8G",
        "gpus": {"*": 0}, "core_hours": 500}.
        """,
    )
    groups = Dict(
        config=True,
        help="""
        Limits per VO group (JupyterHub group name, e.g. "/atlas/users"), applied to
        each member on their own. A user in several groups gets, per dimension, the
        most generous value among the groups that set it (unlimited beats any number).
        Example: {"/cms/gpu": {"gpus": {"t4": 1}, "gpu_hours": 100}}. Default: {}.
        """,
    )
    users = Dict(
        config=True,
        help="""
        Per-user overrides, by hub user name. A dimension set here wins over every
        group and the defaults, more generous or not. Example: {"alice": {"servers": 2}}.
        Default: {}.
        """,
    )
    group_totals = Dict(
        config=True,
        help="""
        Caps on a whole group: the sum over all its members at once (or over the
        period, for core_hours and gpu_hours) may not exceed them. Checked for every
        group of the user that has one, on top of the per-user limits.
        Example: {"/cms/gpu": {"gpus": {"t4": 4}}} (the group's four T4s). Default: {}.
        """,
    )
    period = Unicode(
        "month",
        config=True,
        help="""
        The period of the core_hours and gpu_hours budgets, in UTC: "day", "week"
        (from Monday), "month" (the default) or "year". Usage pages show this period.
        """,
    )
    warn_at = Float(
        0.8,
        config=True,
        help="""
        The soft threshold: a reservation granted while a budget (core_hours,
        gpu_hours) is used to this fraction or more carries a warning. Default 0.8
        (80%); 1 or more turns warnings off.
        """,
    )

    @validate("defaults")
    def _check_defaults(self, proposal):
        return check_level(proposal.value, "QuotaPolicy.defaults")

    @validate("groups", "users", "group_totals")
    def _check_levels(self, proposal):
        name = proposal.trait.name
        return {
            key: check_level(level, f"QuotaPolicy.{name}[{key!r}]")
            for key, level in proposal.value.items()
        }

    @validate("period")
    def _check_period(self, proposal):
        if proposal.value not in PERIODS:
            raise ValueError(f"QuotaPolicy.period must be one of {', '.join(PERIODS)}")
        return proposal.value

    @validate("warn_at")
    def _check_warn_at(self, proposal):
        if math.isnan(proposal.value) or proposal.value <= 0:
            raise ValueError("QuotaPolicy.warn_at must be a fraction > 0, like 0.8")
        return proposal.value

    def limit(self, key: str, user: str, groups: Iterable[str]) -> Limit:
        return resolve(self, key, user, groups)

    def total_groups(self, groups: Iterable[str]) -> list[str]:
        return sorted(g for g in groups if g in self.group_totals)

    def decider(self, request: Request, groups: Iterable[str]):
        """The decision function the ledger calls with (usage, group_usage) under its lock."""
        groups = list(groups)
        limits = effective_limits(self, request.user, groups, request.resources.gpus)
        totals = {g: self.group_totals[g] for g in self.total_groups(groups)}

        def _decide(usage, group_usage):
            return decide(
                limits,
                usage,
                request,
                period=self.period,
                warn_at=self.warn_at,
                group_totals=totals,
                group_usage=group_usage,
            )

        return _decide


def resolve(policy: QuotaPolicy, key: str, user: str, groups: Iterable[str]) -> Limit:
    """The effective limit of one dimension (``gpus:t4`` for a GPU type) for a user."""
    own = _level_value(policy.users.get(user, {}), key)
    if own is not _MISSING:
        return Limit(own, "user")
    best: Limit | None = None
    for group in sorted(set(groups)):
        value = _level_value(policy.groups.get(group, {}), key)
        if value is _MISSING:
            continue
        if best is None or _more_generous(value, best.value):
            best = Limit(value, "group", group)
    if best is not None:
        return best
    default = _level_value(policy.defaults, key)
    if default is not _MISSING:
        return Limit(default, "default")
    return Limit(UNLIMITED, "none")


def effective_limits(
    policy: QuotaPolicy, user: str, groups: Iterable[str], gpu_types: Iterable[str] = ()
) -> dict[str, Limit]:
    """Every dimension's limit for a user; GPU types named in the policy or in ``gpu_types``."""
    groups = list(groups)
    types = set(gpu_types)
    for level in [policy.defaults, policy.users.get(user, {})] + [
        policy.groups.get(g, {}) for g in groups
    ]:
        types.update(t for t in level.get("gpus", {}) if t != "*")
    keys = [d for d in DIMENSIONS if d != "gpus"] + [f"gpus:{t}" for t in sorted(types)]
    return {key: resolve(policy, key, user, groups) for key in keys}


def demand(request: Request) -> dict[str, float]:
    """What a request adds to each at-once dimension."""
    r = request.resources
    if request.kind == "server":
        out = {"servers": 1, "cores": r.cores, "memory": r.memory}
        out.update({f"gpus:{t}": n for t, n in r.gpus.items()})
        return out
    if request.kind == "dask-cluster":
        return {"dask_clusters": 1}
    return {"dask_workers": 1, "dask_cores": r.cores, "dask_memory": r.memory}


def _amount(key: str, value: float) -> str:
    dim = key.split(":")[0]
    if dim in MEMORY_DIMS:
        return f"{format_memory(value)} {DIMENSIONS[dim][0]}"
    one, many, _ = DIMENSIONS[dim]
    gpu_type = f"{key[5:]} " if dim == "gpus" else ""
    number = f"{value:g}" if dim not in BUDGETS else f"{value:.1f}".removesuffix(".0")
    return f"{number} {gpu_type}{one if value == 1 else many}"


def _number(key: str, value: float) -> str:
    if key.split(":")[0] in MEMORY_DIMS:
        return format_memory(value)
    return f"{value:.1f}".removesuffix(".0") if key in BUDGETS else f"{value:g}"


def _subject(limit: Limit, verb: str) -> str:
    if limit.source == "group":
        return f"Your group {limit.group} may {verb}"
    if limit.source == "user":
        return f"Your personal quota lets you {verb}"
    return f"The facility's default quota lets you {verb}"


def limit_sentence(key: str, limit: Limit, period: str = "month") -> str:
    """``Your group /cms/gpu may run 1 t4 GPU at a time`` (no full stop)."""
    verb = DIMENSIONS[key.split(":")[0]][2]
    if limit.value == 0:
        what = _amount(key, 2).split(" ", 1)[1]
        return f"{_subject(limit, verb)} no {what}"
    when = f"per {period}" if key in BUDGETS else "at a time"
    return f"{_subject(limit, verb)} {_amount(key, limit.value)} {when}"


ADVICE = "Stop something you no longer need, or ask your VO admin for a larger quota."
# the request alone is larger than the limit: stopping things would not help
TOO_BIG_ADVICE = "Choose a smaller profile or size, or ask your VO admin for a larger quota."
ZERO_ADVICE = "Ask your VO admin if you need it."
BUDGET_ADVICE = (
    "The budget starts again with the next {period}; ask your VO admin if you need more now."
)


def decide(
    limits: Mapping[str, Limit],
    usage: Mapping[str, float],
    request: Request,
    *,
    period: str = "month",
    warn_at: float = 0.8,
    group_totals: Mapping[str, Mapping] | None = None,
    group_usage: Mapping[str, Mapping[str, float]] | None = None,
) -> Decision:
    """Grant or refuse ``request`` given the user's limits and current usage.

    ``usage`` holds the at-once dimensions in use now and the budgets used this
    period; ``group_totals``/``group_usage`` are the caps and usage of the
    user's groups that have a cap. A refusal names the limit in a sentence.
    """
    wants = demand(request)
    for key, amount in wants.items():
        limit = limits[key]
        used = usage.get(key, 0)
        if limit.unlimited or used + amount <= limit.value + 1e-9:
            continue
        reason = key.split(":")[0]
        tail = f"you are using {_number(key, used)}" if used else "you are using none"
        counted = reason in ("servers", "gpus", "dask_clusters", "dask_workers")
        asked = "" if counted and amount == 1 else f" and asked for {_number(key, amount)} more"
        advice = TOO_BIG_ADVICE if amount > limit.value + 1e-9 else ADVICE
        message = f"{limit_sentence(key, limit, period)}; {tail}{asked}. {advice}"
        if limit.value == 0:
            message = f"{limit_sentence(key, limit, period)}. {ZERO_ADVICE}"
        return Decision(False, reason, message)
    for group, caps in (group_totals or {}).items():
        in_group = (group_usage or {}).get(group, {})
        for key, amount in wants.items():
            cap = _level_value(caps, key)
            if cap is _MISSING or cap is None:
                continue
            used = in_group.get(key, 0)
            if used + amount > cap + 1e-9:
                message = (
                    f"Group {group} may {DIMENSIONS[key.split(':')[0]][2]} "
                    f"{_amount(key, cap)} at a time across all its members; its members "
                    f"are using {_number(key, used)}. Try again when some are stopped."
                )
                return Decision(False, key.split(":")[0], message)
    consumes = {
        "core_hours": request.resources.cores > 0,
        "gpu_hours": request.resources.gpu_count > 0,
    }
    warnings = []
    for key in BUDGETS:
        if not consumes[key]:
            continue
        checks = [(limits[key], usage.get(key, 0), "")]
        for group, caps in (group_totals or {}).items():
            cap = caps.get(key, _MISSING)
            if cap is not _MISSING and cap is not None:
                used_by_group = (group_usage or {}).get(group, {}).get(key, 0)
                checks.append((Limit(cap, "total", group), used_by_group, group))
        for limit, used, group in checks:
            if limit.unlimited:
                continue
            if used >= limit.value:
                if group:
                    message = (
                        f"Group {group} has used its budget of {_amount(key, limit.value)} "
                        f"this {period} ({_number(key, used)} used). "
                        + BUDGET_ADVICE.format(period=period)
                    )
                else:
                    message = (
                        f"{limit_sentence(key, limit, period)}; you have used "
                        f"{_number(key, used)} this {period}. "
                        + BUDGET_ADVICE.format(period=period)
                    )
                return Decision(False, key, message)
            if warn_at < 1 and used >= warn_at * limit.value:
                owner = f"Group {group} has" if group else "You have"
                warnings.append(
                    f"{owner} used {_number(key, used)} of {_amount(key, limit.value)} "
                    f"this {period} ({used / limit.value:.0%})."
                )
    return Decision(True, warnings=tuple(warnings))


def remaining(
    limits: Mapping[str, Limit],
    usage: Mapping[str, float],
    *,
    group_totals: Mapping[str, Mapping] | None = None,
    group_usage: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, dict]:
    """What is left of each dimension: ``{"limit", "in_use", "left"}`` per key of ``limits``.

    ``limit`` is the user's own effective limit and ``in_use`` what the user uses
    now (budgets: this period); both are None/0 as they are. ``left`` is what the
    user may still take: the own limit minus the use, lowered by any group total
    of the user's groups (then ``capped_by`` names that group), never below 0;
    None when no limit applies at all (unlimited).
    """
    out = {}
    for key, limit in limits.items():
        used = float(usage.get(key, 0) or 0)
        left = None if limit.unlimited else max(0.0, limit.value - used)
        capped_by = ""
        for group, caps in sorted((group_totals or {}).items()):
            cap = _level_value(caps, key)
            if cap is _MISSING or cap is None:
                continue
            group_left = max(0.0, cap - float((group_usage or {}).get(group, {}).get(key, 0) or 0))
            if left is None or group_left < left:
                left, capped_by = group_left, group
        entry = {"limit": limit.value, "in_use": _plain(used), "left": _plain(left)}
        if capped_by:
            entry["capped_by"] = capped_by
        out[key] = entry
    return out


def _plain(value: float | None) -> float | int | None:
    """Whole numbers as ints (servers, bytes), the rest rounded for JSON."""
    if value is None:
        return None
    return int(value) if value == int(value) else round(value, 6)
