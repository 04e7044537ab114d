"""The ledger's read queries: what a user or a group uses now and in a period, totals
and use now per user or group, and listings of reservations.

Each function takes an open SQLAlchemy session (and ``postgres``, where SQLite and
PostgreSQL need different SQL) and returns plain values; it writes nothing and opens
no transaction. :class:`.ledger.Ledger` runs them inside its own transactions.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import OPEN_STATES, Reservation, ReservationGroup
from .usage import GIB, HOUR, Totals, overlap_seconds, overlaps, totals_columns

# --- usage that a decision reads ---------------------------------------------


def _usage_at_once(session: Session, where, now: float) -> dict[str, float]:
    """What the reservations matching ``where`` hold open at ``now``: ``servers``,
    ``cores``, ``memory``, ``gpus:<type>``, ``dask_clusters``, ``dask_workers``,
    ``dask_cores``, ``dask_memory`` (absent keys: nothing held)."""
    r = Reservation
    rows = session.execute(
        select(
            r.kind,
            r.gpu_type,
            func.count(),
            func.sum(r.cores),
            func.sum(r.memory),
            func.sum(r.gpus),
        )
        .where(where, r.state.in_(OPEN_STATES), r.expires > now)
        .group_by(r.kind, r.gpu_type)
    ).all()
    usage: dict[str, float] = {}

    def add(key, value):
        usage[key] = usage.get(key, 0) + (value or 0)

    for kind, gpu_type, count, cores, memory, gpus in rows:
        if kind == "server":
            add("servers", count)
            add("cores", cores)
            add("memory", memory)
            if gpu_type:
                add(f"gpus:{gpu_type}", gpus)
        elif kind == "dask-cluster":
            add("dask_clusters", count)
        else:
            add("dask_workers", count)
            add("dask_cores", cores)
            add("dask_memory", memory)
    return usage


def _usage_where(
    session: Session, where, since: float, until: float, now: float, postgres: bool
) -> dict:
    """:func:`_usage_at_once` of the reservations matching ``where``, plus the
    ``core_hours`` and ``gpu_hours`` they used in [``since``, ``until``)."""
    usage = _usage_at_once(session, where, now)
    row = session.execute(
        select(*totals_columns(since, until, now, postgres)).where(where, overlaps(since, until))
    ).one()
    period = Totals(*(float(x or 0) for x in row))
    return {**usage, "core_hours": period.core_hours, "gpu_hours": period.gpu_hours}


def user_usage(
    session: Session, user: str, since: float, until: float, now: float, postgres: bool
) -> dict:
    """What ``user`` uses at ``now`` (``servers``, ``cores``, ``gpus:t4`` ...) and the
    budgets used in [``since``, ``until``) (``core_hours``, ``gpu_hours``).

    Called by :meth:`.ledger.Ledger.usage_of` (inside a reservation's write lock, and
    for the usage pages)."""
    return _usage_where(session, Reservation.user == user, since, until, now, postgres)


def group_usage(
    session: Session, group: str, since: float, until: float, now: float, postgres: bool
) -> dict:
    """As :func:`user_usage`, summed over the reservations made by members of ``group``.

    Called by :meth:`.ledger.Ledger.usage_of_group`."""
    members = Reservation.id.in_(
        select(ReservationGroup.reservation_id).where(ReservationGroup.group == group)
    )
    return _usage_where(session, members, since, until, now, postgres)


# --- totals and use now, per user or group -----------------------------------


def totals_by(
    session: Session,
    by: str,
    since: float,
    until: float,
    now: float,
    postgres: bool,
    name: str | None = None,
) -> dict[str, Totals]:
    """Core-, GPU- and memory-hours in [``since``, ``until``) per user (``by="user"``)
    or per group (any other ``by``); only ``name`` when it is given.

    Called by :meth:`.ledger.Ledger.totals_by`."""
    cols = totals_columns(since, until, now, postgres)
    if by == "user":
        key = Reservation.user
        query = select(key, *cols).where(overlaps(since, until))
    else:
        key = ReservationGroup.group
        query = select(key, *cols).join(ReservationGroup).where(overlaps(since, until))
    if name is not None:
        query = query.where(key == name).group_by(key)
    elif by == "user":
        query = query.group_by(key)
    else:
        query = _totals_of_every_group(since, until, now, postgres)
    rows = session.execute(query).all()
    return {row[0]: Totals(*(float(x or 0) for x in row[1:])) for row in rows}


def _totals_of_every_group(since: float, until: float, now: float, postgres: bool):
    """Totals per group: the period's intervals first, then their groups.

    Joined the other way round (every group row, then its reservation), as
    SQLite plans the plain join, this took 2.2 s for 10,000 users and
    1,000,000 rows; the period's rows, materialised first, take 0.25 s.
    """
    r, g = Reservation, ReservationGroup
    seconds = overlap_seconds(since, until, now, postgres)
    period_rows = (
        select(
            r.id.label("rid"),
            (r.cores * seconds).label("core_s"),
            (r.gpus * seconds).label("gpu_s"),
            (r.memory * seconds).label("memory_s"),
        )
        .where(overlaps(since, until))
        .cte("period_rows")
        .prefix_with("MATERIALIZED")
    )
    c = period_rows.c
    return (
        select(
            g.group,
            func.coalesce(func.sum(c.core_s), 0.0) / HOUR,
            func.coalesce(func.sum(c.gpu_s), 0.0) / HOUR,
            func.coalesce(func.sum(c.memory_s), 0.0) / (HOUR * GIB),
        )
        .select_from(period_rows)
        .join(g, g.reservation_id == c.rid)
        .group_by(g.group)
    )


def in_use_by(session: Session, by: str, now: float) -> dict[str, dict[str, float]]:
    """What runs at ``now`` per user (``by="user"``) or group: ``cores``, ``memory``
    (bytes), ``gpus`` and ``reservations`` (how many).

    Called by :meth:`.ledger.Ledger.in_use_by`."""
    r = Reservation
    key = r.user if by == "user" else ReservationGroup.group
    query = select(
        key, func.sum(r.cores), func.sum(r.memory), func.sum(r.gpus), func.count()
    ).where(r.state.in_(OPEN_STATES), r.expires > now)
    if by != "user":
        query = query.join(ReservationGroup)
    rows = session.execute(query.group_by(key)).all()
    return {
        k: {
            "cores": float(c or 0),
            "memory": float(m or 0),
            "gpus": float(g or 0),
            "reservations": float(n),
        }
        for k, c, m, g, n in rows
    }


# --- listings ----------------------------------------------------------------


def open_reservations(session: Session, user: str, now: float) -> list[Reservation]:
    """``user``'s reservations that are open at ``now``, oldest first.

    Called by :meth:`.ledger.Ledger.open_reservations`."""
    return list(
        session.scalars(
            select(Reservation)
            .where(
                Reservation.user == user,
                Reservation.state.in_(OPEN_STATES),
                Reservation.expires > now,
            )
            .order_by(Reservation.created)
        ).all()
    )


def open_server_rows(session: Session) -> list[Reservation]:
    """Every open server reservation, oldest start first (unstarted last): the first of
    a server's rows is the one reconcile keeps.

    Called by :meth:`.ledger.Ledger.reconcile`, inside its write transaction."""
    return list(
        session.scalars(
            select(Reservation)
            .where(Reservation.kind == "server", Reservation.state.in_(OPEN_STATES))
            .order_by(Reservation.started.is_(None), Reservation.started, Reservation.created)
        ).all()
    )


def lapsed_open_rows(session: Session, now: float) -> list[Reservation]:
    """Open reservations that were not confirmed or renewed in time (expired by ``now``).

    Called by :meth:`.ledger.Ledger.expire`, inside its write transaction."""
    return list(
        session.scalars(
            select(Reservation).where(
                Reservation.state.in_(OPEN_STATES), Reservation.expires <= now
            )
        ).all()
    )


def intervals(session: Session, user: str, since: float, until: float) -> list[Reservation]:
    """``user``'s reservations whose usage overlaps [``since``, ``until``).

    Called by :meth:`.ledger.Ledger.intervals`."""
    return list(
        session.scalars(
            select(Reservation).where(Reservation.user == user, overlaps(since, until))
        ).all()
    )


def count_rows(session: Session) -> int:
    """How many reservations the ledger holds (open and closed).

    Called by :meth:`.ledger.Ledger.count_rows`."""
    return session.scalar(select(func.count()).select_from(Reservation)) or 0
