"""The pages at ``/services/af-accounting/``: a user's quotas, usage and running things
(:class:`UserPageHandler`); for admins, a sortable table of all users and groups
(:class:`AdminPageHandler`) and its CSV export (:class:`AdminCSVHandler`). Templates
autoescape everything (names and groups come from the IdP)."""

from __future__ import annotations

import csv
import io
import time
from datetime import datetime, timezone
from pathlib import Path

from tornado import web

from .dimensions import BUDGETS, DIMENSIONS, MEMORY_DIMS
from .handlers import BaseHandler
from .ledger import LedgerUnavailable
from .resources import format_memory
from .usage import daily_core_hours, period_bounds

TEMPLATES = Path(__file__).with_name("templates")
COLUMNS = [
    ("name", "name"),
    ("core_hours", "core-hours"),
    ("gpu_hours", "GPU-hours"),
    ("memory_gib_hours", "memory GiB-hours"),
    ("cores", "cores in use"),
    ("gpus", "GPUs in use"),
]
SOURCES = {"user": "your own quota", "default": "facility default", "none": "no limit set"}


def _when(t: float | None) -> str:
    if not t:
        return "-"
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M")


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d")


def _limit_text(key: str, value) -> str:
    if value is None:
        return "unlimited"
    if key.split(":")[0] in MEMORY_DIMS:
        return format_memory(value)
    return f"{value:g}"


def _dimension_words(key: str) -> str:
    """What a limit key counts: ``cores at once``, ``t4 GPUs at once``, ``core-hours per period``
    (the usage page's words)."""
    dim = key.split(":")[0]
    many = DIMENSIONS[dim][1]
    if dim == "gpus":
        return f"{key[5:]} GPUs at once"
    return f"{many} per period" if dim in BUDGETS else f"{many} at once"


def csv_cell(value) -> str:
    """``value`` as a CSV cell that a spreadsheet will not run as a formula."""
    text = str(value)
    # a cell starting like a formula would run in a spreadsheet
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class PageHandler(BaseHandler):
    """The HTML pages' base: errors as plain text, the values every template reads."""

    def common(self, sees_all: bool) -> dict:
        """The template values every page uses (prefix, period, formatters)."""
        svc = self.service
        start, end = period_bounds(svc.policy.period, time.time())
        return {
            "prefix": svc.service_prefix,
            "hub_home": self.hub_auth.hub_prefix + "home",
            "sees_all": sees_all,
            "period_text": f"{_day(start)} to {_day(end - 1)}",
            "memory": format_memory,
            "when": _when,
        }

    def write_error(self, status_code, **kwargs):
        """An error as ``status reason`` and its sentence, in plain text (tornado calls it)."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else ""
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code} {self._reason}\n{message}\n")


class UserPageHandler(PageHandler):
    """``/services/af-accounting/``: the signed-in user's own page."""

    @web.authenticated
    async def get(self):
        """The user's limits, this period's hours by day, and what runs now."""
        name = self.current_user["name"]
        svc = self.service
        try:
            report = await svc.user_report(name)
            start, end = report["period"]["start"], report["period"]["end"]
            rows = await svc.in_thread(svc.ledger.intervals, name, start, end)
        except LookupError:
            raise web.HTTPError(404, "The hub does not know you; sign in again.") from None
        except LedgerUnavailable:
            raise web.HTTPError(
                503, "The accounting database is unavailable; try again soon."
            ) from None
        days = daily_core_hours(rows, start, end, time.time())
        limits = report["limits"]
        budgets = []
        for key in BUDGETS:
            used = report["usage"][key]
            limit = limits[key]["value"]
            fraction = None if not limit else min(used / limit, 1.0)
            budgets.append(
                {
                    "name": DIMENSIONS[key][1],
                    "used": f"{used:.1f}",
                    "limit": _limit_text(key, limit),
                    "fraction": fraction,
                    "percent": round(100 * fraction) if fraction is not None else 0,
                    "warn": fraction is not None and fraction >= svc.policy.warn_at,
                }
            )
        quotas = [
            {
                "what": _dimension_words(key),
                "limit": _limit_text(key, lim["value"]),
                "source": f"group {lim['group']}"
                if lim["source"] == "group"
                else SOURCES[lim["source"]],
            }
            for key, lim in limits.items()
        ]
        self.render(
            "user.html",
            report=report,
            budgets=budgets,
            quotas=quotas,
            chart=_chart(days),
            **self.common(await self.sees_all()),
        )


