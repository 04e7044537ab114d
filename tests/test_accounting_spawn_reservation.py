"""SpawnReservation's life cycle without a service: a recording client stands in for
af-accounting, so the rules (release once, heartbeat interval, the restored-after-restart
beat, a refused heartbeat forgets the id, the state key) are checked on their own."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from traitlets.config import Config, LoggingConfigurable

from jhub_af.accounting import (
    AccountingClient,
    AccountingRefused,
    AccountingSpawnerMixin,
    AccountingUnavailable,
    Reservation,
    SpawnReservation,
    accounting_configured,
)


class RecordingClient(AccountingClient):
    """Grants every reservation as ``r1``; records each call; ``fail`` raises instead."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls: list[tuple[str, object]] = []
        self.fail: Exception | None = None

    async def reserve(self, user, kind, resources, server=""):
        self.calls.append(("reserve", (user, kind, server)))
        return Reservation("r1", user, kind, resources)

    async def _answer(self, what: str, rid):
        self.calls.append((what, rid))
        if self.fail is not None:
            raise self.fail

    async def confirm(self, rid):
        await self._answer("confirm", rid)

    async def heartbeat(self, rid):
        await self._answer("heartbeat", rid)

    async def release(self, rid):
        await self._answer("release", rid)


class StandInSpawner(LoggingConfigurable):
    name = "lab"
    user = SimpleNamespace(name="alice")
    _log_name = "alice:lab"


def held(**client_config) -> tuple[SpawnReservation, RecordingClient]:
    reservation = SpawnReservation(parent=StandInSpawner())
    reservation.client = RecordingClient(parent=reservation, **client_config)
    return reservation, reservation.client


async def test_reserve_keeps_the_id_and_release_sends_it_once():
    reservation, client = held()
    granted = await reservation.reserve({"cores": 1, "memory": "1G"})
    assert granted.id == reservation.reservation_id == "r1"
    await reservation.release("gone")
    await reservation.release("stopped")
    assert client.calls == [("reserve", ("alice", "server", "lab")), ("release", "r1")]
    assert reservation.reservation_id is None


@pytest.mark.parametrize(
    "failure", [AccountingUnavailable(), AccountingRefused(409, "already released")]
)
async def test_confirm_and_release_never_raise(failure):
    reservation, client = held()
    await reservation.reserve({"cores": 1})
    client.fail = failure
    await reservation.confirm()
    await reservation.release("stopped")
    assert [what for what, _ in client.calls] == ["reserve", "confirm", "release"]


async def test_heartbeat_waits_for_its_interval():
    reservation, client = held(heartbeat_interval=3600)
    await reservation.reserve({"cores": 1})
    await reservation.heartbeat()
    assert ("heartbeat", "r1") not in client.calls
    reservation.client.heartbeat_interval = 0
    await reservation.heartbeat()
    assert client.calls[-1] == ("heartbeat", "r1")


async def test_a_restored_reservation_beats_one_interval_after_the_restart():
    reservation, client = held(heartbeat_interval=0)
    reservation.load({"accounting_reservation": "r7"})
    await reservation.heartbeat()  # the first poll after a restart only starts the clock
    assert client.calls == []
    await reservation.heartbeat()
    assert client.calls == [("heartbeat", "r7")]


async def test_a_refused_heartbeat_forgets_the_id_and_stop_sends_nothing():
    reservation, client = held(heartbeat_interval=0)
    await reservation.reserve({"cores": 1})
    client.fail = AccountingRefused(409, "Reservation r1 is expired")
    await reservation.heartbeat()
    assert reservation.reservation_id is None
    await reservation.release("stopped")
    assert [what for what, _ in client.calls] == ["reserve", "heartbeat"]


async def test_an_unreachable_heartbeat_keeps_the_id():
    reservation, client = held(heartbeat_interval=0)
    await reservation.reserve({"cores": 1})
    client.fail = AccountingUnavailable()
    await reservation.heartbeat()
    assert reservation.reservation_id == "r1"


def test_state_saves_loads_and_clears_under_one_key():
    reservation, _ = held()
    assert reservation.save({"pid": 1}) == {"pid": 1}
    reservation.load({"accounting_reservation": "r3"})
    assert reservation.save({"pid": 1}) == {"pid": 1, "accounting_reservation": "r3"}
    reservation.clear()
    assert reservation.save({}) == {}


def test_the_client_reads_the_hubs_accounting_client_config():
    config = Config()
    config.AccountingClient.url = "http://127.0.0.1:1/api/v1/"
    config.AccountingClient.heartbeat_interval = 42.0
    spawner = StandInSpawner(config=config)
    reservation = SpawnReservation(parent=spawner)
    assert reservation.client.heartbeat_interval == 42.0
    assert reservation.configured and accounting_configured(spawner)
    assert not accounting_configured(StandInSpawner(config=Config()))


class BackendThatClearsItsState(StandInSpawner):
    """Like LocalProcessSpawner: clear_state() inside stop() and poll()."""

    running = True

    async def start(self):
        return "http://127.0.0.1:1"

    async def stop(self, now=False):
        self.clear_state()
        self.running = False

    async def poll(self):
        if not self.running:
            self.clear_state()
            return 0
        return None

    def get_state(self):
        return {}

    def load_state(self, state):
        pass

    def clear_state(self):
        pass


class Accounted(AccountingSpawnerMixin, BackendThatClearsItsState):
    def accounting_resources(self):
        return {"cores": 1, "memory": "1G"}


def accounted() -> tuple[Accounted, RecordingClient]:
    spawner = Accounted()
    reservation = spawner.accounting_reservation
    reservation.client = RecordingClient(parent=reservation)
    return spawner, reservation.client


async def test_the_mixin_releases_once_although_the_backend_clears_its_state():
    spawner, client = accounted()
    await spawner.start()
    assert spawner.get_state() == {"accounting_reservation": "r1"}
    await spawner.stop()
    assert await spawner.poll() == 0
    assert [what for what, _ in client.calls] == ["reserve", "confirm", "release"]


async def test_the_mixin_releases_when_poll_finds_the_server_gone():
    spawner, client = accounted()
    await spawner.start()
    spawner.running = False
    assert await spawner.poll() == 0
    await spawner.stop()
    assert client.calls[-1] == ("release", "r1")
    assert [what for what, _ in client.calls].count("release") == 1
