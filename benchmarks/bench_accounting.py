"""Reservation decision latency on SQLite with 10,000 users and 1,000,000 ledger rows.

jhub_af's side is the whole decision the service makes: the user's limits from the
policy, their usage now and this month from the ledger, the decision, and the
reservation written under the lock (then released). The anchor does the same
database work with bare SQLAlchemy Core: a select of the user's open rows and an
insert (then an update) of the same row shape, in the same kind of transaction.
Samples are p50 latencies of 400 decisions; p99 and decisions per second are in
results/accounting_details.json. The ledger is seeded once into a temporary file.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accounting_ledger import measure, seeded_ledger

SPEC = {
    "what": "reservation decision p50 latency, SQLite, 10,000 users, 1,000,000 rows",
    "anchor": "bare SQLAlchemy select + insert + update of the same row shape",
    "unit": "ms",
    "target": "informational: no target in the issue (a decision runs two aggregate queries more)",
}


def run(repeats: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory(prefix="bench-acct-") as tmp:
        ledger = seeded_ledger(f"sqlite:///{Path(tmp) / 'ledger.sqlite'}")
        try:
            return measure(ledger, repeats, "decision_sqlite")
        finally:
            ledger.dispose()
