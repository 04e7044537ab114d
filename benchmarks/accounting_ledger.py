"""Shared by the accounting benchmarks: a ledger seeded with 10,000 users and
1,000,000 usage rows, timed reservation decisions, and the anchor (a bare
SQLAlchemy select + insert of the same row shape, in the same kind of transaction).

The seed is written by the database itself (a recursive CTE in SQLite,
generate_series in PostgreSQL): 100 closed intervals per user spread over the
last twelve months, each with one group row (20 groups).
"""

from __future__ import annotations

import json
import secrets
import statistics
import time
from pathlib import Path

from sqlalchemy import text

from jhub_af.accounting.ledger import Ledger
from jhub_af.accounting.policy import QuotaPolicy, decide, effective_limits
from jhub_af.accounting.resources import parse_request
from jhub_af.accounting.usage import period_bounds

USERS = 10_000
ROWS = 1_000_000
GROUPS = 20
DECISIONS = 400
HERE = Path(__file__).resolve().parent
DETAILS = HERE / "results" / "accounting_details.json"
POLICY = QuotaPolicy(
    defaults={"servers": 1000, "cores": 4096, "memory": "64T", "core_hours": "unlimited"},
    groups={f"/vo{g}": {"cores": 4096} for g in range(GROUPS)},
)

SEED_SQLITE = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :rows - 1)
INSERT INTO af_reservations (id, user, kind, client, server, cores, memory, gpu_type, gpus,
  state, created, expires, started, last_seen, ended, end_reason)
SELECT printf('%032x', i), 'user' || (i % :users), 'server', 'af-spawner', '', 1 + (i % 4),
  2147483648, '', 0, 'released', :t0 + i * :step, :t0 + i * :step + 900, :t0 + i * :step,
  :t0 + i * :step + 3600, :t0 + i * :step + 3600, 'released'
FROM n
"""
SEED_SQLITE_GROUPS = """
INSERT INTO af_reservation_groups (reservation_id, "group")
SELECT id, '/vo' || (CAST(substr(user, 5) AS INTEGER) % :groups) FROM af_reservations
"""
SEED_PG = """
INSERT INTO af_reservations (id, "user", kind, client, server, cores, memory, gpu_type, gpus,
  state, created, expires, started, last_seen, ended, end_reason)
SELECT lpad(to_hex(i), 32, '0'), 'user' || (i % :users), 'server', 'af-spawner', '',
  1 + (i % 4), 2147483648, '', 0, 'released', :t0 + i * :step, :t0 + i * :step + 900,
  :t0 + i * :step, :t0 + i * :step + 3600, :t0 + i * :step + 3600, 'released'
FROM generate_series(0, :rows - 1) AS i
"""
SEED_PG_GROUPS = """
INSERT INTO af_reservation_groups (reservation_id, "group")
SELECT id, '/vo' || (CAST(substr("user", 5) AS INTEGER) % :groups) FROM af_reservations
"""


def seeded_ledger(url: str) -> Ledger:
    """A ledger at ``url`` with the schema and, if empty, the seed."""
    ledger = Ledger(url, busy_timeout=60)
    ledger.upgrade()
    if ledger.count_rows() >= ROWS:
        return ledger
    now = time.time()
    params = {
        "rows": ROWS,
        "users": USERS,
        "groups": GROUPS,
        "t0": now - 365 * 86400,
        "step": 365 * 86400 / ROWS,
    }
    t = time.perf_counter()
    with ledger.writing() as session:
        seed, groups = (
            (SEED_PG, SEED_PG_GROUPS) if ledger.postgres else (SEED_SQLITE, SEED_SQLITE_GROUPS)
        )
        session.execute(text(seed), params)
        session.execute(text(groups), params)
    if ledger.postgres:
        with ledger.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    else:
        with ledger.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    print(f"   seeded {ledger.count_rows():,} rows in {time.perf_counter() - t:.0f} s", flush=True)
    return ledger


def one_decision(ledger: Ledger, user: str, groups: list[str]) -> bool:
    request = parse_request(
        {
            "user": user,
            "kind": "server",
            "server": secrets.token_hex(4),
            "resources": {"cores": 1, "memory": "1G"},
        }
    )
    limits = effective_limits(POLICY, user, groups)

    def _decide(usage, group_usage):
        return decide(limits, usage, request, period=POLICY.period, warn_at=POLICY.warn_at)

    decision, row = ledger.reserve(
        request, groups, "af-spawner", _decide, period=period_bounds(POLICY.period, time.time())
    )
    if row is not None:
        ledger.release(row.id, "af-spawner")
    return decision.granted


def one_anchor(ledger: Ledger, user: str, groups: list[str]) -> bool:
    """The same row shape, written and released with bare SQLAlchemy Core statements."""
    quote = '"user"' if ledger.postgres else "user"
    now = time.time()
    rid = secrets.token_hex(16)
    with ledger.writing() as session:
        session.execute(
            text(
                f"SELECT count(*) FROM af_reservations WHERE {quote} = :u AND "  # noqa: S608
                "state IN ('pending', 'active')"
            ),
            {"u": user},
        )
        session.execute(
            text(
                f"INSERT INTO af_reservations (id, {quote}, kind, client, server, cores, memory, "  # noqa: S608
                "gpu_type, gpus, state, created, expires, end_reason) VALUES (:id, :u, "
                "'server', 'af-spawner', '', 1, 1073741824, '', 0, 'pending', :now, :exp, '')"
            ),
            {"id": rid, "u": user, "now": now, "exp": now + 900},
        )
        session.execute(
            text('INSERT INTO af_reservation_groups (reservation_id, "group") VALUES (:id, :g)'),
            [{"id": rid, "g": g} for g in groups],
        )
    with ledger.writing() as session:
        session.execute(
            text("UPDATE af_reservations SET state = 'released', ended = :now WHERE id = :id"),
            {"id": rid, "now": time.time()},
        )
    return True


def timed(fn, ledger: Ledger, n: int = DECISIONS) -> dict:
    """Latencies (ms) of n calls for random users; p50, p99 and calls per second."""
    latencies = []
    start = time.perf_counter()
    for i in range(n):
        user = f"user{(i * 7919) % USERS}"
        groups = [f"/vo{(i * 7919) % USERS % GROUPS}"]
        t = time.perf_counter()
        fn(ledger, user, groups)
        latencies.append((time.perf_counter() - t) * 1000)
    total = time.perf_counter() - start
    latencies.sort()
    return {
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))], 3),
        "per_second": round(n / total, 1),
    }


def measure(ledger: Ledger, repeats: int, label: str) -> tuple[list[float], list[float]]:
    """Alternating rounds of decisions and anchors; samples are p50 latencies in ms."""
    ours, anchor, rounds = [], [], []
    for i in range(repeats):
        a = timed(one_decision, ledger)
        b = timed(one_anchor, ledger)
        ours.append(a["p50_ms"])
        anchor.append(b["p50_ms"])
        rounds.append({"jhub_af": a, "anchor": b})
        print(f"   run {i + 1}: decision {a}, anchor {b}", flush=True)
    save_details(label, {"rows": ledger.count_rows(), "users": USERS, "rounds": rounds})
    return ours, anchor


def save_details(key: str, value: dict) -> None:
    DETAILS.parent.mkdir(exist_ok=True)
    details = json.loads(DETAILS.read_text()) if DETAILS.exists() else {}
    details[key] = {**value, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    DETAILS.write_text(json.dumps(details, indent=2) + "\n")
