"""The usage ledger: :class:`Ledger`, reservations and usage intervals in SQLite or
PostgreSQL, and the errors it refuses changes with."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from . import migrate
from .models import ACTIVE, EXPIRED, OPEN_STATES, PENDING, RELEASED, Reservation, ReservationGroup
from .policy import Decision
from .resources import Request
from .usage import GIB, HOUR, Totals, overlap_seconds, overlaps, totals_columns


class LedgerError(Exception):
    """A refusal about one reservation; ``status`` is the HTTP status to answer."""

    status = 400


class NotFound(LedgerError):
    """404: no reservation has this id."""

    status = 404


class NotYours(LedgerError):
    """403: another service made this reservation."""

    status = 403


class Conflict(LedgerError):
    """409: the reservation is not in a state that allows the change (lapsed, closed)."""

    status = 409


class LedgerUnavailable(Exception):
    """The database is locked for too long or cannot be reached; nothing was written."""


@dataclass(frozen=True)
class Running:
    """One server the hub says is running (for reconcile)."""

    user: str
    server: str
    started: float
    groups: tuple[str, ...] = ()
    # False while the hub is still starting it (its spawner has not reserved yet)
    ready: bool = True


def _make_engine(url: str, busy_timeout: float, immediate: bool, pool_size: int):
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": busy_timeout, "check_same_thread": False}
        )

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn, record):
            # we emit BEGIN ourselves (pysqlite's own would be deferred and too late)
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    ms = int(busy_timeout * 1000)
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=max(busy_timeout, 5),
        connect_args={"connect_timeout": 5, "options": f"-c lock_timeout={ms}"},
    )


class Ledger:
    """Reservations and usage, one database (``url``: ``sqlite:///...`` or ``postgresql+psycopg://``).

    Every change is one short transaction (:meth:`writing`). A database that is
    locked for longer than ``busy_timeout`` or unreachable raises
    :class:`LedgerUnavailable`, and nothing is written. Used by the service, in its
    thread pool, and by ``jhub-af usage``.
    """

    def __init__(self, url: str, *, busy_timeout: float = 10.0, pool_size: int = 8):
        self.url = url
        self.postgres = url.startswith("postgresql")
        self.engine = _make_engine(url, busy_timeout, True, pool_size)
        # SQLite readers need no write lock; PostgreSQL uses one engine for both
        self.read_engine = (
            self.engine if self.postgres else _make_engine(url, busy_timeout, False, pool_size)
        )
        self._write = sessionmaker(self.engine, expire_on_commit=False)
        self._read = sessionmaker(self.read_engine, expire_on_commit=False)

    def upgrade(self) -> None:
        """Bring the schema to the newest Alembic revision (the service calls it at start)."""
        with self._guard():
            migrate.upgrade(self.engine)

    def dispose(self) -> None:
        """Close the database connections."""
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()

    @contextlib.contextmanager
    def _guard(self):
        try:
            yield
        except (OperationalError, InterfaceError) as e:
            raise LedgerUnavailable(type(e.orig).__name__) from e

    @contextlib.contextmanager
    def writing(self):
        """A write transaction (``with ledger.writing() as session``); SQLite's is
        ``BEGIN IMMEDIATE``, which takes the database's only write lock at once."""
        with self._guard(), self._write.begin() as session:
            yield session

    @contextlib.contextmanager
    def reading(self):
        """A read transaction, which takes no write lock."""
        with self._guard(), self._read.begin() as session:
            yield session

    def _lock(self, session: Session, keys: Iterable[str]) -> None:
        # PostgreSQL: transaction-scoped advisory locks, in a fixed (sorted) order so that
        # two requests never wait on each other
        if not self.postgres:
            return  # BEGIN IMMEDIATE already holds the only write lock
        for key in sorted(set(keys)):
            session.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key}
            )

    # --- usage now -------------------------------------------------------

    @staticmethod
    def _at_once(session: Session, where, now: float) -> dict[str, float]:
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

    def _period_totals(
        self, session: Session, where, since: float, until: float, now: float
    ) -> Totals:
        row = session.execute(
            select(*totals_columns(since, until, now, self.postgres)).where(
                where, overlaps(since, until)
            )
        ).one()
        return Totals(*(float(x or 0) for x in row))

    def usage_of(self, session, user: str, since: float, until: float, now: float) -> dict:
        """What ``user`` uses at ``now`` (``servers``, ``cores``, ``gpus:t4`` ...) and the
        budgets used in [``since``, ``until``) (``core_hours``, ``gpu_hours``)."""
        usage = self._at_once(session, Reservation.user == user, now)
        t = self._period_totals(session, Reservation.user == user, since, until, now)
        return {**usage, "core_hours": t.core_hours, "gpu_hours": t.gpu_hours}

    def usage_of_group(self, session, group: str, since: float, until: float, now: float) -> dict:
        """As :meth:`usage_of`, summed over the reservations made by members of ``group``."""
        members = Reservation.id.in_(
            select(ReservationGroup.reservation_id).where(ReservationGroup.group == group)
        )
        usage = self._at_once(session, members, now)
        t = self._period_totals(session, members, since, until, now)
        return {**usage, "core_hours": t.core_hours, "gpu_hours": t.gpu_hours}

    # --- the life of a reservation ---------------------------------------

    def reserve(
        self,
        request: Request,
        groups: Iterable[str],
        client: str,
        decide: Callable[[Mapping, Mapping], Decision],
        *,
        period: tuple[float, float],
        total_groups: Iterable[str] = (),
        ttl: float = 900.0,
        now: float | None = None,
    ) -> tuple[Decision, Reservation | None]:
        """Decide and, if granted, record a pending reservation, atomically.

        Under a lock on the user and each group in ``total_groups`` (so concurrent
        requests never overcommit a quota), ``decide(usage, group_usage)`` gets the
        user's usage (at once and in ``period``) and that of each of those groups.
        Returns the :class:`Decision` and the new row (None when refused); the row is
        pending for ``ttl`` seconds until confirmed. Raises :class:`LedgerUnavailable`.
        Called by :meth:`.service.AccountingService.reserve`.
        """
        now = time.time() if now is None else now
        groups = sorted(set(groups))
        total_groups = sorted(set(total_groups))
        since, until = period
        with self.writing() as session:
            self._lock(session, [f"user:{request.user}"] + [f"group:{g}" for g in total_groups])
            usage = self.usage_of(session, request.user, since, until, now)
            group_usage = {
                g: self.usage_of_group(session, g, since, until, now) for g in total_groups
            }
            decision = decide(usage, group_usage)
            if not decision.granted:
                return decision, None
            row = _new_row(request, client, groups, state=PENDING, ttl=ttl, now=now)
            session.add(row)
        return decision, row

    def _owned(self, session: Session, rid: str, client: str) -> Reservation:
        row = session.get(Reservation, rid, with_for_update=self.postgres)
        if row is None:
            raise NotFound(f"There is no reservation {rid}.")
        if row.client != client:
            raise NotYours(f"Reservation {rid} was made by {row.client}; only it may change it.")
        return row

    def confirm(self, rid: str, client: str, *, ttl: float = 900.0, now: float | None = None):
        """The thing started: open its usage interval (idempotent while it runs)."""
        now = time.time() if now is None else now
        with self.writing() as session:
            row = self._owned(session, rid, client)
            if row.state == ACTIVE and row.expires > now:
                return row
            if row.state != PENDING or row.expires <= now:
                raise Conflict(
                    f"Reservation {rid} is {_state_words(row, now)}; make a new reservation."
                )
            row.state, row.started, row.last_seen, row.expires = ACTIVE, now, now, now + ttl
        return row

    def heartbeat(self, rid: str, client: str, *, ttl: float = 900.0, now: float | None = None):
        """The thing still runs: count it for another ``ttl`` seconds."""
        now = time.time() if now is None else now
        with self.writing() as session:
            row = self._owned(session, rid, client)
            if row.state != ACTIVE or row.expires <= now:
                raise Conflict(
                    f"Reservation {rid} is {_state_words(row, now)}; it cannot be renewed."
                )
            row.last_seen, row.expires = now, now + ttl
        return row

    def release(self, rid: str, client: str, *, now: float | None = None, reason: str = "released"):
        """The thing stopped (or never started): close the reservation and its interval."""
        now = time.time() if now is None else now
        with self.writing() as session:
            row = self._owned(session, rid, client)
            if row.state not in OPEN_STATES:
                raise Conflict(f"Reservation {rid} is already {_state_words(row, now)}.")
            _close(row, now, reason)
        return row

    def expire(self, now: float | None = None) -> int:
        """Close what was not confirmed or renewed in time; returns how many."""
        now = time.time() if now is None else now
        with self.writing() as session:
            rows = session.scalars(
                select(Reservation).where(
                    Reservation.state.in_(OPEN_STATES), Reservation.expires <= now
                )
            ).all()
            for row in rows:
                _close(row, now, "expired")
        return len(rows)

    def reconcile(
        self,
        running: Iterable[Running],
        client: str,
        adopt: Callable[[Running], Request],
        *,
        ttl: float = 900.0,
        now: float | None = None,
    ) -> dict[str, int]:
        """Make the server reservations match the hub's running servers.

        Closes intervals of servers that are gone, confirms pending ones that did
        start, keeps one interval per running server (later duplicates are voided),
        records servers that run (ready) without a reservation (``adopt`` sizes them),
        and renews all that run. A server the hub is still starting is left to its
        spawner, which reserves and confirms it.
        """
        now = time.time() if now is None else now
        report = {"closed": 0, "confirmed": 0, "voided": 0, "adopted": 0, "renewed": 0}
        by_key = {(s.user, s.server): s for s in running}
        with self.writing() as session:
            seen = set()
            for row in self._open_server_rows(session):
                outcome = _match_with_hub(row, by_key.get((row.user, row.server)), seen, ttl, now)
                if outcome:
                    report[outcome] += 1
            for key, server in by_key.items():
                if key in seen or not server.ready:
                    # a server still starting has no reservation yet: its spawner asks
                    continue
                session.add(_adopted_row(server, adopt(server), client, ttl, now))
                report["adopted"] += 1
        return report

    @staticmethod
    def _open_server_rows(session: Session) -> list[Reservation]:
        """Open server reservations, oldest start first (unstarted last): the first of a
        server's rows is the one reconcile keeps."""
        return session.scalars(
            select(Reservation)
            .where(Reservation.kind == "server", Reservation.state.in_(OPEN_STATES))
            .order_by(Reservation.started.is_(None), Reservation.started, Reservation.created)
        ).all()

    # --- reading ---------------------------------------------------------

    def open_reservations(self, user: str, now: float | None = None) -> list[Reservation]:
        """``user``'s reservations that are open at ``now``, oldest first."""
        now = time.time() if now is None else now
        with self.reading() as session:
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

    def intervals(self, user: str, since: float, until: float) -> list[Reservation]:
        """``user``'s reservations whose usage overlaps [``since``, ``until``)."""
        with self.reading() as session:
            return list(
                session.scalars(
                    select(Reservation).where(Reservation.user == user, overlaps(since, until))
                ).all()
            )

    def get(self, rid: str) -> Reservation | None:
        """The reservation ``rid``, or None."""
        with self.reading() as session:
            return session.get(Reservation, rid)

    def totals_by(
        self, by: str, since: float, until: float, now: float | None = None, name: str | None = None
    ) -> dict[str, Totals]:
        """Core-, GPU- and memory-hours in [since, until) per user (``by="user"``) or group."""
        now = time.time() if now is None else now
        cols = totals_columns(since, until, now, self.postgres)
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
            query = self._totals_of_every_group(since, until, now)
        with self.reading() as session:
            rows = session.execute(query).all()
        return {row[0]: Totals(*(float(x or 0) for x in row[1:])) for row in rows}

    def _totals_of_every_group(self, since: float, until: float, now: float):
        """Totals per group: the period's intervals first, then their groups.

        Joined the other way round (every group row, then its reservation), as
        SQLite plans the plain join, this took 2.2 s for 10,000 users and
        1,000,000 rows; the period's rows, materialised first, take 0.25 s.
        """
        r, g = Reservation, ReservationGroup
        seconds = overlap_seconds(since, until, now, self.postgres)
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

    def in_use_by(self, by: str, now: float | None = None) -> dict[str, dict[str, float]]:
        """What runs now, per user or group: cores, memory bytes, GPUs, servers, workers."""
        now = time.time() if now is None else now
        r = Reservation
        key = r.user if by == "user" else ReservationGroup.group
        query = select(
            key, func.sum(r.cores), func.sum(r.memory), func.sum(r.gpus), func.count()
        ).where(r.state.in_(OPEN_STATES), r.expires > now)
        if by != "user":
            query = query.join(ReservationGroup)
        with self.reading() as session:
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

    def usage_now(
        self, user: str, groups: Iterable[str], since: float, until: float, now: float | None = None
    ) -> tuple[dict, dict[str, dict]]:
        """What ``user`` uses (at once, and this period's budgets), and each of ``groups``
        as a whole: the numbers a decision reads, without deciding anything."""
        now = time.time() if now is None else now
        with self.reading() as session:
            usage = self.usage_of(session, user, since, until, now)
            group_usage = {
                g: self.usage_of_group(session, g, since, until, now) for g in sorted(set(groups))
            }
        return usage, group_usage

    def count_rows(self) -> int:
        """How many reservations the ledger holds (open and closed)."""
        with self.reading() as session:
            return session.scalar(select(func.count()).select_from(Reservation)) or 0


