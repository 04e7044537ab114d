"""/metrics serves usage from a snapshot of a real (SQLite) ledger: the first scrape waits
for a read, later ones are served from the snapshot and trigger a read in the background
once it is older than ``refresh``, and one older than ``max_age`` is never served."""

from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from jhub_af.accounting.ledger import Ledger
from jhub_af.accounting.metrics import Metrics
from jhub_af.accounting.policy import Decision
from jhub_af.accounting.resources import parse_request
from jhub_af.accounting.usage import period_bounds


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.upgrade()
    yield ledger
    ledger.dispose()


def run_server(ledger, user: str, cores: float) -> None:
    request = parse_request(
        {"user": user, "kind": "server", "resources": {"cores": cores, "memory": "1G"}}
    )
    now = time.time()
    _, row = ledger.reserve(
        request,
        ["/atlas"],
        "hub",
        lambda usage, groups: Decision(True),
        period=period_bounds("month", now),
    )
    ledger.confirm(row.id, "hub")


def cores_in_use(text: str) -> dict[str, float]:
    return {
        user: float(value)
        for user, value in re.findall(r'jhub_af_user_cores_in_use\{user="(\w+)"\} (\S+)', text)
    }


def age(text: str) -> float:
    return float(re.search(r"^jhub_af_usage_snapshot_age_seconds (\S+)$", text, re.M).group(1))


async def test_scrapes_serve_a_snapshot_read_off_the_request_path(ledger):
    executor = ThreadPoolExecutor(2)

    def in_thread(fn, *args):
        return asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    metrics = Metrics(ledger, "month", refresh=1.0, max_age=3.0)
    run_server(ledger, "alice", 2)
    first = (await metrics.scrape(in_thread)).decode()  # no snapshot yet: waits for one
    assert cores_in_use(first) == {"alice": 2.0}
    assert "jhub_af_group_period_core_seconds" in first
    assert "jhub_af_reservations_granted_total" in first  # the live series come first

    run_server(ledger, "bob", 3)
    served = (await metrics.scrape(in_thread)).decode()
    assert cores_in_use(served) == {"alice": 2.0}  # the snapshot, not the ledger
    assert 0 <= age(served) < 3.0

    await asyncio.sleep(1.1)  # older than refresh: served as it is, read in the background
    assert cores_in_use((await metrics.scrape(in_thread)).decode()) == {"alice": 2.0}
    for _ in range(100):  # the background read lands without a scrape waiting for it
        await asyncio.sleep(0.1)
        if "bob" in cores_in_use((await metrics.scrape(in_thread)).decode()):
            break
    assert cores_in_use((await metrics.scrape(in_thread)).decode()) == {"alice": 2.0, "bob": 3.0}

    run_server(ledger, "carol", 1)
    await asyncio.sleep(3.1)  # older than max_age: that scrape waits for a fresh read
    fresh = (await metrics.scrape(in_thread)).decode()
    assert cores_in_use(fresh) == {"alice": 2.0, "bob": 3.0, "carol": 1.0}
    assert age(fresh) < 3.0
    executor.shutdown()
