"""Password = a hub API token: :class:`LoginChecker` decides who may log in as whom."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from .hub import HubClient, HubError
from .limits import FailureLimiter
from .names import BadLoginName, LoginName, parse_login, shown
from .scopes import has_scope

# what hub tokens look like (hex or url-safe base64); anything else is not sent to the hub
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,256}$")


@dataclass(frozen=True)
class Login:
    """A successful login: the user, the profile asked for, and the tokens to use."""

    name: LoginName
    owner: str  # whose token it is (an admin's, with allow_admin_access)
    token: str  # for the hub's REST API
    server_token: str  # for the user's server (terminals, channel)
    may_start: bool


class LoginChecker:
    """Checks SSH logins against the hub, counting failures per source and per name."""

    def __init__(
        self,
        hub: HubClient,
        per_source: FailureLimiter,
        per_user: FailureLimiter,
        *,
        allow_admin_access: bool,
        service_token: str,
        log: logging.Logger,
    ):
        self.hub = hub
        self.per_source = per_source
        self.per_user = per_user
        self.allow_admin_access = allow_admin_access
        self.service_token = service_token
        self.log = log

    async def check(self, source: str, login: str, password: str) -> Login | None:
        """The :class:`Login` for ``login`` (``alice`` or ``alice+profile``) from ``source``.

        ``password`` is accepted only if it is a hub token (``GET /hub/api/user``) of a
        *user* (not a service) who *is* the login name (or an admin, with
        ``allow_admin_access``), and it may use that user's server
        (``access:servers!server=NAME/``). ``may_start`` says whether it may also start
        it (``servers!user=NAME``).

        Returns None when refused; the reason is logged (never the token). A refusal is
        counted against the source and the name, except when the hub cannot be asked;
        a locked-out source or name is refused without asking the hub. Raises nothing.
        Called by :meth:`jhub_af.ssh.server.Connection.validate_password`.
        """
        who = f"{shown(login)} from {source}"
        if self.per_source.locked(source):
            self.log.warning("SSH login refused: %s: too many failures from this source", who)
            return None
        try:
            name = parse_login(login)
        except BadLoginName as e:
            return self._count_failure(source, None, who, str(e))
        if self.per_user.locked(name.user):
            self.log.warning("SSH login refused: %s: too many failures for this user", who)
            # hammering a locked name counts against the source (but asks no hub)
            if self.per_source.failed(source):
                self.log.warning("SSH: source %s locked out after repeated failures", source)
            return None
        if not TOKEN.fullmatch(password):
            return self._count_failure(source, name.user, who, "the password is not a hub token")
        try:
            model = await self.hub.identify(password)
        except (HubError, OSError) as e:
            self.log.error("SSH login refused: %s: the hub cannot be asked (%s)", who, e)
            return None  # not the user's fault: no failure counted
        if model is None:
            return self._count_failure(source, name.user, who, "invalid, expired or revoked token")
        reason = self._refusal(model, name)
        if reason:
            return self._count_failure(source, name.user, who, reason)
        owner = model["name"]
        scopes = set(model.get("scopes", []))
        may_start = has_scope(f"servers!user={name.user}", scopes)
        own = owner == name.user
        self.log.info(
            "SSH login: %s%s (token of %s)",
            who,
            f", profile {name.profile}" if name.profile else "",
            shown(owner) if not own else "the user",
        )
        return Login(
            name=name,
            owner=owner,
            token=password,
            server_token=password if own else self.service_token,
            may_start=may_start,
        )

    def _refusal(self, model: dict, name: LoginName) -> str:
        """Why the token described by ``model`` may not log in as ``name``, or ""."""
        if model.get("kind") != "user":
            return "not a user's token"
        admin_may = bool(model.get("admin")) and self.allow_admin_access
        if model.get("name") != name.user and not admin_may:
            return "the token belongs to another user"
        scopes = set(model.get("scopes", []))
        if not has_scope(f"access:servers!server={name.user}/", scopes):
            return "the token may not use the user's server (needs access:servers)"
        return ""

    def _count_failure(self, source: str, user: str | None, who: str, reason: str) -> None:
        """Log a refused login and count it against its source (and name, if known)."""
        self.log.warning("SSH login refused: %s: %s", who, reason)
        if self.per_source.failed(source):
            self.log.warning("SSH: source %s locked out after repeated failures", source)
        if user is not None and self.per_user.failed(user):
            self.log.warning("SSH: user %s locked out after repeated failures", shown(user))
        return None