def _chart(days: list[tuple[float, float]], width: int = 600, height: int = 120) -> dict:
    top = max([v for _, v in days] + [1e-9])
    step = width / max(len(days), 1)
    bars = []
    for i, (day, value) in enumerate(days):
        h = round(height * value / top, 1) if value else 0
        bars.append(
            {
                "x": round(i * step, 1),
                "y": round(height - h, 1),
                "w": max(round(step - 2, 1), 1),
                "h": h,
                "label": f"{_day(day)}: {value:.2f} core-hours",
            }
        )
    return {
        "width": width,
        "height": height,
        "bars": bars,
        "max": f"{top:.1f}" if days else "0",
        "first": _day(days[0][0]) if days else "",
    }


class AdminBase(PageHandler):
    """What the admin page and its CSV share: the table, and who may see it."""

    async def tables(self) -> list[dict]:
        """One row per user and per group: this period's hours and what runs now."""
        svc = self.service
        now = time.time()
        start, end = period_bounds(svc.policy.period, now)
        out = []
        for by in ("user", "group"):
            totals = await svc.in_thread(svc.ledger.totals_by, by, start, end, now)
            in_use = await svc.in_thread(svc.ledger.in_use_by, by, now)
            rows = []
            for name in sorted(set(totals) | set(in_use)):
                t = totals.get(name)
                u = in_use.get(name, {})
                rows.append(
                    {
                        "name": name,
                        "core_hours": t.core_hours if t else 0.0,
                        "gpu_hours": t.gpu_hours if t else 0.0,
                        "memory_gib_hours": t.memory_gib_hours if t else 0.0,
                        "cores": u.get("cores", 0.0),
                        "gpus": u.get("gpus", 0.0),
                    }
                )
            out.append({"by": by, "rows": rows})
        return out

    async def require_admin(self):
        """Raise a 403 ``HTTPError`` unless the caller sees everyone's usage."""
        if not await self.sees_all():
            raise web.HTTPError(403, "This page is for the facility's admins.")


class AdminPageHandler(AdminBase):
    """``admin``: the sortable table of all users and groups (admins only)."""

    @web.authenticated
    async def get(self):
        """The page, sorted by ``sort`` (a column), ``by`` (user or group) and ``order``
        (asc or desc): the hub's login for a caller not signed in, 403 for a non-admin,
        400 for a bad sort; errors in plain text. Called by tornado for ``GET admin``."""
        await self.require_admin()
        columns = [c for c, _ in COLUMNS]
        sort_col = self.get_argument("sort", "core_hours")
        sort_by = self.get_argument("by", "user")
        order = self.get_argument("order", "desc")
        if (
            sort_col not in columns
            or sort_by not in ("user", "group")
            or order not in ("asc", "desc")
        ):
            raise web.HTTPError(400, "sort must name a column, by user or group, asc or desc.")
        tables = await self.tables()
        for table in tables:
            if table["by"] == sort_by:
                table["rows"].sort(key=lambda r: r[sort_col], reverse=order == "desc")
        self.render(
            "admin.html",
            tables=tables,
            sort=(sort_by, sort_col, order),
            period=self.service.policy.period,
            columns=lambda by: [(c, by if c == "name" else t) for c, t in COLUMNS],
            **self.common(True),
        )


class AdminCSVHandler(AdminBase):
    """``admin/usage.csv``: the admin table as CSV (admins only)."""

    @web.authenticated
    async def get(self):
        """``af-usage.csv`` (``kind`` then the columns, user rows then group rows): the
        hub's login for a caller not signed in, 403 for a non-admin, errors in plain
        text. Called by tornado for ``GET admin/usage.csv``."""
        await self.require_admin()
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["kind", *(c for c, _ in COLUMNS)])
        for table in await self.tables():
            for row in table["rows"]:
                writer.writerow(
                    [table["by"], csv_cell(row["name"])] + [f"{row[c]:.6f}" for c, _ in COLUMNS[1:]]
                )
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", 'attachment; filename="af-usage.csv"')
        self.finish(buf.getvalue())


class NotFoundHandler(BaseHandler):
    """Any other path under the API: a JSON 404."""

    def prepare(self):
        """Finish with 404 and ``{"error": "No such API endpoint."}`` for any method,
        without asking the hub who the caller is. Called by tornado first."""
        self.set_status(404)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish('{"error": "No such API endpoint."}')
