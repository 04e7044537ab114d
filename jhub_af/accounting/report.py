"""The work of `jhub-af usage` (:func:`.usage_command.usage_report`): rows of core-, GPU-
and memory-hours per user and group read from the ledger, and their table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

from .ledger import Ledger, LedgerUnavailable
from .usage import period_bounds
from .usage_command import ReportError, epoch_of_day

DEFAULT_DB = "sqlite:///.jhub-af-demo/accounting/af-accounting.sqlite"
FIELDS = ("kind", "name", "core_hours", "gpu_hours", "memory_gib_hours")


def parse_day(text: str, flag: str) -> float:
    """The epoch of a day like ``2026-11-01`` (UTC unless it says otherwise); raises
    :class:`ReportError` naming the command-line ``flag`` when ``text`` is not a date."""
    try:
        return epoch_of_day(text)
    except ValueError:
        raise ReportError(f"{flag} {text!r} is not a date; write it like 2026-11-01.") from None


def usage_rows(
    db_url: str,
    *,
    user: str | None = None,
    group: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> list[dict]:
    """One row per user and group (or only ``user`` / ``group``; a named one without
    usage gets a row of zeros), with hours in [``since``, ``until``), by default this
    month. Raises :class:`ReportError` for a missing SQLite ledger, an empty period
    or a database that cannot be read."""
    if db_url.startswith("sqlite:///"):
        path = Path(db_url.removeprefix("sqlite:///"))
        if not path.exists():
            raise ReportError(
                f"There is no ledger at {path}. Give the service's database with --db-url "
                "(the AccountingService.db_url of your facility)."
            )
    now = time.time()
    start, end = period_bounds("month", now)
    since = start if since is None else since
    until = end if until is None else until
    if until <= since:
        raise ReportError("--until must be after --since.")
    ledger = Ledger(db_url, busy_timeout=5)
    try:
        rows = []
        kinds = [("user", user)] if user else []
        kinds += [("group", group)] if group else []
        for by, name in kinds or [("user", None), ("group", None)]:
            totals = ledger.totals_by(by, since, until, now=now, name=name)
            if name and name not in totals:
                rows.append(
                    {
                        "kind": by,
                        "name": name,
                        "core_hours": 0.0,
                        "gpu_hours": 0.0,
                        "memory_gib_hours": 0.0,
                    }
                )
            for key in sorted(totals):
                rows.append({"kind": by, "name": key, **totals[key].as_json()})
        return rows
    except LedgerUnavailable as e:
        raise ReportError(f"The ledger's database cannot be read ({e}).") from None
    finally:
        ledger.dispose()


def render(rows: list[dict], fmt: str) -> str:
    """``rows`` as ``json``, ``csv`` (names that a spreadsheet would run as a formula
    start with ``'``) or an aligned table (any other ``fmt``)."""
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            name = row["name"]
            safe = "'" + name if name[:1] in ("=", "+", "-", "@") else name
            writer.writerow({**row, "name": safe})
        return buf.getvalue().rstrip("\n")
    header = ("kind", "name", "core-hours", "GPU-hours", "memory GiB-hours")
    lines = [
        (
            r["kind"],
            r["name"],
            f"{r['core_hours']:.2f}",
            f"{r['gpu_hours']:.2f}",
            f"{r['memory_gib_hours']:.2f}",
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=False)]
    out = ["  ".join(str(x).ljust(w) for x, w in zip(header, widths, strict=True)).rstrip()]
    for line in lines:
        out.append("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip())
    if not lines:
        out.append("(no usage in this period)")
    return "\n".join(out)
