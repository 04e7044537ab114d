"""How one reservation row is made and changes state: pure functions on a
:class:`.models.Reservation`, with no session and no query (the ledger runs them
inside its write transactions, under its locks)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from .models import ACTIVE, EXPIRED, OPEN_STATES, PENDING, RELEASED, Reservation, ReservationGroup
from .resources import Request


@dataclass(frozen=True)
class Running:
    """One server the hub says is running (for reconcile)."""

    user: str
    server: str
    started: float
    groups: tuple[str, ...] = ()
    # False while the hub is still starting it (its spawner has not reserved yet)
    ready: bool = True


def new_row(
    request: Request, client: str, groups: Iterable[str], *, state: str, ttl: float, now: float
) -> Reservation:
    """A new reservation row for ``request`` made by ``client``, in ``state``, open for
    ``ttl`` seconds from ``now``, remembering the user's ``groups``; not yet added to a
    session. Called by :meth:`.ledger.Ledger.reserve` and :func:`adopted_row`."""
    res = request.resources
    gpu_type, gpus = next(iter(res.gpus.items()), ("", 0))
    return Reservation(
        id=secrets.token_hex(16),
        user=request.user,
        kind=request.kind,
        client=client,
        server=request.server,
        cores=res.cores,
        memory=res.memory,
        gpu_type=gpu_type,
        gpus=gpus,
        state=state,
        created=now,
        expires=now + ttl,
        end_reason="",
        groups=[ReservationGroup(group=g) for g in groups],
    )


def adopted_row(server: Running, request: Request, client: str, ttl: float, now: float):
    """The active reservation of a server that runs without one, sized by ``request``
    (``adopt(server)``), its interval started when the server did (at the latest ``now``).
    Called by :meth:`.ledger.Ledger.reconcile`."""
    row = new_row(request, client, server.groups, state=ACTIVE, ttl=ttl, now=now)
    row.user, row.server, row.kind = server.user, server.server, "server"
    row.started, row.last_seen = min(server.started, now), now
    return row


def match_with_hub(row: Reservation, server: Running | None, seen: set, ttl: float, now: float):
    """Bring one open server reservation in line with what the hub runs.

    Returns the report key of what was done (``closed``, ``voided``, ``confirmed``,
    ``renewed``), or None for a pending row whose server the hub is still starting
    (its spawner confirms it). Adds the row's server to ``seen`` when it keeps it.
    Called by :meth:`.ledger.Ledger.reconcile`, for each open server row, oldest first.
    """
    key = (row.user, row.server)
    if server is None:
        close_row(row, now, "not running", at_last_seen=True)
        return "closed"
    if key in seen:
        row.state, row.ended = EXPIRED, row.started or None
        row.end_reason = "duplicate"
        return "voided"
    seen.add(key)
    if row.state == PENDING and not server.ready:
        return None
    if row.state == PENDING:
        row.state, row.started = ACTIVE, max(server.started, row.created)
        outcome = "confirmed"
    else:
        outcome = "renewed"
    row.last_seen, row.expires = now, now + ttl
    return outcome


def close_row(row: Reservation, now: float, reason: str, at_last_seen: bool = False) -> None:
    """Close ``row`` for ``reason`` ("released" makes it RELEASED, anything else
    EXPIRED); a running one's interval ends ``now`` (or when last seen, if it lapsed
    or ``at_last_seen``). A lapsed row is closed as "heartbeat lost" or "not
    confirmed" whatever the reason. Called by the ledger's release, expire and
    reconcile."""
    lapsed = row.expires <= now
    if row.state == ACTIVE:
        last = row.last_seen or row.started
        row.ended = last if (lapsed or at_last_seen) else now
    if lapsed:
        row.end_reason = "heartbeat lost" if row.state == ACTIVE else "not confirmed"
        row.state = EXPIRED
    else:
        row.state = RELEASED if reason == "released" else EXPIRED
        row.end_reason = reason


def state_words(row: Reservation, now: float) -> str:
    """The row's state in the words of a refusal: "expired", "released", "expired
    (heartbeat lost)", "not confirmed yet", "running". Called by the ledger's
    confirm, heartbeat and release when they refuse with :class:`.ledger.Conflict`."""
    if row.state in OPEN_STATES and row.expires <= now:
        return "expired"
    if row.state == RELEASED:
        return "released"
    if row.state == EXPIRED:
        return f"expired ({row.end_reason})"
    return {"pending": "not confirmed yet", "active": "running"}.get(row.state, row.state)
