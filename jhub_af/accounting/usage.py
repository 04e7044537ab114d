"""Periods, and the integration of usage intervals into core-, GPU- and memory-hours, in
Python (:func:`integrate`) and as SQL sums (:func:`totals_columns`), so that a page for
10,000 users reads aggregates, not rows."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import case, func

from .models import ACTIVE, Reservation

HOUR = 3600.0
GIB = 1024**3


def period_bounds(period: str, now: float) -> tuple[float, float]:
    """Start and end (UTC epoch seconds) of the ``day``/``week``/``month``/``year`` holding now."""
    t = datetime.fromtimestamp(now, timezone.utc)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start, end = day, day + timedelta(days=1)
    elif period == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    elif period == "month":
        start = day.replace(day=1)
        end = start + timedelta(days=calendar.monthrange(t.year, t.month)[1])
    elif period == "year":
        start = day.replace(month=1, day=1)
        end = start.replace(year=t.year + 1)
    else:
        raise ValueError(f"unknown period {period!r}")
    return start.timestamp(), end.timestamp()


@dataclass(frozen=True)
class Totals:
    """Core-, GPU- and memory-GiB-hours of a user or group over a period."""

    core_hours: float = 0.0
    gpu_hours: float = 0.0
    memory_gib_hours: float = 0.0

    def as_json(self) -> dict:
        """The totals rounded for JSON."""
        return {
            "core_hours": round(self.core_hours, 6),
            "gpu_hours": round(self.gpu_hours, 6),
            "memory_gib_hours": round(self.memory_gib_hours, 6),
        }


def _least(a, b, postgres: bool):
    # scalar two-argument min/max: SQLite's min()/max(), PostgreSQL's least()/greatest()
    return func.least(a, b) if postgres else func.min(a, b)


def _greatest(a, b, postgres: bool):
    return func.greatest(a, b) if postgres else func.max(a, b)


def interval_end(now: float):
    """SQL: where an interval ends for counting (ended, or now, or its last heartbeat)."""
    lapsed = (Reservation.state == ACTIVE) & (Reservation.expires < now)
    still_open = case(
        (lapsed, func.coalesce(Reservation.last_seen, Reservation.started)), else_=now
    )
    return func.coalesce(Reservation.ended, still_open)


def overlap_seconds(since: float, until: float, now: float, postgres: bool = False):
    """SQL: seconds of each interval inside [since, until)."""
    end = _least(interval_end(now), until, postgres)
    start = _greatest(Reservation.started, since, postgres)
    return _greatest(end - start, 0.0, postgres)


def overlaps(since: float, until: float):
    """SQL filter: intervals that may overlap [since, until) (index-friendly)."""
    return (
        Reservation.started.is_not(None)
        & (Reservation.started < until)
        & (Reservation.ended.is_(None) | (Reservation.ended > since))
    )


def totals_columns(since: float, until: float, now: float, postgres: bool = False):
    """SQL sums of core-, GPU- and memory-GiB-hours in [since, until): an interval counts
    from ``started`` to ``ended``; one still open up to ``now`` or, if its heartbeat
    lapsed, up to when it was last seen. Called by the ledger's usage queries."""
    seconds = overlap_seconds(since, until, now, postgres)
    return (
        func.coalesce(func.sum(Reservation.cores * seconds), 0.0) / HOUR,
        func.coalesce(func.sum(Reservation.gpus * seconds), 0.0) / HOUR,
        func.coalesce(func.sum(Reservation.memory * seconds), 0.0) / (HOUR * GIB),
    )


def integrate(rows, since: float, until: float, now: float) -> Totals:
    """The same integration in Python, over reservation rows (for charts and checks)."""
    core = gpu = mem = 0.0
    for r in rows:
        if r.started is None:
            continue
        end = r.ended
        if end is None:
            lapsed = r.state == ACTIVE and r.expires < now
            end = (r.last_seen or r.started) if lapsed else now
        seconds = max(0.0, min(end, until) - max(r.started, since))
        core += r.cores * seconds
        gpu += r.gpus * seconds
        mem += r.memory * seconds
    return Totals(core / HOUR, gpu / HOUR, mem / (HOUR * GIB))


def daily_core_hours(rows, since: float, until: float, now: float) -> list[tuple[float, float]]:
    """(day start, core-hours that day) for each day of [since, until) up to now."""
    out = []
    day = since
    while day < min(until, now):
        nxt = min(day + 86400.0, until)
        out.append((day, integrate(rows, day, nxt, now).core_hours))
        day = nxt
    return out
