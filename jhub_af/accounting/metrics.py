"""Prometheus metrics of the accounting service (prometheus-client).

Names are ``jhub_af_*`` in base units (seconds, bytes), counters end in
``_total``. Usage per user and group is read from the ledger at scrape time
(two aggregate queries each), so it is always the ledger's truth and never a
second counter kept on the side.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from .usage import GIB, HOUR, period_bounds

DECISION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class LedgerCollector:
    """Usage by user and by group, this period and right now."""

    def __init__(self, ledger, period: str):
        self.ledger = ledger
        self.period = period

    def collect(self):
        now = time.time()
        since, until = period_bounds(self.period, now)
        for by in ("user", "group"):
            totals = self.ledger.totals_by(by, since, until, now=now)
            in_use = self.ledger.in_use_by(by, now=now)
            families = {
                "core": GaugeMetricFamily(
                    f"jhub_af_{by}_period_core_seconds",
                    f"Core-seconds used this {self.period} (UTC), per {by}",
                    labels=[by],
                ),
                "gpu": GaugeMetricFamily(
                    f"jhub_af_{by}_period_gpu_seconds",
                    f"GPU-seconds used this {self.period} (UTC), per {by}",
                    labels=[by],
                ),
                "mem": GaugeMetricFamily(
                    f"jhub_af_{by}_period_memory_byte_seconds",
                    f"Memory byte-seconds used this {self.period} (UTC), per {by}",
                    labels=[by],
                ),
                "cores": GaugeMetricFamily(
                    f"jhub_af_{by}_cores_in_use", f"Cores reserved now, per {by}", labels=[by]
                ),
                "memory": GaugeMetricFamily(
                    f"jhub_af_{by}_memory_bytes_in_use",
                    f"Memory reserved now in bytes, per {by}",
                    labels=[by],
                ),
                "gpus": GaugeMetricFamily(
                    f"jhub_af_{by}_gpus_in_use", f"GPUs reserved now, per {by}", labels=[by]
                ),
            }
            for name, t in totals.items():
                families["core"].add_metric([name], t.core_hours * HOUR)
                families["gpu"].add_metric([name], t.gpu_hours * HOUR)
                families["mem"].add_metric([name], t.memory_gib_hours * HOUR * GIB)
            for name, u in in_use.items():
                families["cores"].add_metric([name], u["cores"])
                families["memory"].add_metric([name], u["memory"])
                families["gpus"].add_metric([name], u["gpus"])
            yield from families.values()


class Metrics:
    """The service's registry: decisions counted and timed, ledger usage collected."""

    def __init__(self, ledger, period: str):
        self.registry = CollectorRegistry()
        self.granted = Counter(
            "jhub_af_reservations_granted_total",
            "Reservations granted, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.denied = Counter(
            "jhub_af_reservations_denied_total",
            "Reservations refused, by reason (the limit's dimension, invalid, unknown_user, "
            "unavailable)",
            ["reason"],
            registry=self.registry,
        )
        self.decision_seconds = Histogram(
            "jhub_af_reservation_decision_seconds",
            "Time to decide a reservation request, from request to answer",
            buckets=DECISION_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(LedgerCollector(ledger, period))
