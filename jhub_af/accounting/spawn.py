"""The hub side of af-accounting: one server's reservation, held by its spawner.

- :class:`SpawnReservation`: reserve, confirm, heartbeat, release, and the state.
- :class:`AccountingSpawnerMixin`: puts a SpawnReservation in front of any spawner.
- :func:`resources_for_selection`: what a ProfileSpawner selection reserves.
- :func:`accounting_configured`: does a spawner's config point at the service?
"""

from __future__ import annotations

import time
from typing import ClassVar

from traitlets import Float, HasTraits, Instance, Unicode, default
from traitlets.config import LoggingConfigurable

from .client import AccountingClient, AccountingRefused, AccountingUnavailable, Reservation

STATE_KEY = "accounting_reservation"
ACCOUNTING_OFF = (
    "af-accounting is not configured (c.AccountingClient.url is empty): servers start "
    "without quota checks and no usage is recorded. jhub_af.accounting.accounting_hub_config "
    "sets it up."
)


def _what_the_service_said(error: Exception) -> str:
    return getattr(error, "message", "") or str(error)


class SpawnReservation(LoggingConfigurable):
    """The af-accounting reservation of one spawner's server, from reserve to release.

    Built by the spawner that holds it with ``SpawnReservation(parent=spawner)``, so
    its client reads ``c.AccountingClient.*`` and it logs, names the user and the
    server through that spawner. The id lives in the spawner's state (key
    ``accounting_reservation``, see :meth:`save`), so a hub restart keeps it.
    """

    client = Instance(AccountingClient, help="The client that talks to af-accounting.")
    reservation_id = Unicode(
        None, allow_none=True, help="The open reservation's id; None when there is none."
    )
    last_beat = Float(
        None,
        allow_none=True,
        help="time.monotonic() of the last reservation or heartbeat; None after a restore.",
    )

    # one hub per process (JupyterHub is a singleton application), so once per process
    # is once per hub; the log is not flooded with one warning per spawn
    accounting_off_said: ClassVar[bool] = False

    @default("client")
    def _default_client(self) -> AccountingClient:
        return AccountingClient(parent=self)

    @property
    def spawner(self):
        """The spawner this reservation belongs to (its ``parent``)."""
        return self.parent

    @property
    def configured(self) -> bool:
        """Whether ``c.AccountingClient.url`` points at a service."""
        return bool(self.client.url)

    def say_accounting_off(self) -> None:
        """Log once per process that accounting is off (:data:`ACCOUNTING_OFF`).

        Called by ProfileSpawner when ``accounting = "auto"`` finds no URL.
        """
        if not SpawnReservation.accounting_off_said:
            SpawnReservation.accounting_off_said = True
            self.log.warning(ACCOUNTING_OFF)

    async def reserve(self, resources: dict) -> Reservation:
        """Ask af-accounting for this server's reservation, before anything starts.

        ``resources`` is ``{"cores": 2, "memory": "8G", "gpus": {"t4": 1}}``, built from
        validated settings (:func:`resources_for_selection`), never raw ``user_options``.
        Returns the :class:`Reservation` (``id`` None when the client failed open).
        Raises :class:`QuotaDenied` (403, the sentence names the limit),
        :class:`AccountingUnavailable` (503, fail closed) or :class:`AccountingRefused`.
        Called by the spawner's ``start()``.
        """
        spawner = self.spawner
        reservation = await self.client.reserve(
            spawner.user.name, "server", resources, server=spawner.name or ""
        )
        self.reservation_id = reservation.id
        self.last_beat = time.monotonic()
        if not reservation.degraded:
            self.log.info("Reservation %s for %s granted", reservation.id, spawner._log_name)
        return reservation

    async def confirm(self) -> None:
        """Tell af-accounting that the server started. Never raises: a reservation the
        service did not hear about is confirmed by its next reconcile with the hub.
        Called by the spawner's ``start()`` once the backend started."""
        rid = self.reservation_id
        try:
            await self.client.confirm(rid)
        except (AccountingUnavailable, AccountingRefused) as e:
            self.log.warning(
                "Could not confirm reservation %s of %s: %s; the next reconcile will",
                rid,
                self.spawner._log_name,
                _what_the_service_said(e),
            )

    async def heartbeat(self) -> None:
        """Renew the reservation of a running server, at most every
        ``c.AccountingClient.heartbeat_interval`` seconds. Never raises; a refused
        heartbeat (the service closed the reservation) forgets the id, so that stop
        sends nothing and the reconcile records the server instead.
        Called by the spawner's ``poll()`` while the server runs."""
        rid = self.reservation_id
        if rid is None:
            return
        if self.last_beat is None:
            # restored after a hub restart: the hub polls before it has started the service,
            # whose reconcile at start renews what runs; beat one period from now
            self.last_beat = time.monotonic()
            return
        if time.monotonic() - self.last_beat < self.client.heartbeat_interval:
            return
        self.last_beat = time.monotonic()
        try:
            await self.client.heartbeat(rid)
        except AccountingUnavailable as e:
            self.log.warning(
                "Heartbeat of reservation %s failed: %s", rid, _what_the_service_said(e)
            )
        except AccountingRefused as e:
            self.reservation_id = None
            self.log.warning(
                "Reservation %s of %s is no longer open (%s); "
                "the next reconcile records the server",
                rid,
                self.spawner._log_name,
                _what_the_service_said(e),
            )

    async def release(self, reason: str = "stopped") -> None:
        """Close the reservation: ``reason`` is "stopped", "start failed" or "gone".

        Forgets the id before it sends anything, so a second call (stop after poll
        found the server gone) sends nothing. Never raises: what it cannot tell the
        service, the service's reconcile with the hub finds out. Called by the
        spawner's ``stop()``, by a failed ``start()``, and by ``poll()`` when the
        server is gone.
        """
        rid, self.reservation_id = self.reservation_id, None
        if rid is None:
            return
        spawner_name = self.spawner._log_name
        self.log.info("Releasing reservation %s of %s (%s)", rid, spawner_name, reason)
        try:
            await self.client.release(rid)
        except (AccountingUnavailable, AccountingRefused) as e:
            self.log.warning(
                "Could not release reservation %s of %s (%s): %s; the next reconcile will close it",
                rid,
                spawner_name,
                reason,
                _what_the_service_said(e),
            )

    def save(self, state: dict) -> dict:
        """Add the open reservation's id to a spawner ``state`` (key ``accounting_reservation``)
        and return it. Called by the spawner's ``get_state()``."""
        if self.reservation_id:
            state[STATE_KEY] = self.reservation_id
        return state

    def load(self, state: dict) -> None:
        """Take the id back from a spawner's saved ``state`` (after a hub restart the next
        heartbeat waits one interval). Called by the spawner's ``load_state()``."""
        self.reservation_id = state.get(STATE_KEY) or None

    def clear(self) -> None:
        """Forget the id without telling the service. Called by ``clear_state()``."""
        self.reservation_id = None


