"""The REST API under ``/services/af-accounting/api/v1/``: one handler per route.

Who may call each is checked from the hub's answer about the token, never from the
request body, and said on each handler. Answers are JSON; errors ``{"error": message}``.
"""

from __future__ import annotations

import json
import time

from jupyterhub.services.auth import HubOAuthenticated, UserNotAllowed
from tornado import web

from .hubapi import HubUnavailable
from .ledger import LedgerError, LedgerUnavailable
from .resources import BadRequest, parse_request
from .scopes import READ_SCOPE, RESERVE_SCOPE
from .usage_command import epoch_of_day

UNAVAILABLE = (
    "The accounting database is busy or cannot be reached, so nothing was recorded. "
    "Try again in a minute; if it lasts, tell the facility's admins."
)
HUB_UNAVAILABLE = "The hub cannot be asked who you are right now; try again in a minute."
MAX_BODY = 64 * 1024


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    """Identifies the caller with the hub (cookie or token) before any handler runs."""

    @property
    def service(self):
        """The :class:`.service.AccountingService` that serves this request."""
        return self.settings["accounting"]

    async def prepare(self):
        """Ask the hub who the caller is (cookie or token); tornado calls it first."""
        self._hub_auth_user_cache = None
        model = await self.hub_auth.get_user(self, sync=False)
        if model:
            try:
                self._hub_auth_user_cache = self.check_hub_user(model)
            except UserNotAllowed:
                self._hub_auth_user_cache = None

    def get_current_user(self):
        """The hub's model of the caller, or None when not signed in (or not allowed)."""
        return self._hub_auth_user_cache

    @property
    def scopes(self) -> set[str]:
        """The scopes the hub granted the caller's token or cookie."""
        return set((self.current_user or {}).get("scopes", []))

    def check_xsrf_cookie(self):
        """None for GET and HEAD; other methods get JupyterHub's check, which raises a
        403 ``HTTPError``. Called by HubAuth before it accepts the hub's cookie (a failure
        ignores the cookie); tornado's own check is off (``xsrf_cookies=False``)."""
        # token-authenticated API calls carry no cookie; the browser only GETs
        if self.request.method in ("GET", "HEAD"):
            return None
        return super().check_xsrf_cookie()

    async def sees_all(self) -> bool:
        """Admins, members of the admin groups, and tokens with the read scope."""
        caller = self.current_user
        if caller is None:
            return False
        if READ_SCOPE in self.scopes:
            return True
        if caller.get("kind", "user") != "user":
            return False
        try:
            model = await self.service.hub.user(caller["name"])
        except HubUnavailable:
            raise web.HTTPError(503, HUB_UNAVAILABLE) from None
        if not model:
            return False
        admin_groups = set(self.service.admin_groups)
        return bool(model.get("admin")) or bool(admin_groups & set(model.get("groups") or []))


