"""Reservation decision latency on PostgreSQL with 10,000 users and 1,000,000 ledger rows.

As bench_accounting (SQLite), against a real PostgreSQL from Debian's packages
started for the run (tests/harness/postgres.py) and stopped after it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accounting_ledger import measure, seeded_ledger
from harness import start_postgres

SPEC = {
    "what": "reservation decision p50 latency, PostgreSQL, 10,000 users, 1,000,000 rows",
    "anchor": "bare SQLAlchemy select + insert + update of the same row shape",
    "unit": "ms",
    "target": "informational: no target in the issue (a decision runs two aggregate queries more)",
}


def run(repeats: int) -> tuple[list[float], list[float]]:
    pg = start_postgres()
    try:
        ledger = seeded_ledger(pg.create_database("bench_accounting"))
        try:
            return measure(ledger, repeats, "decision_postgres")
        finally:
            ledger.dispose()
    finally:
        pg.stop()
