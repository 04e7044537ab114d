"""The quota policy: what admins write in config, and the pure rules that apply it.

- :class:`QuotaPolicy`: the four levels (``defaults``, ``groups``, ``users``,
  ``group_totals``), checked when the config loads;
- :func:`resolve` / :func:`effective_limits`: a user's limit of each dimension;
- :func:`decide`: grant or refuse a request (sentences in :mod:`.refusals`);
- :func:`remaining`: what is left of each dimension.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from traitlets import Dict, Float, Unicode, validate
from traitlets.config import LoggingConfigurable

from . import refusals
from .dimensions import (
    BUDGETS,
    DIMENSIONS,
    MEMORY_DIMS,
    PERIODS,
    UNLIMITED,
    Limit,
    dimension_of,
)
from .generosity import most_generous
from .refusals import ADVICE, SLACK, TOO_BIG_ADVICE
from .resources import BadRequest, Request, memory_bytes

__all__ = [
    "ADVICE",
    "BUDGETS",
    "DIMENSIONS",
    "MEMORY_DIMS",
    "TOO_BIG_ADVICE",
    "Decision",
    "Limit",
    "QuotaPolicy",
    "decide",
    "demand",
    "effective_limits",
    "remaining",
    "resolve",
]
# a level that does not mention a dimension (None means "unlimited", so it cannot say so)
NOT_SET = object()


@dataclass(frozen=True)
class Decision:
    """A grant or a refusal; a refusal's ``message`` is the sentence the user reads."""

    granted: bool
    reason: str = ""  # the dimension that refused (metrics label), "" when granted
    message: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)


def _checked_limit(value, where: str):
    """One limit of the config as the rules read it: None (unlimited), bytes, a number."""
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
    """One level of the policy (``where`` names it in errors), checked and normalised:
    memory in bytes, gpus a dict. Raises ``ValueError`` naming the option and the
    dimension at fault. Called by :class:`QuotaPolicy`'s validators."""
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
            out[dim] = {t: _checked_limit(v, f"{where}.gpus.{t}") for t, v in value.items()}
        elif isinstance(value, str) and value != "unlimited" and dim not in MEMORY_DIMS:
            raise ValueError(f"{where}.{dim} must be a number, 'unlimited' or null")
        else:
            out[dim] = _checked_limit(value, f"{where}.{dim}")
    return out


def level_value(level: Mapping, key: str):
    """The limit that one level sets for ``key`` (``gpus:t4`` reads the type's own entry,
    else ``"*"``), or :data:`NOT_SET` when the level does not mention it."""
    if key.startswith("gpus:"):
        gpus = level.get("gpus", {})
        return gpus.get(key[5:], gpus.get("*", NOT_SET))
    return level.get(key, NOT_SET)


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
        """The effective :class:`Limit` of ``key`` for ``user`` in ``groups`` (:func:`resolve`)."""
        return resolve(self, key, user, groups)

    def total_groups(self, groups: Iterable[str]) -> list[str]:
        """Those of ``groups`` that have a ``group_totals`` cap, sorted."""
        return sorted(g for g in groups if g in self.group_totals)

    def decider(self, request: Request, groups: Iterable[str]):
        """The decision function for ``request`` of a member of ``groups``.

        Returns ``decide(usage, group_usage) -> Decision``, which the ledger calls
        under its lock with the usage it read (:meth:`.ledger.Ledger.reserve`).
        Called by the service for every reservation.
        """
        groups = list(groups)
        limits = effective_limits(self, request.user, groups, request.resources.gpus)
        totals = {g: self.group_totals[g] for g in self.total_groups(groups)}

        def decide_with_usage(usage, group_usage):
            return decide(
                limits,
                usage,
                request,
                period=self.period,
                warn_at=self.warn_at,
                group_totals=totals,
                group_usage=group_usage,
            )

        return decide_with_usage


def resolve(policy: QuotaPolicy, key: str, user: str, groups: Iterable[str]) -> Limit:
    """The effective limit of one dimension (``gpus:t4`` for a GPU type) for a user.

    Per dimension: a value in ``users[user]`` wins, whatever the groups say; otherwise
    the most generous value among the user's groups that set it (:func:`most_generous`:
    unlimited, then the largest number; ``0`` forbids), and the limit names the first
    such group by name; otherwise ``defaults``; otherwise unlimited. A group that does
    not mention the dimension has no say in it. Returns a :class:`Limit`.
    """
    own = level_value(policy.users.get(user, {}), key)
    if own is not NOT_SET:
        return Limit(own, "user")
    by_group = [(g, level_value(policy.groups.get(g, {}), key)) for g in sorted(set(groups))]
    by_group = [(g, value) for g, value in by_group if value is not NOT_SET]
    if by_group:
        best = most_generous(value for _, value in by_group)
        return Limit(best, "group", next(g for g, value in by_group if value == best))
    default = level_value(policy.defaults, key)
    if default is not NOT_SET:
        return Limit(default, "default")
    return Limit(UNLIMITED, "none")


