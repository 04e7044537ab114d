"""The usage ledger: :class:`Ledger`, reservations and usage intervals in SQLite or
PostgreSQL, and the errors it refuses changes with.

Its read queries are in :mod:`.ledger_queries`, how one row is made and changes state
in :mod:`.reservation_rows`; this module holds the connections, the transactions and
the locks."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping

from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from . import ledger_queries, migrate
from .models import ACTIVE, OPEN_STATES, PENDING, Reservation
from .policy import Decision
from .reservation_rows import (
    Running,
    adopted_row,
    close_row,
    match_with_hub,
    new_row,
    state_words,
)
from .resources import Request
from .usage import Totals


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

    def usage_of(self, session, user: str, since: float, until: float, now: float) -> dict:
        """What ``user`` uses at ``now`` (``servers``, ``cores``, ``gpus:t4`` ...) and the
        budgets used in [``since``, ``until``) (``core_hours``, ``gpu_hours``), read in
        ``session`` (:func:`.ledger_queries.user_usage`)."""
        return ledger_queries.user_usage(session, user, since, until, now, self.postgres)

    def usage_of_group(self, session, group: str, since: float, until: float, now: float) -> dict:
        """As :meth:`usage_of`, summed over the reservations made by members of ``group``."""
        return ledger_queries.group_usage(session, group, since, until, now, self.postgres)

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
            row = new_row(request, client, groups, state=PENDING, ttl=ttl, now=now)
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
        """The thing started: open its usage interval (idempotent while it runs).

        Returns the row. Raises :class:`NotFound`, :class:`NotYours` (``client`` did not
        make it), :class:`Conflict` (lapsed or closed) or :class:`LedgerUnavailable`.
        Called by the service's ``POST .../confirm``.
        """
        now = time.time() if now is None else now
        with self.writing() as session:
            row = self._owned(session, rid, client)
            if row.state == ACTIVE and row.expires > now:
                return row
            if row.state != PENDING or row.expires <= now:
                raise Conflict(
                    f"Reservation {rid} is {state_words(row, now)}; make a new reservation."
                )
            row.state, row.started, row.last_seen, row.expires = ACTIVE, now, now, now + ttl
        return row

    def heartbeat(self, rid: str, client: str, *, ttl: float = 900.0, now: float | None = None):
        """The thing still runs: count it for another ``ttl`` seconds.

        Returns the row; raises as :meth:`confirm` (:class:`Conflict` unless it is active
        and not lapsed). Called by the service's ``POST .../heartbeat``.
        """
        now = time.time() if now is None else now
        with self.writing() as session:
            row = self._owned(session, rid, client)
            if row.state != ACTIVE or row.expires <= now:
                raise Conflict(
                    f"Reservation {rid} is {state_words(row, now)}; it cannot be renewed."
                )
            row.last_seen, row.expires = now, now + ttl
        return row

    def release(self, rid: str, client: str, *, now: float | None = None, reason: str = "released"):
        """The thing stopped (or never started): close the reservation and its interval.

        Returns the row; raises as :meth:`confirm` (:class:`Conflict` when it is already
        closed). Called by the service's ``DELETE`` of a reservation.
        """
        now = time.time() if now is None else now
        with self.writing() as session:
            row = self._owned(session, rid, client)
            if row.state not in OPEN_STATES:
                raise Conflict(f"Reservation {rid} is already {state_words(row, now)}.")
            close_row(row, now, reason)
        return row

    def expire(self, now: float | None = None) -> int:
        """Close what was not confirmed or renewed in time; returns how many.
        Raises :class:`LedgerUnavailable`. Called by the service's housekeeping loop."""
        now = time.time() if now is None else now
        with self.writing() as session:
            rows = ledger_queries.lapsed_open_rows(session, now)
            for row in rows:
                close_row(row, now, "expired")
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
        spawner, which reserves and confirms it. Returns how many rows had each
        outcome (``closed``, ``confirmed``, ``voided``, ``adopted``, ``renewed``).
        Raises :class:`LedgerUnavailable`. Called by the service's reconcile with the hub.
        """
        now = time.time() if now is None else now
        report = {"closed": 0, "confirmed": 0, "voided": 0, "adopted": 0, "renewed": 0}
        by_key = {(s.user, s.server): s for s in running}
        with self.writing() as session:
            seen = set()
            for row in ledger_queries.open_server_rows(session):
                outcome = match_with_hub(row, by_key.get((row.user, row.server)), seen, ttl, now)
                if outcome:
                    report[outcome] += 1
            for key, server in by_key.items():
                if key in seen or not server.ready:
                    # a server still starting has no reservation yet: its spawner asks
                    continue
                session.add(adopted_row(server, adopt(server), client, ttl, now))
                report["adopted"] += 1
        return report

    # --- reading (the queries: :mod:`.ledger_queries`) ----------------------

    def open_reservations(self, user: str, now: float | None = None) -> list[Reservation]:
        """``user``'s reservations that are open at ``now``, oldest first."""
        now = time.time() if now is None else now
        with self.reading() as session:
            return ledger_queries.open_reservations(session, user, now)

    def intervals(self, user: str, since: float, until: float) -> list[Reservation]:
        """``user``'s reservations whose usage overlaps [``since``, ``until``)."""
        with self.reading() as session:
            return ledger_queries.intervals(session, user, since, until)

    def get(self, rid: str) -> Reservation | None:
        """The reservation ``rid``, or None."""
        with self.reading() as session:
            return session.get(Reservation, rid)

    def totals_by(
        self, by: str, since: float, until: float, now: float | None = None, name: str | None = None
    ) -> dict[str, Totals]:
        """Core-, GPU- and memory-hours in [since, until) per user (``by="user"``) or group."""
        now = time.time() if now is None else now
        with self.reading() as session:
            return ledger_queries.totals_by(session, by, since, until, now, self.postgres, name)

    def in_use_by(self, by: str, now: float | None = None) -> dict[str, dict[str, float]]:
        """What runs now, per user or group: cores, memory bytes, GPUs, reservations."""
        now = time.time() if now is None else now
        with self.reading() as session:
            return ledger_queries.in_use_by(session, by, now)

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
            return ledger_queries.count_rows(session)
