"""/metrics scrape time of af-accounting with 10,000 users (1,000,000 ledger rows, SQLite).

jhub_af's side is what the service's /metrics handler does for a scrape
(``Metrics.scrape``): the live counters and histogram, then the usage per user
and per group as last read from the ledger (a snapshot read again in the
background once older than ``metrics_refresh``). The anchor is prometheus-client's
own exposition of the same series (same names, labels and values, already in
memory). The background read of the ledger itself (what every scrape paid before
the snapshot) is timed too and kept in results/accounting_details.json
(``metrics_scrape.refresh_s``): it runs at most once per ``metrics_refresh``
seconds (30 by default), off the request path.
"""

from __future__ import annotations

import asyncio
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
    "what": "/metrics scrape with 10,000 users, 1,000,000 rows (SQLite), usage from the "
    "snapshot (the ledger read off the request path is in accounting_details.json)",
    "anchor": "prometheus-client exposition of the same series from memory",
    "unit": "s",
    "target": "informational (the issue asks for the time; the scrape no longer reads the ledger)",
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


async def _in_thread(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def run(repeats: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory(prefix="bench-acct-") as tmp:
        ledger = seeded_ledger(f"sqlite:///{Path(tmp) / 'ledger.sqlite'}")
        try:
            # ~8 intervals of each user fall in this month; the service's defaults
            metrics = Metrics(ledger, "month", refresh=30.0, max_age=120.0)
            # the first scrape waits for the first read of the ledger
            first = time.perf_counter()
            asyncio.run(metrics.scrape(_in_thread))
            first = time.perf_counter() - first
            anchor_registry = frozen_copy(metrics.registry)
            for family in frozen_copy(metrics.usage_registry).collect():
                anchor_registry.register(Frozen([family]))
            ours, anchor, refresh, sizes = [], [], [], []
            for i in range(repeats):
                t = time.perf_counter()
                body = asyncio.run(metrics.scrape(_in_thread))
                ours.append(time.perf_counter() - t)
                t = time.perf_counter()
                generate_latest(anchor_registry)
                anchor.append(time.perf_counter() - t)
                t = time.perf_counter()
                metrics.read_usage()  # the background read, timed on its own
                refresh.append(time.perf_counter() - t)
                sizes.append(len(body))
                series = body.count(b"jhub_af_user_period_core_seconds{")
                print(
                    f"   run {i + 1}: scrape {ours[-1]:.4f} s vs {anchor[-1]:.4f} s "
                    f"(ledger read off the path {refresh[-1]:.3f} s), {series:,} users",
                    flush=True,
                )
            save_details(
                "metrics_scrape",
                {
                    "bytes": sizes[-1],
                    "ours_s": ours,
                    "anchor_s": anchor,
                    "refresh_s": refresh,
                    "first_scrape_s": first,
                    "note": "ours_s: a scrape served from the usage snapshot; refresh_s: the "
                    "ledger read + render done in the background at most every 30 s",
                },
            )
            return ours, anchor
        finally:
            ledger.dispose()
