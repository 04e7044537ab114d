"""The ledger on SQLite and on a real PostgreSQL: migrations, the life of a reservation,
200 concurrent requests against one user's and one group's limit, expiry, heartbeats,
reconcile after a crash, integration into hours cut at period boundaries, and a
database that is locked."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, inspect, text

from jhub_af.accounting import QuotaPolicy, migrate
from jhub_af.accounting.ledger import (
    Conflict,
    Ledger,
    LedgerUnavailable,
    NotFound,
    NotYours,
    Running,
)
from jhub_af.accounting.resources import parse_request
from jhub_af.accounting.usage import integrate, period_bounds

HOUR = 3600.0
NOW = 1_780_000_000.0  # a fixed "now" in 2026, so periods are reproducible
PERIOD = period_bounds("month", NOW)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    pg = request.getfixturevalue("postgres")
    return pg.create_database(f"ledger_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def ledger(db_url):
    ledger = Ledger(db_url, busy_timeout=30)
    ledger.upgrade()
    yield ledger
    ledger.dispose()


def server(user, cores=1, gpus=None, name=""):
    body = {
        "user": user,
        "kind": "server",
        "server": name,
        "resources": {"cores": cores, "memory": "1G", "gpus": gpus or {}},
    }
    return parse_request(body)


def reserve(ledger, request, groups, policy, now=NOW, client="hub"):
    _decide = policy.decider(request, groups)

    return ledger.reserve(
        request,
        groups,
        client,
        _decide,
        period=PERIOD,
        total_groups=policy.total_groups(groups),
        now=now,
    )


def test_migrations_create_the_schema_and_are_idempotent(ledger, db_url):
    ledger.upgrade()  # again: nothing to do
    engine = create_engine(db_url)
    assert migrate.current(engine) == migrate.head() == "0001"
    tables = set(inspect(engine).get_table_names())
    assert {"af_reservations", "af_reservation_groups", "alembic_version"} <= tables
    engine.dispose()


def test_life_of_a_reservation(ledger):
    policy = QuotaPolicy(defaults={"servers": 1})
    d, r = reserve(ledger, server("alice", 2), ["/atlas"], policy)
    assert d.granted and r.state == "pending" and r.started is None
    assert ledger.confirm(r.id, "hub", now=NOW + 10).state == "active"
    # confirming again while it runs changes nothing
    assert ledger.confirm(r.id, "hub", now=NOW + 20).started == NOW + 10
    for t in (800, 1600, 2400, 3200):
        ledger.heartbeat(r.id, "hub", now=NOW + t)
    done = ledger.release(r.id, "hub", now=NOW + 3610)
    assert (done.state, done.started, done.ended) == ("released", NOW + 10, NOW + 3610)
    totals = ledger.totals_by("user", *PERIOD, now=NOW + 4000)["alice"]
    assert totals.core_hours == pytest.approx(2.0)
    assert ledger.totals_by("group", *PERIOD, now=NOW + 4000)["/atlas"].core_hours == (
        pytest.approx(2.0)
    )


def test_release_replayed_or_by_another_client_changes_nothing(ledger):
    policy = QuotaPolicy()
    _, r = reserve(ledger, server("alice"), [], policy)
    ledger.confirm(r.id, "hub", ttl=2 * HOUR, now=NOW)
    with pytest.raises(NotYours, match=f"Reservation {r.id} was made by hub; only it may"):
        ledger.release(r.id, "dask-gateway", now=NOW + 5)
    assert ledger.get(r.id).state == "active"
    ledger.release(r.id, "hub", now=NOW + HOUR)
    with pytest.raises(Conflict, match=f"Reservation {r.id} is already released."):
        ledger.release(r.id, "hub", now=NOW + 2 * HOUR)
    assert ledger.get(r.id).ended == NOW + HOUR
    with pytest.raises(NotFound, match=r"There is no reservation 00ff\."):
        ledger.release("00ff", "hub")


def test_unconfirmed_reservation_expires_and_frees_the_quota(ledger):
    policy = QuotaPolicy(defaults={"servers": 1})
    _, r = reserve(ledger, server("bob"), [], policy)
    d, _ = reserve(ledger, server("bob"), [], policy, now=NOW + 10)
    assert (d.granted, d.reason) == (False, "servers")
    # after the pending ttl (900 s) it no longer counts, even before a sweep
    d, r2 = reserve(ledger, server("bob"), [], policy, now=NOW + 901)
    assert d.granted
    assert ledger.expire(now=NOW + 902) == 1
    old = ledger.get(r.id)
    assert (old.state, old.end_reason, old.started, old.ended) == (
        "expired",
        "not confirmed",
        None,
        None,
    )
    with pytest.raises(Conflict, match="is expired"):
        ledger.confirm(r.id, "hub", now=NOW + 903)
    assert ledger.get(r2.id).state == "pending"


def test_lost_heartbeat_ends_interval_at_last_seen(ledger):
    _, r = reserve(ledger, server("carl", 4), [], QuotaPolicy())
    ledger.confirm(r.id, "hub", ttl=2 * HOUR, now=NOW)
    ledger.heartbeat(r.id, "hub", now=NOW + HOUR)
    # no heartbeat for > 900 s: counts only up to the last one, before and after the sweep
    later = NOW + 5 * HOUR
    assert ledger.totals_by("user", *PERIOD, now=later)["carl"].core_hours == pytest.approx(4.0)
    assert ledger.expire(now=later) == 1
    row = ledger.get(r.id)
    assert (row.state, row.end_reason, row.ended) == ("expired", "heartbeat lost", NOW + HOUR)
    with pytest.raises(Conflict, match="cannot be renewed"):
        ledger.heartbeat(r.id, "hub", now=later)


def test_integration_cut_at_period_boundaries_and_open_intervals_count_to_now(ledger):
    since, until = PERIOD
    _, before = reserve(ledger, server("dora", 2), [], QuotaPolicy(), now=since - 2 * HOUR)
    ledger.confirm(before.id, "hub", ttl=4 * HOUR, now=since - 2 * HOUR)
    ledger.release(before.id, "hub", now=since + HOUR)  # 3 h, 1 h inside
    _, running = reserve(
        ledger, server("dora", 1, {"t4": 1}, "gpu"), [], QuotaPolicy(), now=since + 10 * HOUR
    )
    ledger.confirm(running.id, "hub", ttl=10 * HOUR, now=since + 10 * HOUR)
    now = since + 13 * HOUR
    t = ledger.totals_by("user", since, until, now=now)["dora"]
    assert (t.core_hours, t.gpu_hours) == (pytest.approx(2 + 3), pytest.approx(3))
    assert t.memory_gib_hours == pytest.approx(1 + 3)
    # the same in Python
    rows = ledger.intervals("dora", since, until)
    assert integrate(rows, since, until, now).core_hours == pytest.approx(5)
    # last period sees only the part before its end
    prev = period_bounds("month", since - 1)
    assert ledger.totals_by("user", *prev, now=now)["dora"].core_hours == pytest.approx(4)


def _hammer(ledger, requests, policy, groups_of):
    barrier = threading.Barrier(len(requests))

    def one(req):
        barrier.wait()
        d, _ = reserve(ledger, req, groups_of(req.user), policy, now=time.time())
        return d.granted

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(one, requests))


def test_200_concurrent_requests_never_overcommit_a_users_limit(ledger):
    policy = QuotaPolicy(defaults={"servers": 3, "cores": 100})
    results = _hammer(
        ledger, [server("eve", 1, name=f"s{i}") for i in range(200)], policy, lambda u: ["/atlas"]
    )
    assert results.count(True) == 3
    assert len(ledger.open_reservations("eve")) == 3


def test_200_concurrent_requests_never_overcommit_a_groups_total(ledger):
    policy = QuotaPolicy(group_totals={"/cms/gpu": {"gpus": {"t4": 7}}})
    requests = [server(f"u{i:03d}", 1, {"t4": 1}) for i in range(200)]
    results = _hammer(ledger, requests, policy, lambda u: ["/cms", "/cms/gpu"])
    assert results.count(True) == 7
    in_use = ledger.in_use_by("group")["/cms/gpu"]
    assert (in_use["gpus"], in_use["reservations"]) == (7, 7)


def test_reconcile_after_a_crash_counts_nothing_twice(ledger):
    p = QuotaPolicy()
    _, gone = reserve(ledger, server("fay", 1, name="a"), [], p)
    ledger.confirm(gone.id, "hub", now=NOW)
    _, started = reserve(ledger, server("fay", 1, name="b"), [], p)  # confirm lost in crash
    _, dup1 = reserve(ledger, server("gil", 2), [], p)
    ledger.confirm(dup1.id, "hub", now=NOW)
    _, dup2 = reserve(ledger, server("gil", 2), [], p, now=NOW + 5)
    ledger.confirm(dup2.id, "hub", now=NOW + 5)
    running = [
        Running("fay", "b", NOW + 30, ("/atlas",)),
        Running("gil", "", NOW),
        Running("hal", "", NOW - HOUR, ("/cms",)),  # started while the service was away
        Running("ida", "", NOW + 50, ("/cms",), ready=False),  # starting: not adopted
    ]
    adopt = lambda s: server(s.user, 1)  # noqa: E731
    report = ledger.reconcile(running, "af-accounting", adopt, now=NOW + 60)
    assert report == {"closed": 1, "confirmed": 1, "voided": 1, "adopted": 1, "renewed": 1}
    closed = ledger.get(gone.id)
    assert (closed.state, closed.end_reason, closed.ended) == ("expired", "not running", NOW)
    assert ledger.get(started.id).started == NOW + 30
    assert (ledger.get(dup2.id).state, ledger.get(dup2.id).end_reason) == ("expired", "duplicate")
    # again: nothing changes but renewals
    again = ledger.reconcile(running, "af-accounting", adopt, ttl=2 * HOUR, now=NOW + 120)
    assert again == {"closed": 0, "confirmed": 0, "voided": 0, "adopted": 0, "renewed": 3}
    totals = ledger.totals_by("user", *PERIOD, now=NOW + HOUR)
    assert "ida" not in totals and ledger.open_reservations("ida", now=NOW + 120) == []
    assert totals["gil"].core_hours == pytest.approx(2.0)  # one interval, not two
    assert totals["hal"].core_hours == pytest.approx(2.0)
    assert ledger.totals_by("group", *PERIOD, now=NOW + HOUR)["/cms"].core_hours == (
        pytest.approx(2.0)
    )


def test_locked_database_refuses_and_records_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'locked.sqlite'}"
    Ledger(url).upgrade()
    ledger = Ledger(url, busy_timeout=0.2)
    blocker = create_engine(url, connect_args={"isolation_level": None})
    with blocker.connect() as conn:
        conn.exec_driver_sql("BEGIN EXCLUSIVE")
        with pytest.raises(LedgerUnavailable):
            reserve(ledger, server("ivy"), [], QuotaPolicy())
        conn.exec_driver_sql("ROLLBACK")
    assert ledger.count_rows() == 0
    blocker.dispose()
    ledger.dispose()


@pytest.mark.integration
def test_postgres_table_lock_refuses_and_records_nothing(postgres):
    url = postgres.create_database(f"locked_{uuid.uuid4().hex[:12]}")
    Ledger(url).upgrade()
    ledger = Ledger(url, busy_timeout=0.3)
    blocker = create_engine(url)
    with blocker.connect() as conn:
        conn.execute(text("BEGIN"))
        conn.execute(text("LOCK TABLE af_reservations IN ACCESS EXCLUSIVE MODE"))
        with pytest.raises(LedgerUnavailable):
            reserve(ledger, server("ivy"), [], QuotaPolicy())
        conn.execute(text("ROLLBACK"))
    assert ledger.count_rows() == 0
    blocker.dispose()
    ledger.dispose()


def test_unreachable_database_is_unavailable():
    from harness import free_port

    ledger = Ledger(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")
    with pytest.raises(LedgerUnavailable):
        ledger.upgrade()


@pytest.mark.integration
def test_upgrade_db_command_creates_the_schema_and_exits(tmp_path):
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    r = subprocess.run(
        [sys.executable, "-m", "jhub_af.accounting", "--db-url", url, "--upgrade-db"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    engine = create_engine(url)
    assert migrate.current(engine) == migrate.head()
    engine.dispose()
