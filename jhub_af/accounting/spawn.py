"""The hub side: what a spawner calls so that every server start goes through af-accounting.

ProfileSpawner (jhub_af.spawner) calls this small interface; any other spawner
gets it by mixing :class:`AccountingSpawnerMixin` in front of its own bases:

- ``accounting_configured(spawner)``: is ``c.AccountingClient.url`` set? (A hub
  without af-accounting runs with accounting off; :func:`log_accounting_off`
  says so once.)
- ``await reserve_for_spawn(spawner, resources)`` before starting anything.
  ``resources`` is ``{"cores": 2, "memory": "8G", "gpus": {"t4": 1}}``
  (:func:`resources_for_selection` builds it from a validated profile selection,
  never from raw ``user_options``). It returns a :class:`Reservation` or raises
  :class:`QuotaDenied` (HTTP 403, the sentence names the limit) or
  :class:`AccountingUnavailable` (503, fail closed).
- ``await confirm_spawn(spawner)`` once the server started. It never raises: a
  reservation the service did not hear about is confirmed by its next reconcile.
- ``await release_for_spawn(spawner, reason)`` on stop, on a failed start, and
  when ``poll`` finds the server gone. It takes the id off the spawner before it
  sends anything, so a second call (stop after poll found the server gone) sends
  nothing. It never raises: what it cannot tell the service, the service's
  reconcile with the hub finds out.
- ``await heartbeat_for_spawn(spawner)`` from ``poll`` while the server runs
  (at most every ``c.AccountingClient.heartbeat_interval`` seconds).

The reservation id lives in the spawner's state (``accounting_reservation``),
so a hub restart keeps it. Read it *before* calling the backend's ``stop()`` or
``poll()``: JupyterHub's local spawners call ``clear_state()`` inside both.
"""

from __future__ import annotations

import time

from .client import AccountingClient, AccountingRefused, AccountingUnavailable, Reservation

STATE_KEY = "accounting_reservation"
ACCOUNTING_OFF = (
    "af-accounting is not configured (c.AccountingClient.url is empty): servers start "
    "without quota checks and no usage is recorded. jhub_af.accounting.accounting_hub_config "
    "sets it up."
)
_clients: dict[int, AccountingClient] = {}
_off_logged: set[int] = set()


def client_for(spawner) -> AccountingClient:
    """One AccountingClient per hub config (``c.AccountingClient.*``)."""
    key = id(spawner.config)
    if key not in _clients:
        _clients[key] = AccountingClient(config=spawner.config, log=spawner.log)
    return _clients[key]


def accounting_configured(spawner) -> bool:
    """Whether the hub's config points ``c.AccountingClient`` at a service."""
    return bool(client_for(spawner).url)


def log_accounting_off(spawner) -> None:
    """Say once per hub (not once per spawn) that accounting is off."""
    key = id(spawner.config)
    if key not in _off_logged:
        _off_logged.add(key)
        spawner.log.warning(ACCOUNTING_OFF)


def resources_for_selection(selection) -> dict:
    """Reservation resources from a ProfileSpawner selection (cores, memory, profile's GPUs)."""
    profile = selection.profile
    gpus = {profile.gpu_type: profile.gpu_count} if getattr(profile, "gpu_count", 0) else {}
    return {"cores": selection.cores, "memory": selection.memory, "gpus": gpus}


async def reserve_for_spawn(spawner, resources: dict) -> Reservation:
    reservation = await client_for(spawner).reserve(
        spawner.user.name, "server", resources, server=spawner.name or ""
    )
    spawner.accounting_reservation_id = reservation.id
    spawner._accounting_beat = time.monotonic()
    if not reservation.degraded:
        spawner.log.info("Reservation %s for %s granted", reservation.id, spawner._log_name)
    return reservation


def _said(e: Exception) -> str:
    return getattr(e, "message", "") or str(e)


async def confirm_spawn(spawner) -> None:
    rid = getattr(spawner, "accounting_reservation_id", None)
    try:
        await client_for(spawner).confirm(rid)
    except (AccountingUnavailable, AccountingRefused) as e:
        # the server runs: the service's reconcile confirms (or records) it
        spawner.log.warning(
            "Could not confirm reservation %s of %s: %s; the next reconcile will",
            rid,
            spawner._log_name,
            _said(e),
        )


async def release_for_spawn(spawner, reason: str = "stopped") -> None:
    rid = getattr(spawner, "accounting_reservation_id", None)
    spawner.accounting_reservation_id = None
    if rid is None:
        return
    spawner.log.info("Releasing reservation %s of %s (%s)", rid, spawner._log_name, reason)
    try:
        await client_for(spawner).release(rid)
    except (AccountingUnavailable, AccountingRefused) as e:
        spawner.log.warning(
            "Could not release reservation %s of %s (%s): %s; the next reconcile will close it",
            rid,
            spawner._log_name,
            reason,
            _said(e),
        )


async def heartbeat_for_spawn(spawner) -> None:
    rid = getattr(spawner, "accounting_reservation_id", None)
    last = getattr(spawner, "_accounting_beat", None)
    if rid is None:
        return
    if last is None:
        # restored after a hub restart: the hub polls before it has started the service,
        # whose reconcile at start renews what runs; beat one period from now
        spawner._accounting_beat = time.monotonic()
        return
    if time.monotonic() - last < client_for(spawner).heartbeat_interval:
        return
    spawner._accounting_beat = time.monotonic()
    try:
        await client_for(spawner).heartbeat(rid)
    except AccountingUnavailable as e:
        spawner.log.warning("Heartbeat of reservation %s failed: %s", rid, _said(e))
    except AccountingRefused as e:
        # the service closed it (e.g. it lapsed while the hub was down): forget it, so that
        # stop sends nothing; the reconcile records the running server instead
        spawner.accounting_reservation_id = None
        spawner.log.warning(
            "Reservation %s of %s is no longer open (%s); the next reconcile records the server",
            rid,
            spawner._log_name,
            _said(e),
        )


class AccountingSpawnerMixin:
    """Put in front of a spawner's bases; implement ``accounting_resources()``."""

    accounting_reservation_id: str | None = None

    def accounting_resources(self) -> dict:
        raise NotImplementedError("the spawner must say what its server uses")

    async def start(self):
        await reserve_for_spawn(self, self.accounting_resources())
        try:
            result = await super().start()
        except BaseException:
            await release_for_spawn(self, "start failed")
            raise
        await confirm_spawn(self)
        return result

    # LocalProcessSpawner (and others) call clear_state() inside their own stop() and
    # poll(), and their stop() polls until the process is gone: keep the id from
    # before the call, and let only stop() release while it runs (once)
    async def stop(self, now=False):
        rid = self.accounting_reservation_id
        self._accounting_stopping = True
        try:
            return await super().stop(now=now)
        finally:
            self._accounting_stopping = False
            self.accounting_reservation_id = rid
            await release_for_spawn(self, "stopped")

    async def poll(self):
        rid = self.accounting_reservation_id
        status = await super().poll()
        self.accounting_reservation_id = rid
        if getattr(self, "_accounting_stopping", False):
            return status
        if status is None:
            await heartbeat_for_spawn(self)
        else:
            await release_for_spawn(self, "gone")
        return status

    def get_state(self):
        state = super().get_state()
        if self.accounting_reservation_id:
            state[STATE_KEY] = self.accounting_reservation_id
        return state

    def load_state(self, state):
        super().load_state(state)
        self.accounting_reservation_id = state.get(STATE_KEY) or None

    def clear_state(self):
        super().clear_state()
        self.accounting_reservation_id = None