def accounting_configured(spawner) -> bool:
    """Whether ``spawner``'s config points ``c.AccountingClient`` at a service (its url).

    Takes any configurable spawner; returns a bool. Called by deployment checks.
    """
    return SpawnReservation(parent=spawner).configured


def resources_for_selection(selection) -> dict:
    """The resources to reserve for a ProfileSpawner ``Selection``: its cores, memory and
    the profile's GPUs, as ``{"cores", "memory", "gpus": {type: count}}``.
    Called by ProfileSpawner's ``start()``."""
    profile = selection.profile
    gpus = {profile.gpu_type: profile.gpu_count} if getattr(profile, "gpu_count", 0) else {}
    return {"cores": selection.cores, "memory": selection.memory, "gpus": gpus}


class AccountingSpawnerMixin(HasTraits):
    """Put in front of a spawner's bases so every start goes through af-accounting.

    The subclass implements :meth:`accounting_resources`. The mixin reserves before
    the backend starts, confirms after, renews from ``poll``, releases on stop, on a
    failed start and when ``poll`` finds the server gone, and keeps the id in the state.
    (A HasTraits, so that its trait is set up on the spawner class it is mixed into.)
    """

    accounting_reservation = Instance(SpawnReservation, help="This server's reservation.")
    # True while stop() runs: its poll() calls may not release (stop() does, once)
    _accounting_stopping = False

    @default("accounting_reservation")
    def _default_accounting_reservation(self) -> SpawnReservation:
        return SpawnReservation(parent=self)

    def accounting_resources(self) -> dict:
        """What this server uses, as ``{"cores", "memory", "gpus"}``. Subclasses implement
        it; called by :meth:`start` before the backend starts."""
        raise NotImplementedError("the spawner must say what its server uses")

    async def start(self):
        """Reserve, start the spawner, confirm; a failed start releases (JupyterHub calls it)."""
        await self.accounting_reservation.reserve(self.accounting_resources())
        try:
            result = await super().start()
        except BaseException:
            await self.accounting_reservation.release("start failed")
            raise
        await self.accounting_reservation.confirm()
        return result

    # LocalProcessSpawner (and others) call clear_state() inside their own stop() and
    # poll(), and their stop() polls until the process is gone: keep the id from
    # before the call, and let only stop() release while it runs (once)
    async def stop(self, now=False):
        """Stop the server, then release its reservation (JupyterHub calls it)."""
        rid = self.accounting_reservation.reservation_id
        self._accounting_stopping = True
        try:
            return await super().stop(now=now)
        finally:
            self._accounting_stopping = False
            self.accounting_reservation.reservation_id = rid
            await self.accounting_reservation.release("stopped")

    async def poll(self):
        """Poll the server; renew its reservation while it runs, release it when it is
        gone (JupyterHub calls it)."""
        rid = self.accounting_reservation.reservation_id
        status = await super().poll()
        self.accounting_reservation.reservation_id = rid
        if self._accounting_stopping:
            return status
        if status is None:
            await self.accounting_reservation.heartbeat()
        else:
            await self.accounting_reservation.release("gone")
        return status

    def get_state(self):
        """The spawner's state plus the reservation id."""
        return self.accounting_reservation.save(super().get_state())

    def load_state(self, state):
        """Load the spawner's state and the reservation id."""
        super().load_state(state)
        self.accounting_reservation.load(state)

    def clear_state(self):
        """Clear the spawner's state and forget the reservation id."""
        super().clear_state()
        self.accounting_reservation.clear()
