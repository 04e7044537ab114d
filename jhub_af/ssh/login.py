"""Password = a hub API token: :class:`LoginChecker` decides who may log in as whom."""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

from .hub import HubClient, HubError
from .limits import SourceLimiter
from .names import BadLoginName, LoginName, parse_login, shown
from .scopes import SSH_SCOPE, has_scope

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


class LoginRefused(Exception):
    """A refusal with a sentence for the person at the ssh prompt (``str(exc)``).

    Raised by :meth:`LoginChecker.check`; :meth:`jhub_af.ssh.server.Connection.
    validate_password` ends the connection with it as the reason, which OpenSSH prints.
    """


class LoginChecker:
    """Checks SSH logins against the hub, counting failures per source address."""

    def __init__(
        self,
        hub: HubClient,
        limiter: SourceLimiter,
        *,
        allow_admin_access: bool,
        service_token: str,
        token_page: str,
        log: logging.Logger,
    ):
        self.hub = hub
        self.limiter = limiter
        self.allow_admin_access = allow_admin_access
        self.service_token = service_token
        self.token_page = token_page
        self.log = log

    async def check(self, source: str, login: str, password: str) -> Login | None:
        """The :class:`Login` for ``login`` (``alice`` or ``alice+profile``) from ``source``.

        ``password`` is accepted only if it is a hub token (``GET /hub/api/user``) of a
        *user* (not a service) who *is* the login name (or an admin, with
        ``allow_admin_access``), that is meant for SSH (``custom:jhub-af:ssh`` for its
        owner, as tokens from the token page have and the server's own token has not),
        and that may use that user's server (``access:servers!server=NAME/``).
        ``may_start`` says whether it may also start it (``servers!user=NAME``).

        A refusal is logged with its reason (never the token) and counted against the
        source, except when the hub cannot be asked. The hub is asked even for a
        rate-limited source, so a valid token is never refused for anyone's failures;
        a rate-limited source's logins only wait their turn (one hub check at a time).
        Returns None when refused without a sentence (the client may try another
        password). Raises :class:`LoginRefused` with a sentence for the person when the
        token is not meant for SSH, or when the source is rate-limited (it is told for
        how long). Called by :meth:`jhub_af.ssh.server.Connection.validate_password`.
        """
        turn = self.limiter.turn(source)
        if turn is None:
            outcome = await self._decide(source, login, password)
        else:
            async with turn:
                outcome = await self._decide(source, login, password)
        if isinstance(outcome, Login):
            return outcome
        sentences = [outcome] if outcome else []
        wait = self.limiter.retry_after(source)
        if wait:
            sentences.append(self._rate_limited(source, wait))
        if sentences:
            raise LoginRefused(" ".join(sentences))
        return None

    async def _decide(self, source: str, login: str, password: str) -> Login | str:
        """The Login, or a sentence for the person ("" for none) after logging why."""
        who = f"{shown(login)} from {source}"
        try:
            name = parse_login(login)
        except BadLoginName as e:
            return self._failed(source, who, str(e))
        if not TOKEN.fullmatch(password):
            return self._failed(source, who, "the password is not a hub token")
        try:
            model = await self.hub.identify(password)
        except (HubError, OSError) as e:
            self.log.error("SSH login refused: %s: the hub cannot be asked (%s)", who, e)
            return ""  # not the user's fault: no failure counted
        if model is None:
            return self._failed(source, who, "invalid, expired or revoked token")
        reason, sentence = self._refusal(model, name)
        if reason:
            return self._failed(source, who, reason, sentence)
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

    def _refusal(self, model: dict, name: LoginName) -> tuple[str, str]:
        """Why the token described by ``model`` may not log in as ``name`` (for the log,
        "" if it may), and a sentence for the person ("" for none)."""
        if model.get("kind") != "user":
            return "not a user's token", ""
        admin_may = bool(model.get("admin")) and self.allow_admin_access
        if model.get("name") != name.user and not admin_may:
            return "the token belongs to another user", ""
        scopes = set(model.get("scopes", []))
        if not has_scope(f"{SSH_SCOPE}!user={model.get('name')}", scopes):
            return f"the token is not meant for SSH (no {SSH_SCOPE})", (
                f"af-ssh: this token is not meant for SSH (it lacks {SSH_SCOPE}). "
                f"Make a new token on the hub's token page, {self.token_page}, keeping "
                "its default permissions, and log in with that one."
            )
        if not has_scope(f"access:servers!server={name.user}/", scopes):
            return "the token may not use the user's server (needs access:servers)", ""
        return "", ""

    def _failed(self, source: str, who: str, reason: str, sentence: str = "") -> str:
        """Log a refused login, count it against its source; return ``sentence``."""
        self.log.warning("SSH login refused: %s: %s", who, reason)
        if self.limiter.failed(source):
            self.log.warning(
                "SSH: source %s rate-limited after %d failed logins within %.0f seconds",
                source,
                self.limiter.max_failures,
                self.limiter.window,
            )
        return sentence

    def _rate_limited(self, source: str, wait: float) -> str:
        """The sentence that tells a rate-limited source what is going on and what to do."""
        return (
            f"af-ssh: too many failed logins from your address ({source}): it is "
            f"rate-limited for {math.ceil(wait)} more seconds, and every wrong token ends "
            "the connection. A valid token still logs in at once: paste yours again, or "
            f"make a new one at {self.token_page}."
        )