def effective_limits(
    policy: QuotaPolicy, user: str, groups: Iterable[str], gpu_types: Iterable[str] = ()
) -> dict[str, Limit]:
    """Every dimension's :class:`Limit` for ``user`` in ``groups``, keyed like ``usage``
    (``cores``, ``gpus:t4`` ...): GPU types named anywhere in the user's levels or in
    ``gpu_types``. Called by the service (decisions, ``policy/me``) and the usage pages."""
    groups = list(groups)
    types = set(gpu_types)
    for level in [policy.defaults, policy.users.get(user, {})] + [
        policy.groups.get(g, {}) for g in groups
    ]:
        types.update(t for t in level.get("gpus", {}) if t != "*")
    keys = [d for d in DIMENSIONS if d != "gpus"] + [f"gpus:{t}" for t in sorted(types)]
    return {key: resolve(policy, key, user, groups) for key in keys}


def demand(request: Request) -> dict[str, float]:
    """What ``request`` adds to each at-once dimension, keyed like ``usage``."""
    r = request.resources
    if request.kind == "server":
        out = {"servers": 1, "cores": r.cores, "memory": r.memory}
        out.update({f"gpus:{t}": n for t, n in r.gpus.items()})
        return out
    if request.kind == "dask-cluster":
        return {"dask_clusters": 1}
    return {"dask_workers": 1, "dask_cores": r.cores, "dask_memory": r.memory}


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
    user's groups that have a cap. The checks, in order: the user's own at-once
    limits, the groups' at-once totals, then the budgets (the user's and the
    groups'), which may add warnings at ``warn_at`` of a budget. Returns a
    :class:`Decision`; a refusal names the limit in a sentence (:mod:`.refusals`).
    Called by the decision function of :meth:`QuotaPolicy.decider`; pure.
    """
    wants = demand(request)
    group_totals, group_usage = group_totals or {}, group_usage or {}
    refusal = _over_own_limit(limits, usage, wants, period) or _over_group_total(
        wants, group_totals, group_usage
    )
    if refusal is not None:
        return refusal
    return _within_budgets(limits, usage, request, period, warn_at, group_totals, group_usage)


def _over_own_limit(limits, usage, wants, period: str) -> Decision | None:
    """The refusal of the first at-once dimension whose own limit ``wants`` exceeds."""
    for key, amount in wants.items():
        limit = limits[key]
        used = usage.get(key, 0)
        if limit.unlimited or used + amount <= limit.value + SLACK:
            continue
        message = refusals.over_own_limit(key, limit, used, amount, period)
        return Decision(False, dimension_of(key), message)
    return None


def _over_group_total(wants, group_totals, group_usage) -> Decision | None:
    """The refusal of the first group total (at once) that ``wants`` exceeds."""
    for group, caps in group_totals.items():
        in_group = group_usage.get(group, {})
        for key, amount in wants.items():
            cap = level_value(caps, key)
            if cap is NOT_SET or cap is None:
                continue
            used = in_group.get(key, 0)
            if used + amount > cap + SLACK:
                message = refusals.over_group_total(group, key, cap, used)
                return Decision(False, dimension_of(key), message)
    return None


def _budget_checks(key: str, limits, usage, group_totals, group_usage) -> Iterator[tuple]:
    """(limit, used, group) of budget ``key``: the user's own (group ""), then each total."""
    yield limits[key], usage.get(key, 0), ""
    for group, caps in group_totals.items():
        cap = caps.get(key, NOT_SET)
        if cap is not NOT_SET and cap is not None:
            used_by_group = group_usage.get(group, {}).get(key, 0)
            yield Limit(cap, "total", group), used_by_group, group


def _within_budgets(
    limits, usage, request: Request, period: str, warn_at: float, group_totals, group_usage
) -> Decision:
    """Refuse when a budget the request consumes is used up; else grant, with warnings."""
    consumes = {
        "core_hours": request.resources.cores > 0,
        "gpu_hours": request.resources.gpu_count > 0,
    }
    warnings = []
    for key in BUDGETS:
        if not consumes[key]:
            continue
        for limit, used, group in _budget_checks(key, limits, usage, group_totals, group_usage):
            if limit.unlimited:
                continue
            if used >= limit.value:
                return Decision(False, key, refusals.budget_spent(key, limit, used, period, group))
            if warn_at < 1 and used >= warn_at * limit.value:
                warnings.append(refusals.budget_warning(key, limit, used, period, group))
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
            cap = level_value(caps, key)
            if cap is NOT_SET or cap is None:
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
