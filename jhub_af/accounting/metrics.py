"""Prometheus metrics of the accounting service: :class:`Metrics` (the registry a scrape
serves) and :class:`LedgerCollector` (usage read from the ledger). Names are ``jhub_af_*``
in base units (seconds, bytes); counters end in ``_total``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from .usage import GIB, HOUR, period_bounds

DECISION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


# (key, metric name after "jhub_af_<by>_", help before ", per <by>"); {period}: the period
PERIOD_FAMILIES = (
    ("core", "period_core_seconds", "Core-seconds used this {period} (UTC)"),
    ("gpu", "period_gpu_seconds", "GPU-seconds used this {period} (UTC)"),
    ("mem", "period_memory_byte_seconds", "Memory byte-seconds used this {period} (UTC)"),
)
IN_USE_FAMILIES = (
    ("cores", "cores_in_use", "Cores reserved now"),
    ("memory", "memory_bytes_in_use", "Memory reserved now in bytes"),
    ("gpus", "gpus_in_use", "GPUs reserved now"),
)


class LedgerCollector:
    """Usage by user and by group, this period and right now."""

    def __init__(self, ledger, period: str):
        self.ledger = ledger
        self.period = period

    def _families(self, by: str) -> dict[str, GaugeMetricFamily]:
        """The empty gauge families of one ``by`` ("user" or "group"), by key."""
        return {
            key: GaugeMetricFamily(
                f"jhub_af_{by}_{name}",
                f"{text.format(period=self.period)}, per {by}",
                labels=[by],
            )
            for key, name, text in PERIOD_FAMILIES + IN_USE_FAMILIES
        }

    def collect(self):
        """Yield the usage families: hours this period and what runs now, per user and
        group (two aggregate queries each; blocking). Called by prometheus-client."""
        now = time.time()
        since, until = period_bounds(self.period, now)
        for by in ("user", "group"):
            totals = self.ledger.totals_by(by, since, until, now=now)
            in_use = self.ledger.in_use_by(by, now=now)
            families = self._families(by)
            for name, t in totals.items():
                families["core"].add_metric([name], t.core_hours * HOUR)
                families["gpu"].add_metric([name], t.gpu_hours * HOUR)
                families["mem"].add_metric([name], t.memory_gib_hours * HOUR * GIB)
            for name, u in in_use.items():
                for key in ("cores", "memory", "gpus"):
                    families[key].add_metric([name], u[key])
            yield from families.values()


class Metrics:
    """The service's registry (decisions counted and timed, live) and the snapshot of
    ledger usage that scrapes serve.

    Usage is read from the ledger, so it is always the ledger's truth and never a
    second counter kept on the side; but with thousands of users that read takes
    most of a second, so it is not done on the scrape's path: a scrape serves the
    usage series as last read (a *snapshot*), and a snapshot older than ``refresh``
    seconds is read again in the background. A snapshot older than ``max_age``
    (nobody scraped for a while) is never served: that scrape waits for a fresh one.
    ``jhub_af_usage_snapshot_age_seconds`` says how old the usage series are.
    """

    def __init__(self, ledger, period: str, *, refresh: float = 30.0, max_age: float = 120.0):
        self.refresh = refresh
        self.max_age = max(max_age, refresh)
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
        self.usage_registry = CollectorRegistry()
        self.usage_registry.register(LedgerCollector(ledger, period))
        self._usage_text = b""
        self._taken: float | None = None
        self._reading: asyncio.Future | None = None
        Gauge(
            "jhub_af_usage_snapshot_age_seconds",
            "Seconds since the usage series of this scrape were read from the ledger",
            registry=self.registry,
        ).set_function(self.snapshot_age)

    def snapshot_age(self) -> float:
        """Seconds since the usage snapshot was read (infinite before the first)."""
        return float("inf") if self._taken is None else time.monotonic() - self._taken

    def read_usage(self) -> bytes:
        """Read usage from the ledger and render it (blocking: run it in a thread)."""
        taken = time.monotonic()
        text = generate_latest(self.usage_registry)
        self._usage_text, self._taken = text, taken
        return text

    def _read_in(self, in_thread: Callable[..., Awaitable]) -> asyncio.Future:
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(in_thread(self.read_usage))
            # a failed background read is not lost: a later scrape reads again (and waits
            # once the snapshot is older than max_age, answering 503 if it fails again)
            self._reading.add_done_callback(lambda f: f.cancelled() or f.exception())
        return self._reading

    async def scrape(self, in_thread: Callable[..., Awaitable]) -> bytes:
        """The exposition text: live series, then the usage snapshot.

        ``in_thread(fn)`` runs ``fn`` off the event loop (the service's executor).
        """
        age = self.snapshot_age()
        if age > self.max_age:
            await self._read_in(in_thread)
        elif age > self.refresh:
            self._read_in(in_thread)  # serve this one from the snapshot, read the next
        return generate_latest(self.registry) + self._usage_text