def _new_row(
    request: Request, client: str, groups: Iterable[str], *, state: str, ttl: float, now: float
) -> Reservation:
    """A new reservation row for ``request`` made by ``client``, open for ``ttl`` seconds."""
    res = request.resources
    gpu_type, gpus = next(iter(res.gpus.items()), ("", 0))
    return Reservation(
        id=secrets.token_hex(16),
        user=request.user,
        kind=request.kind,
        client=client,
        server=request.server,
        cores=res.cores,
        memory=res.memory,
        gpu_type=gpu_type,
        gpus=gpus,
        state=state,
        created=now,
        expires=now + ttl,
        end_reason="",
        groups=[ReservationGroup(group=g) for g in groups],
    )


def _adopted_row(server: Running, request: Request, client: str, ttl: float, now: float):
    """The active reservation of a server that runs without one, sized by ``request``."""
    row = _new_row(request, client, server.groups, state=ACTIVE, ttl=ttl, now=now)
    row.user, row.server, row.kind = server.user, server.server, "server"
    row.started, row.last_seen = min(server.started, now), now
    return row


def _match_with_hub(row: Reservation, server: Running | None, seen: set, ttl: float, now: float):
    """Bring one open server reservation in line with what the hub runs.

    Returns the report key of what was done (``closed``, ``voided``, ``confirmed``,
    ``renewed``), or None for a pending row whose server the hub is still starting
    (its spawner confirms it). Adds the row's server to ``seen`` when it keeps it.
    """
    key = (row.user, row.server)
    if server is None:
        _close(row, now, "not running", at_last_seen=True)
        return "closed"
    if key in seen:
        row.state, row.ended = EXPIRED, row.started or None
        row.end_reason = "duplicate"
        return "voided"
    seen.add(key)
    if row.state == PENDING and not server.ready:
        return None
    if row.state == PENDING:
        row.state, row.started = ACTIVE, max(server.started, row.created)
        outcome = "confirmed"
    else:
        outcome = "renewed"
    row.last_seen, row.expires = now, now + ttl
    return outcome


def _close(row: Reservation, now: float, reason: str, at_last_seen: bool = False) -> None:
    """Close a reservation; a running one's interval ends now (or when last seen)."""
    lapsed = row.expires <= now
    if row.state == ACTIVE:
        last = row.last_seen or row.started
        row.ended = last if (lapsed or at_last_seen) else now
    if lapsed:
        row.end_reason = "heartbeat lost" if row.state == ACTIVE else "not confirmed"
        row.state = EXPIRED
    else:
        row.state = RELEASED if reason == "released" else EXPIRED
        row.end_reason = reason


def _state_words(row: Reservation, now: float) -> str:
    if row.state in OPEN_STATES and row.expires <= now:
        return "expired"
    if row.state == RELEASED:
        return "released"
    if row.state == EXPIRED:
        return f"expired ({row.end_reason})"
    return {"pending": "not confirmed yet", "active": "running"}.get(row.state, row.state)