class APIHandler(BaseHandler):
    """The JSON API's base: errors as ``{"error": message}``, the caller's checks."""

    def set_default_headers(self):
        """JSON content type and ``Cache-Control: no-store`` on every answer, errors
        included. Called by tornado when the handler is made and on ``clear()``."""
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")

    def check_xsrf_cookie(self):
        """None for every method: the API has no XSRF check. Called by HubAuth before it
        accepts the hub's cookie."""
        # the API is called with tokens (Authorization header), which XSRF cannot forge;
        # a cookie alone is refused for changes by require_scope below
        return None

    def write_error(self, status_code, **kwargs):
        """An uncaught ``HTTPError`` as ``{"error": message}`` (tornado calls it)."""
        message = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        self.finish(json.dumps({"error": message}))

    def refuse(self, status: int, message: str, **extra):
        """Finish with HTTP ``status`` and ``{"error": message, **extra}``."""
        self.set_status(status)
        self.finish(json.dumps({"error": message, **extra}))

    def require_user(self) -> dict:
        """The caller's model; raises a 403 ``HTTPError`` when nobody is signed in."""
        if self.current_user is None:
            raise web.HTTPError(403, "Sign in to the hub, or send a hub token for this service.")
        return self.current_user

    def require_scope(self, scope: str) -> str:
        """The name of a caller whose *token* has ``scope``; raises a 403 ``HTTPError``
        otherwise (a cookie alone never changes anything)."""
        caller = self.require_user()
        if scope not in self.scopes or not self.request.headers.get("Authorization"):
            raise web.HTTPError(403, f"This token lacks the scope {scope}.")
        return caller["name"]

    def body(self):
        """The request's JSON body; raises :class:`BadRequest` when too large or not JSON."""
        if len(self.request.body) > MAX_BODY:
            raise BadRequest("The request body is too large.")
        try:
            return json.loads(self.request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("The request body is not valid JSON.") from None

    async def ledger(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` (a ledger call) in the service's thread pool."""
        return await self.service.in_thread(fn, *args, **kwargs)


class ReservationsHandler(APIHandler):
    """``POST reservations``: tokens with ``custom:jhub-af:accounting-reserve`` (the hub's
    spawner, the Dask Gateway)."""

    async def post(self):
        """Decide and record a reservation: 201 with it (and ``warnings``), 400 for a bad
        body, 403 with the sentence and ``reason`` when a limit refuses, 404 for a user
        the hub does not know, 503 when the database or the hub cannot be reached."""
        client = self.require_scope(RESERVE_SCOPE)
        started = time.perf_counter()
        try:
            await self._reserve(client)
        finally:
            self.service.metrics.decision_seconds.observe(time.perf_counter() - started)

    async def _reserve(self, client: str):
        denied = self.service.metrics.denied
        try:
            request = parse_request(self.body())
        except BadRequest as e:
            denied.labels("invalid").inc()
            return self.refuse(400, str(e))
        try:
            decision, row = await self.service.reserve(request, client)
        except LookupError as e:
            denied.labels("unknown_user").inc()
            return self.refuse(404, str(e))
        except (LedgerUnavailable, HubUnavailable):
            denied.labels("unavailable").inc()
            return self.refuse(503, UNAVAILABLE)
        if not decision.granted:
            denied.labels(decision.reason).inc()
            return self.refuse(403, decision.message, reason=decision.reason)
        self.service.metrics.granted.labels(request.kind).inc()
        self.set_status(201)
        self.finish(json.dumps({**row.as_json(), "warnings": list(decision.warnings)}))


class ReservationHandler(APIHandler):
    """``POST reservations/{id}/confirm``, ``POST reservations/{id}/heartbeat``, ``DELETE
    reservations/{id}``: the reserve scope, and only the service that made it (403)."""

    async def _change(self, rid: str, action: str):
        client = self.require_scope(RESERVE_SCOPE)
        svc = self.service
        fn = {
            "confirm": lambda: svc.ledger.confirm(rid, client, ttl=svc.heartbeat_ttl),
            "heartbeat": lambda: svc.ledger.heartbeat(rid, client, ttl=svc.heartbeat_ttl),
            "release": lambda: svc.ledger.release(rid, client),
        }[action]
        try:
            row = await self.ledger(fn)
        except LedgerError as e:
            return self.refuse(e.status, str(e))
        except LedgerUnavailable:
            return self.refuse(503, UNAVAILABLE)
        self.finish(json.dumps(row.as_json()))

    async def post(self, rid: str, action: str):
        """Confirm or renew: 200 with the reservation, 404, 403 (not yours), 409
        (lapsed or closed), 503."""
        await self._change(rid, action)

    async def delete(self, rid: str):
        """Release: answers as :meth:`post` (a second release is a 409)."""
        await self._change(rid, "release")


def _day_argument(text: str | None, name: str) -> float | None:
    if not text:
        return None
    try:
        return epoch_of_day(text)
    except ValueError:
        raise BadRequest(f"{name} must be a date like 2026-11-01.") from None


class UsageHandler(APIHandler):
    """``GET usage/me``: any signed-in user (hub OAuth or a user's token).
    ``GET usage/users/{name}``: that user, admins, members of
    ``AccountingService.admin_groups``, tokens with ``custom:jhub-af:accounting-read``.
    ``GET usage/groups/{group}``: the last three."""

    async def get(self, who: str, name: str | None = None):
        """The report of :meth:`.AccountingService.user_report` or ``group_report`` for
        [``since``, ``until``) (query, ``2026-11-01``); ``{"error"}`` with 400 (``me`` of
        a service, a bad date), 403 (not signed in, not yours), 404 (unknown user or
        group), 503 (hub or database down). Called by tornado for the routes above."""
        caller = self.require_user()
        if who == "me":
            if caller.get("kind", "user") != "user":
                return self.refuse(400, "usage/me is for users; ask for usage/users/{name}.")
            name = caller["name"]
        elif not (who == "users" and name == caller["name"]) and not await self.sees_all():
            whose = "another user's" if who == "users" else "a group's"
            return self.refuse(403, f"You may see only your own usage, not {whose}.")
        try:
            since = _day_argument(self.get_argument("since", None), "since")
            until = _day_argument(self.get_argument("until", None), "until")
        except BadRequest as e:
            return self.refuse(400, str(e))
        try:
            if who == "groups":
                if not await self.service.hub.group_exists(name):
                    return self.refuse(404, f"Unknown group {name}: the hub has no such group.")
                report = await self.service.group_report(name, since, until)
            else:
                report = await self.service.user_report(name, since, until)
        except LookupError as e:
            return self.refuse(404, str(e))
        except (LedgerUnavailable, HubUnavailable):
            return self.refuse(503, UNAVAILABLE)
        self.finish(json.dumps(report))


class PolicyHandler(APIHandler):
    """``GET policy/me``: any signed-in user; their limits, where each comes from, and
    what is left of each (``remaining``)."""

    async def get(self):
        """The caller's :meth:`.AccountingService.policy_report` with ``remaining``:
        400 for a service's token, 403 when not signed in, 404 for a user the hub does
        not know, 503 when the hub or the database cannot be reached; errors
        ``{"error"}``. Called by tornado for ``GET policy/me``."""
        caller = self.require_user()
        if caller.get("kind", "user") != "user":
            return self.refuse(400, "policy/me is for users.")
        try:
            report = await self.service.policy_report(caller["name"], with_remaining=True)
        except LookupError as e:
            return self.refuse(404, str(e))
        except HubUnavailable:
            return self.refuse(503, HUB_UNAVAILABLE)
        except LedgerUnavailable:
            return self.refuse(503, UNAVAILABLE)
        self.finish(json.dumps(report))
