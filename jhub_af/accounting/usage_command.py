"""`jhub-af usage` on accounting's face: :func:`usage_report` and :class:`ReportError`,
light to import; the work is in :mod:`.report`, loaded when a report is made."""

from __future__ import annotations

from datetime import datetime, timezone


class ReportError(Exception):
    """A problem the person running the command can fix; the message says how."""


def epoch_of_day(text: str) -> float:
    """The epoch of a day or time like ``2026-11-01`` (UTC unless it says otherwise).

    Raises ``ValueError`` when ``text`` is not one. Called by the report's
    ``--since``/``--until`` and by the REST API's ``since``/``until``.
    """
    day = datetime.fromisoformat(text)
    return (day if day.tzinfo else day.replace(tzinfo=timezone.utc)).timestamp()


def usage_report(
    db_url: str,
    *,
    fmt: str = "table",
    user: str | None = None,
    group: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> str:
    """Core-, GPU- and memory-hours per user and group, read from the ledger's database.

    ``db_url`` is the service's ``AccountingService.db_url``; ``user`` / ``group``
    limit the report to one of each (default: every user and every group);
    ``since`` / ``until`` are days like ``2026-11-01`` (default: this month, UTC);
    ``fmt`` is ``table``, ``csv`` or ``json``. Returns the text to print. Reads the
    database directly and changes nothing, so it works while the service is down.
    Raises :class:`ReportError` with a sentence for a bad date, a missing ledger or
    a database that cannot be read.

    Called by ``jhub-af usage`` (:func:`jhub_af.cli._usage`).
    """
    # the ledger (SQLAlchemy) loads only when a report is made: importing
    # jhub_af.accounting must stay light for the gateway and the user's server
    from .report import parse_day, render, usage_rows

    rows = usage_rows(
        db_url,
        user=user,
        group=group,
        since=parse_day(since, "--since") if since else None,
        until=parse_day(until, "--until") if until else None,
    )
    return render(rows, fmt)
