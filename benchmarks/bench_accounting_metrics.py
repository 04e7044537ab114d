"""/metrics scrape time of af-accounting with 10,000 users (1,000,000 ledger rows, SQLite).

jhub_af's side renders the service's registry (its counters, histogram and the
usage per user and per group read from the ledger at scrape time). The anchor is
prometheus-client's own exposition of the same series (same names, labels and
values, already in memory): the ratio is the cost of reading the ledger.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accounting_ledger import save_details, seeded_ledger
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from jhub_af.accounting.metrics import Metrics

SPEC = {
    "what": "/metrics scrape with 10,000 users, 1,000,000 rows (SQLite)",
    "anchor": "prometheus-client exposition of the same series from memory",
    "unit": "s",
    "target": "informational (reading the ledger dominates)",
}


class Frozen:
    def __init__(self, families):
        self.families = families

    def collect(self):
        yield from self.families


def frozen_copy(registry) -> CollectorRegistry:
    """The same series as ``registry`` holds now, as plain in-memory gauges."""
    families = []
    for metric in registry.collect():
        family = GaugeMetricFamily(
            metric.name,
            metric.documentation or metric.name,
            labels=sorted({k for s in metric.samples for k in s.labels}),
        )
        for s in metric.samples:
            family.add_metric([s.labels.get(k, "") for k in family._labelnames], s.value)
        families.append(family)
    out = CollectorRegistry()
    out.register(Frozen(families))
    return out


def run(repeats: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory(prefix="bench-acct-") as tmp:
        ledger = seeded_ledger(f"sqlite:///{Path(tmp) / 'ledger.sqlite'}")
        try:
            metrics = Metrics(ledger, "month")  # ~8 intervals of each user fall in this month
            anchor_registry = frozen_copy(metrics.registry)
            ours, anchor, sizes = [], [], []
            for i in range(repeats):
                t = time.perf_counter()
                body = generate_latest(metrics.registry)
                ours.append(time.perf_counter() - t)
                t = time.perf_counter()
                generate_latest(anchor_registry)
                anchor.append(time.perf_counter() - t)
                sizes.append(len(body))
                series = body.count(b"jhub_af_user_period_core_seconds{")
                print(
                    f"   run {i + 1}: {ours[-1]:.3f} s vs {anchor[-1]:.3f} s, {series:,} users",
                    flush=True,
                )
            save_details("metrics_scrape", {"bytes": sizes[-1], "ours_s": ours, "anchor_s": anchor})
            return ours, anchor
        finally:
            ledger.dispose()
