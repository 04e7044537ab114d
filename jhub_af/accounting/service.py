"""The af-accounting service: :class:`AccountingService` (the JupyterHub service that
decides quotas and records usage, run by the hub) and its ``/metrics`` handler."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import ClassVar
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuthCallbackHandler
from jupyterhub.utils import url_path_join
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from tornado import ioloop, web
from traitlets import Bool, Dict, Float, Integer, List, Unicode, default
from traitlets.config import Application

from . import handlers, pages
from .hubapi import HubAPI, HubUnavailable
from .ledger import Ledger, LedgerUnavailable, Running
from .metrics import Metrics
from .policy import QuotaPolicy, effective_limits, remaining
from .resources import Request, parse_request
from .usage import Totals, period_bounds


class MetricsHandler(handlers.BaseHandler):
    """``GET metrics``: Prometheus text, for admins and the read scope (unless
    ``metrics_require_auth`` is off); 503 when the ledger cannot be read."""

    async def get(self):
        """The Prometheus text of :class:`.metrics.Metrics`; 403 for a caller who is not
        an admin and lacks the read scope, 503 when the ledger or the hub cannot be read
        (tornado's error page). Called by tornado for ``GET metrics``."""
        if self.service.metrics_require_auth and not await self.sees_all():
            raise web.HTTPError(403, "Metrics are for admins and tokens with the read scope.")
        try:
            body = await self.service.metrics.scrape(self.service.in_thread)
        except LedgerUnavailable:
            raise web.HTTPError(503, "The ledger cannot be read right now.") from None
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(body)


class AccountingService(Application):
    """Quota decisions, the usage ledger, usage pages and metrics, behind the hub.

    Run by the hub as the service ``af-accounting`` (``python -m jhub_af.accounting
    --config FILE``, written by :func:`jhub_af.accounting.accounting_hub_config`);
    it reads ``$JUPYTERHUB_SERVICE_URL``, ``$JUPYTERHUB_SERVICE_PREFIX`` and
    ``$JUPYTERHUB_API_TOKEN`` as every managed service does. At start it upgrades
    the ledger's schema, then reconciles the ledger with the servers the hub runs,
    and again every ``reconcile_interval``.
    """

    name = "af-accounting"
    description = __doc__
    classes: ClassVar = [QuotaPolicy]
    aliases: ClassVar = {
        "config": "AccountingService.config_file",
        "db-url": "AccountingService.db_url",
    }
    flags: ClassVar = {
        "upgrade-db": (
            {"AccountingService": {"upgrade_only": True}},
            "Upgrade the ledger's schema to the newest and exit.",
        )
    }

    config_file = Unicode(
        "",
        config=True,
        help="A config file (.py or .json) with AccountingService and QuotaPolicy settings.",
    )
    db_url = Unicode(
        "sqlite:///af-accounting.sqlite",
        config=True,
        help="""
        The ledger's database: ``sqlite:///path`` (the default, a file in the working
        directory) or ``postgresql+psycopg://user@host/db`` (needs jhub_af[postgresql]).
        Its schema is upgraded with the package's Alembic migrations at start.
        """,
    )
    db_busy_timeout = Float(
        10.0,
        config=True,
        help="""
        Seconds to wait for a locked database (SQLite's write lock, PostgreSQL's row and
        advisory locks) before a request is refused with 503 and nothing recorded.
        """,
    )
    upgrade_only = Bool(
        False, config=True, help="Upgrade the ledger's schema and exit (--upgrade-db)."
    )
    admin_groups = List(
        Unicode(),
        config=True,
        help="""
        Hub groups whose members see everyone's usage (as hub admins do), e.g.
        ["/atlas/admins"]. Default: none besides hub admins.
        """,
    )
    pending_ttl = Float(
        900.0,
        config=True,
        help="""
        Seconds a reservation may stay unconfirmed (the thing is starting) before it
        stops counting and expires. Make it longer than the slowest start (GPU nodes,
        batch queues). Default 900.
        """,
    )
    heartbeat_ttl = Float(
        900.0,
        config=True,
        help="""
        Seconds a running reservation counts after its last confirm, heartbeat or
        reconcile. A running thing that is not renewed in time is closed at the last
        time it was seen. Default 900.
        """,
    )
    reconcile_interval = Float(
        60.0,
        config=True,
        help="""
        Seconds between reconciles with the hub's list of running servers (the first
        runs at start). Reconcile closes servers that are gone, renews those that run
        and records running servers nothing reserved. Default 60; 0 turns it off.
        """,
    )
    adopted_server_resources = Dict(
        {"cores": 1, "memory": "2G"},
        config=True,
        help="""
        The size recorded for a server that runs without a reservation (started while
        the service was unreachable and fail-open was on). Default {"cores": 1,
        "memory": "2G"}.
        """,
    )
    metrics_require_auth = Bool(
        True,
        config=True,
        help="""
        Whether /metrics needs an admin or a token with custom:jhub-af:accounting-read
        (the default). Set False only where the service port is private.
        """,
    )
    metrics_refresh = Float(
        30.0,
        config=True,
        help="""
        Seconds a scrape of /metrics may serve the usage series (per user and group)
        as last read from the ledger; an older snapshot is read again in the
        background, off the scrape's path (with 10,000 users the read takes seconds).
        The decision counters and histogram are always live. Default 30.
        """,
    )
    metrics_max_age = Float(
        120.0,
        config=True,
        help="""
        The oldest usage snapshot a scrape may serve (seconds, at least
        metrics_refresh): a scrape after a longer pause waits for a fresh read.
        jhub_af_usage_snapshot_age_seconds reports the age. Default 120.
        """,
    )
    threads = Integer(
        4, config=True, help="Threads that run ledger queries off the event loop (default 4)."
    )
    hub_api_url = Unicode(
        config=True, help="The hub's API URL (default: $JUPYTERHUB_API_URL, set by the hub)."
    )
    service_prefix = Unicode(
        config=True,
        help="URL prefix of the service (default: $JUPYTERHUB_SERVICE_PREFIX, set by the hub).",
    )
    bind_url = Unicode(
        config=True,
        help="Where to listen (default: $JUPYTERHUB_SERVICE_URL, set by the hub).",
    )

    @default("hub_api_url")
    def _hub_api_url(self):
        return os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")

    @default("service_prefix")
    def _service_prefix(self):
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/af-accounting/")

    @default("bind_url")
    def _bind_url(self):
        return os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101")

    # --- set-up ---------------------------------------------------------

    def initialize(self, argv=None):
        """Read the command line and the config file (the command line wins), and build
        the policy, the ledger, its thread pool, the metrics and the hub API client."""
        self.parse_command_line(argv)
        if self.config_file:
            self.load_config_file(self.config_file)
            self.parse_command_line(argv)  # the command line wins over the file
        self.policy = QuotaPolicy(parent=self)
        self.ledger = Ledger(self.db_url, busy_timeout=self.db_busy_timeout)
        self.executor = ThreadPoolExecutor(self.threads, thread_name_prefix="ledger")
        self.metrics = Metrics(
            self.ledger,
            self.policy.period,
            refresh=self.metrics_refresh,
            max_age=self.metrics_max_age,
        )
        self.hub = HubAPI(self.hub_api_url, os.environ.get("JUPYTERHUB_API_TOKEN", ""))
        self.reconciled = False

    def make_app(self) -> web.Application:
        """The tornado application: the REST API, ``metrics``, the OAuth callback and
        the usage pages, under the service's prefix."""
        prefix = self.service_prefix
        api = url_path_join(prefix, "api/v1")
        routes = [
            (url_path_join(api, "reservations"), handlers.ReservationsHandler),
            (url_path_join(api, r"reservations/([0-9a-f]{1,64})"), handlers.ReservationHandler),
            (
                url_path_join(api, r"reservations/([0-9a-f]{1,64})/(confirm|heartbeat)"),
                handlers.ReservationHandler,
            ),
            (url_path_join(api, "usage/(me)"), handlers.UsageHandler),
            (url_path_join(api, "usage/(users|groups)/(.+)"), handlers.UsageHandler),
            (url_path_join(api, "policy/me"), handlers.PolicyHandler),
            (url_path_join(api, ".*"), pages.NotFoundHandler),
            (url_path_join(prefix, "metrics"), MetricsHandler),
            (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
            (url_path_join(prefix, "admin/usage.csv"), pages.AdminCSVHandler),
            (url_path_join(prefix, "admin"), pages.AdminPageHandler),
            (prefix, pages.UserPageHandler),
        ]
        return web.Application(
            routes,
            accounting=self,
            cookie_secret=os.urandom(32),
            xsrf_cookies=False,
            template_path=str(pages.TEMPLATES),
            autoescape="xhtml_escape",
            log_function=self._log_request,
        )

    def _log_request(self, handler) -> None:
        # the path only: OAuth callbacks carry a code and a state in the query
        status = handler.get_status()
        level = self.log.info if status < 400 else self.log.warning
        ms = 1000.0 * handler.request.request_time()
        level("%d %s %s %.1fms", status, handler.request.method, handler.request.path, ms)

    def in_thread(self, fn, *args, **kwargs):
        """Run ``fn(*args, **kwargs)`` (a ledger call, which blocks) in the thread pool;
        returns an awaitable of its result."""
        return asyncio.get_running_loop().run_in_executor(
            self.executor, partial(fn, *args, **kwargs)
        )

    # --- decisions and reports ------------------------------------------

    async def _hub_user(self, name: str) -> dict:
        model = await self.hub.user(name)
        if model is None:
            raise LookupError(f"Unknown user {name}: the hub has no such user.")
        return model

    async def reserve(self, request: Request, client: str):
        """Decide ``request`` of service ``client`` under the user's current groups
        (asked of the hub) and record it: returns ``(Decision, row or None)``. Raises
        ``LookupError`` for a user the hub does not know, :class:`HubUnavailable` and
        :class:`LedgerUnavailable`. Called by ``POST reservations``."""
        model = await self._hub_user(request.user)
        groups = sorted(model.get("groups") or [])
        policy = self.policy
        totals = policy.total_groups(groups)
        _decide = policy.decider(request, groups)

        return await self.in_thread(
            self.ledger.reserve,
            request,
            groups,
            client,
            _decide,
            period=period_bounds(policy.period, time.time()),
            total_groups=totals,
            ttl=self.pending_ttl,
        )

    def _period_window(self, since, until):
        now = time.time()
        start, end = period_bounds(self.policy.period, now)
        return now, (since if since is not None else start), (until if until is not None else end)

    async def user_report(self, name: str, since=None, until=None) -> dict:
        """``usage/users/{name}``: the user's groups, hours in [since, until) (default:
        this period), what runs now and the limits. Raises ``LookupError``,
        :class:`HubUnavailable`, :class:`LedgerUnavailable`."""
        model = await self._hub_user(name)
        now, since, until = self._period_window(since, until)
        groups = sorted(model.get("groups") or [])
        totals = await self.in_thread(self.ledger.totals_by, "user", since, until, now, name)
        running = await self.in_thread(self.ledger.open_reservations, name, now)
        policy = await self.policy_report(name, model)
        return {
            "user": name,
            "groups": groups,
            "period": {"name": self.policy.period, "start": since, "end": until},
            "usage": totals.get(name, Totals()).as_json(),
            "running": [r.as_json() for r in running],
            "limits": policy["limits"],
        }

    async def group_report(self, group: str, since=None, until=None) -> dict:
        """``usage/groups/{group}``: the group's hours, what its members run now, its
        totals and how many users have usage. Raises :class:`LedgerUnavailable`."""
        now, since, until = self._period_window(since, until)
        totals = await self.in_thread(self.ledger.totals_by, "group", since, until, now, group)
        in_use = await self.in_thread(self.ledger.in_use_by, "group", now)
        members = await self.in_thread(self.ledger.totals_by, "user", since, until, now)
        return {
            "group": group,
            "period": {"name": self.policy.period, "start": since, "end": until},
            "usage": totals.get(group, Totals()).as_json(),
            "in_use": in_use.get(group, {}),
            "total_limits": self.policy.group_totals.get(group, {}),
            "members_with_usage": len(members),
        }

    async def policy_report(
        self, name: str, model: dict | None = None, with_remaining: bool = False
    ) -> dict:
        """The user's limits and where they come from; ``with_remaining`` adds what is
        left of each (``remaining``: limit, in use, left), read from the ledger now."""
        model = model or await self._hub_user(name)
        groups = sorted(model.get("groups") or [])
        policy = self.policy
        limits = effective_limits(policy, name, groups)
        report = {
            "user": name,
            "groups": groups,
            "period": policy.period,
            "warn_at": policy.warn_at,
            "limits": {
                key: {"value": lim.value, "source": lim.source, "group": lim.group}
                for key, lim in limits.items()
            },
        }
        if with_remaining:
            now = time.time()
            since, until = period_bounds(policy.period, now)
            totals = policy.total_groups(groups)
            usage, group_usage = await self.in_thread(
                self.ledger.usage_now, name, totals, since, until, now
            )
            report["remaining"] = remaining(
                limits,
                usage,
                group_totals={g: policy.group_totals[g] for g in totals},
                group_usage=group_usage,
            )
        return report

    # --- background work --------------------------------------------------

    def _adopt(self, server: Running) -> Request:
        return parse_request(
            {
                "user": server.user,
                "kind": "server",
                "server": server.server,
                "resources": self.adopted_server_resources,
            }
        )

    async def reconcile(self) -> dict | None:
        """Match the ledger with the servers the hub runs (:meth:`.ledger.Ledger.reconcile`);
        returns its report, or None when the hub or the database cannot be reached
        (postponed to the next round). Called at start and every ``reconcile_interval``."""
        try:
            running = await self.hub.running_servers()
            report = await self.in_thread(
                self.ledger.reconcile, running, self.name, self._adopt, ttl=self.heartbeat_ttl
            )
        except (HubUnavailable, LedgerUnavailable) as e:
            self.log.warning("Reconcile with the hub postponed: %s", e)
            return None
        self.reconciled = True
        if any(v for k, v in report.items() if k != "renewed"):
            self.log.info("Reconciled with the hub: %s", report)
        return report

    async def expire(self) -> None:
        """Close reservations not confirmed or renewed in time (every 30 s)."""
        try:
            n = await self.in_thread(self.ledger.expire)
        except LedgerUnavailable as e:
            self.log.warning("Expiry postponed: %s", e)
            return
        if n:
            self.log.info("Expired %d reservation(s) not confirmed or renewed in time", n)

    async def _first_reconcile(self):
        while not self.reconciled:
            await self.reconcile()
            if not self.reconciled:
                await asyncio.sleep(2)

    def start(self):
        """Upgrade the ledger's schema, then serve until SIGTERM (unless ``upgrade_only``)."""
        self.ledger.upgrade()
        if self.upgrade_only:
            self.log.info("The ledger's schema is at the newest revision.")
            return
        asyncio.run(self.serve())

    async def serve(self):
        """Listen on ``bind_url``, run expiry and reconcile periodically, stop on SIGTERM
        or SIGINT."""
        url = urlparse(self.bind_url)
        app = self.make_app()
        server = app.listen(url.port, address=url.hostname)
        self.log.info(
            "af-accounting listening on %s, prefix %s", self.bind_url, self.service_prefix
        )
        await self.expire()
        if self.reconcile_interval > 0:
            self._reconcile_task = asyncio.ensure_future(self._first_reconcile())
            ioloop.PeriodicCallback(self.reconcile, self.reconcile_interval * 1000).start()
        ioloop.PeriodicCallback(self.expire, 30_000).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        server.stop()
        self.executor.shutdown(wait=False)
        self.ledger.dispose()


def main(argv=None):
    """``python -m jhub_af.accounting``: the service's entry point."""
    app = AccountingService.instance()
    app.initialize(argv)
    app.start()
