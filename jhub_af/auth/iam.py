"""IAMAuthenticator: OIDC login against an experiment's IAM, with VO groups.

A thin subclass of oauthenticator's GenericOAuthenticator that adds what IAM
and VO groups need:
- endpoints from OIDC discovery of ``issuer`` (explicit URLs still win);
- the ID token verified (signature against the JWKS with key rotation, issuer,
  audience, expiry) and a ``nonce`` sent and checked;
- groups from ``wlcg.groups``, ``groups`` and ``eduperson_entitlement`` claims
  (:mod:`.claims`, entitlements only from the namespaces the admin trusts),
  admission by VO (:mod:`.vo`) and then by OAuthenticator's own ``allowed_users``,
  ``allowed_groups`` and ``blocked_users``, admins by user or group;
- access tokens refreshed before they run out, and a refused refresh turned
  into a new login;
- refusals on a page that says why and what to do (:class:`.LoginDenied`).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path

from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.oauth2 import OAuthCallbackHandler, OAuthLoginHandler
from tornado import web
from tornado.httpclient import HTTPClientError
from traitlets import Bool, Integer, List, TraitError, Unicode, default, validate

from .bearer import BEARER_TOKEN_ROUTE, BearerTokenHandler
from .claims import (
    DEFAULT_ENTITLEMENT_NAMESPACES,
    DEFAULT_GROUP_CLAIMS,
    entitlement_pattern,
    groups_from_claims,
)
from .denial import DenialPageMixin, LoginDenied
from .id_token import DEFAULT_ALGORITHMS, IDTokenInvalid
from .provider import IdPUnreachable, OIDCProvider
from .vo import admit_by_vo, vos_of

NONCE_COOKIE = "jhub-af-oidc-nonce"
NOTICE_COOKIE = "jhub-af-notice"  # a fixed code the login page explains (templates/)
LOGIN_BLOCK = (Path(__file__).parent / "templates" / "login_block.html").read_text()
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]*$")

UNREACHABLE = (
    "Cannot reach IAM",
    "The facility could not reach your experiment's identity service (IAM) to sign you "
    "in. It may be down or unreachable for a moment: wait a minute and sign in again. "
    "If it persists, tell the facility's admins.",
)
RETRY = (
    "Sign-in could not be completed",
    "This sign-in could not be matched to your browser session: it may have been "
    "started in another tab, taken too long, or been used already. Close this page "
    "and sign in again.",
)


class IAMLoginHandler(DenialPageMixin, OAuthLoginHandler):
    """The redirect to IAM, after discovery, with a nonce kept in a signed cookie."""

    async def get(self):
        """Discover IAM's endpoints, set the nonce cookie, redirect to IAM (OAuthenticator).

        Raises LoginDenied (503) when IAM cannot be reached."""
        try:
            await self.authenticator.discover()
        except IdPUnreachable as e:
            self.log.warning("IAM login unavailable: %s", e)
            raise LoginDenied(*UNREACHABLE, status=503) from e
        self._af_nonce = secrets.token_urlsafe(32)
        self._set_cookie(NONCE_COOKIE, self._af_nonce, expires_days=1, httponly=True)
        super().get()

    def authorize_redirect(self, *args, **kwargs):
        """OAuthenticator's redirect, with this login's nonce among its parameters."""
        extra = dict(kwargs.pop("extra_params", None) or {})
        extra["nonce"] = self._af_nonce
        super().authorize_redirect(*args, extra_params=extra, **kwargs)


class IAMCallbackHandler(DenialPageMixin, OAuthCallbackHandler):
    """The return from IAM: state, code and errors checked with messages a user can act on."""

    def check_arguments(self):
        """OAuthenticator's check of ``state`` and ``code``; IAM's own error, a bad state
        or a missing code become a LoginDenied page (called by its ``get``)."""
        error = self.get_argument("error", "")
        if error:
            # the IdP's own words (escaped on the page), e.g. "access_denied"
            described = self.get_argument("error_description", error)[:300]
            raise LoginDenied(
                "IAM did not sign you in",
                f"Your identity service answered: {described}. Sign in again; if it "
                "keeps failing, tell the facility's admins.",
            )
        try:
            super().check_arguments()
        except web.HTTPError as e:
            self.log.warning("OAuth callback rejected: %s", e.log_message)
            raise LoginDenied(*RETRY, status=400) from e

    def log_exception(self, typ, value, tb):
        """tornado's hook: log the path only, never the query's code and state."""
        # tornado's own line names the whole URI, whose query holds the code and state
        if isinstance(value, web.HTTPError):
            self.log.warning(
                "%d %s %s: %s",
                value.status_code,
                self.request.method,
                self.request.path,
                value.log_message % value.args if value.args else value.log_message,
            )
        else:
            self.log.error(
                "Uncaught exception %s %s",
                self.request.method,
                self.request.path,
                exc_info=(typ, value, tb),
            )

    def af_nonce(self) -> str | None:
        """This login's nonce from its signed cookie (cleared: usable once), or None.

        Called by :meth:`IAMAuthenticator.authenticate`."""
        value = self.get_secure_cookie(NONCE_COOKIE)
        self.clear_cookie(NONCE_COOKIE)
        return value.decode("utf8", "replace") if value else None


class IAMAuthenticator(GenericOAuthenticator):
    """Sign in with an experiment's IAM (INDIGO IAM, CILogon, Keycloak: any OIDC provider)."""

    login_handler = IAMLoginHandler
    callback_handler = IAMCallbackHandler

    issuer = Unicode(
        config=True,
        help="""
        The OIDC issuer URL, e.g. ``https://atlas-auth.cern.ch/`` (INDIGO IAM) or
        ``https://cilogon.org``. The authorize, token, userinfo and JWKS endpoints
        are read from ``{issuer}/.well-known/openid-configuration``; set
        ``authorize_url``, ``token_url``, ``userdata_url`` or ``jwks_url`` to
        override one of them. Must be exactly the ``iss`` of the provider's tokens.
        """,
    )

    jwks_url = Unicode(
        config=True,
        help="The provider's JWKS URL. Default: the ``jwks_uri`` of OIDC discovery.",
    )

    group_claims = List(
        Unicode(),
        default_value=list(DEFAULT_GROUP_CLAIMS),
        config=True,
        help="""
        Userinfo claims that carry VO groups; the groups of every one present are
        joined. ``wlcg.groups`` holds paths (``/atlas/users``), ``groups`` holds
        IAM group names (``atlas/users``), and ``eduperson_entitlement`` holds URNs
        read from ``entitlement_namespaces`` (and ``entitlement_patterns``). All
        become paths like ``/atlas/users``,
        which are the JupyterHub group names. A login whose userinfo has none of
        these claims is refused.
        """,
    )

    entitlement_namespaces = List(
        Unicode(),
        default_value=list(DEFAULT_ENTITLEMENT_NAMESPACES),
        config=True,
        help="""
        The URN namespaces whose ``eduperson_entitlement`` values are read as
        groups (AARC-G002: ``<namespace>:group:<VO>[:<subgroup>...][:role=<role>]
        #<group authority>``). Only an entitlement whose namespace is listed
        exactly becomes a group; any other is ignored, because anyone running an
        IdP can write ``urn:geant:<their own domain>:group:atlas``.

        Examples: EGI Check-in's ``urn:mace:egi.eu`` reads
        ``urn:mace:egi.eu:group:atlas:users:role=member#aai.egi.eu`` as
        ``/atlas/users``; a GEANT-style namespace names its authority,
        ``urn:geant:cern.ch`` for ``urn:geant:cern.ch:group:atlas#cern.ch``.
        Append ``#<group authority>`` to also require the authority that ends
        the entitlement: ``urn:mace:egi.eu#aai.egi.eu``.

        Default: ``["urn:mace:egi.eu", "urn:geant:cern.ch"]``. An empty list
        ignores entitlements (unless ``entitlement_patterns`` reads them).
        """,
    )

    entitlement_patterns = List(
        Unicode(),
        config=True,
        help="""
        Regular expressions for entitlement forms that do not follow AARC-G002
        (``entitlement_namespaces`` covers those that do). Each has a named group
        ``group`` whose ``:`` separate subgroups. Write the namespace literally
        into the pattern: a pattern that accepts any namespace accepts groups
        from anyone. Default: none (the EGI and GEANT forms are read through
        ``entitlement_namespaces``).
        """,
    )

    allowed_vos = List(
        Unicode(),
        config=True,
        help="""
        VOs whose members may sign in, as top-level groups: ``["/atlas", "/cms"]``.
        Membership of a subgroup (``/atlas/users``) counts. An empty list admits
        members of any VO, but never a user with no VO.

        Every user must pass this rule; OAuthenticator's ``allowed_users`` and
        ``allowed_groups`` (``{"/atlas/users"}``), when set, narrow it further:
        a user must then also be listed or in one of the groups. Admins are set
        with ``admin_users`` and ``admin_groups`` (they still need an admitted
        VO), and ``blocked_users`` are refused whatever their groups.
        """,
    )

    id_token_algorithms = List(
        Unicode(),
        default_value=list(DEFAULT_ALGORITHMS),
        config=True,
        help="Signature algorithms accepted on ID tokens. ``none`` is never accepted.",
    )

    id_token_leeway = Integer(
        60,
        min=0,
        config=True,
        help="Seconds of clock skew allowed when checking an ID token's ``exp`` and ``iat``.",
    )

    access_token_min_ttl = Integer(
        300,
        min=0,
        config=True,
        help="""
        Refresh the access token when it has less than this many seconds left
        (checked on every auth refresh, before a spawn, and when a notebook asks
        for its bearer token). Default 300.
        """,
    )

    max_username_length = Integer(
        64,
        min=1,
        config=True,
        help="""
        Longest username accepted from the ``username_claim``. Longer names are
        refused with a message, not truncated (truncation could make two people
        one user).
        """,
    )

    jwks_refetch_interval = Integer(
        30,
        min=0,
        config=True,
        help="""
        When an ID token is signed with a key the cached JWKS lacks (the provider
        rotated its keys), the JWKS is fetched again, but at most once per this
        many seconds, so that forged tokens cannot make the hub hammer the provider.
        """,
    )

    show_claims_in_log = Bool(
        False,
        config=True,
        help="Log the names (never the values) of the claims IAM sent, to debug group mapping.",
    )

    @default("manage_groups")
    def _default_manage_groups(self):
        return True

    @default("enable_auth_state")
    def _default_enable_auth_state(self):
        return True

    @default("allow_all")
    def _default_allow_all(self):
        # the VO rule (update_auth_model) alone decides, unless OAuthenticator's own
        # allow config narrows it; then check_allowed must run (JupyterHub skips it
        # when allow_all is True)
        return not any(getattr(self, name) for name in _NARROWING)

    @validate("entitlement_namespaces")
    def _valid_namespaces(self, proposal):
        for namespace in proposal.value:
            try:
                entitlement_pattern(namespace)
            except ValueError as e:
                raise TraitError(f"{type(self).__name__}.entitlement_namespaces: {e}") from e
        return proposal.value

    @validate("entitlement_patterns")
    def _valid_patterns(self, proposal):
        for pattern in proposal.value:
            try:
                named = "group" in re.compile(pattern).groupindex
            except re.error as e:
                named = False
                why = f"is not a regular expression ({e})"
            else:
                why = "has no named group 'group'"
            if not named:
                raise TraitError(f"{type(self).__name__}.entitlement_patterns: {pattern!r} {why}")
        return proposal.value

    @default("refresh_pre_spawn")
    def _default_refresh_pre_spawn(self):
        return True

    @default("auth_refresh_age")
    def _default_auth_refresh_age(self):
        return 300

    @default("scope")
    def _default_scope(self):
        return ["openid", "profile", "email", "wlcg.groups", "offline_access"]

    @default("username_claim")
    def _default_username_claim(self):
        return "preferred_username"

    @default("login_service")
    def _default_login_service(self):
        return "IAM"

    @default("custom_html")
    def _default_custom_html(self):
        # the usual "Sign in with IAM" button, plus a notice when a session was ended
        return LOGIN_BLOCK

    @default("auth_state_groups_key")
    def _default_groups_key(self):
        # read by get_user_groups below; a dotted key could not read wlcg.groups
        return "af_groups"

    _provider: OIDCProvider | None = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._subject_of: dict[str, str] = {}  # username -> IAM subject, once signed in

    @property
    def entitlement_regexes(self) -> tuple[str, ...]:
        """The patterns of ``entitlement_namespaces`` then ``entitlement_patterns``.

        Read by :meth:`update_auth_model` at each login and refresh."""
        from_namespaces = map(entitlement_pattern, self.entitlement_namespaces)
        return (*from_namespaces, *self.entitlement_patterns)

    def check_allow_config(self):
        """JupyterHub's start-up check of the allow config (JupyterHub 5+): its warning,
        and a ValueError naming the options when ``allow_all = True`` is set together
        with ``allowed_users``, ``allowed_groups``, ``allowed_scopes`` or
        ``allow_existing_users``, which it would silently override. Called by
        JupyterHub once, before it serves."""
        super().check_allow_config()
        narrowing = [name for name in _NARROWING if getattr(self, name)]
        if self.allow_all and narrowing:
            cls = type(self).__name__
            raise ValueError(
                f"{cls}.allow_all = True admits every member of {cls}.allowed_vos and "
                f"would make {cls}.{narrowing[0]} ignored: remove {cls}.allow_all (it "
                f"is False by default when {cls}.{narrowing[0]} is set)"
            )

    def check_blocked_users(self, username, authentication=None):
        """JupyterHub's check of ``blocked_users``: True when ``username`` is not blocked.

        Raises LoginDenied (the page says the account is blocked) instead of
        returning False. Called by JupyterHub after :meth:`authenticate`, and by
        :meth:`refreshed_auth_model`."""
        if super().check_blocked_users(username, authentication):
            return True
        self.log.warning("IAM login of %s refused: in blocked_users", username)
        raise LoginDenied(
            "Account blocked here",
            f"Your account {username!r} is blocked on this facility. If you think this "
            "is a mistake, ask the facility's admins.",
        )

    async def check_allowed(self, username, auth_model):
        """OAuthenticator's check of ``allowed_users``, ``allowed_groups``,
        ``allowed_scopes`` and admins, for a user who already passed the VO rule in
        :meth:`update_auth_model`. Returns True; raises LoginDenied (the page names
        the groups this facility admits) where OAuthenticator returns False.
        Called by JupyterHub unless ``allow_all``, and by :meth:`refreshed_auth_model`."""
        if await super().check_allowed(username, auth_model):
            return True
        self.log.warning("IAM login of %s refused: not in allowed_users/allowed_groups", username)
        raise LoginDenied(
            "Not admitted to this facility", self._not_allowed_advice(username, auth_model)
        )

    def _not_allowed_advice(self, username: str, auth_model: dict) -> str:
        vos = vos_of(auth_model.get("groups") or ())
        if len(vos) == 1:
            yours = f"Your VO {vos[0]} is admitted"
        else:
            yours = f"Your VOs {', '.join(vos)} are admitted"
        only = []
        if self.allowed_groups:
            only.append("members of " + ", ".join(sorted(self.allowed_groups)))
        if self.allowed_users:
            only.append("the users it lists by name")
        if self.allowed_scopes:
            only.append("sign-ins granted the scopes " + ", ".join(sorted(self.allowed_scopes)))
        if self.allowed_groups:
            ask = (
                "Ask your VO administrator to add you to one of these groups in IAM, or "
                "ask this facility's admins for access, then sign in again."
            )
        else:
            ask = f"Ask this facility's admins to admit your username {username!r}."
        return f"{yours}, but this facility admits only {' or '.join(only)}. {ask}"

    def get_handlers(self, app):
        """OAuthenticator's login and callback routes plus the bearer-token API
        (:class:`jhub_af.auth.bearer.BearerTokenHandler`). Called by JupyterHub."""
        return [*super().get_handlers(app), (BEARER_TOKEN_ROUTE, BearerTokenHandler)]

    @property
    def provider(self) -> OIDCProvider:
        """The issuer's :class:`OIDCProvider`, made on first use; ValueError without issuer."""
        if self._provider is None:
            if not self.issuer:
                raise ValueError("IAMAuthenticator.issuer must be set (the OIDC issuer URL)")
            self._provider = OIDCProvider(
                self.issuer,
                self._fetch_json,
                jwks_url=self.jwks_url,
                jwks_refetch_interval=self.jwks_refetch_interval,
            )
        return self._provider

    async def _fetch_json(self, url: str) -> dict:
        return await self.httpfetch(url, method="GET", validate_cert=self.validate_server_cert)

    async def discover(self) -> dict:
        """Fill the endpoints that are not set explicitly from OIDC discovery; return the
        metadata. Raises IdPUnreachable. Called before every login and token refresh."""
        meta = await self.provider.metadata()
        for trait, key in (
            ("authorize_url", "authorization_endpoint"),
            ("token_url", "token_endpoint"),
            ("userdata_url", "userinfo_endpoint"),
        ):
            if not getattr(self, trait):
                if not meta.get(key):
                    raise IdPUnreachable(f"OIDC discovery has no {key}")
                setattr(self, trait, meta[key])
        return meta

    async def _token_request(self, handler, params: dict) -> dict:
        try:
            return await self.get_token_info(handler, params)
        except HTTPClientError as e:
            body = getattr(e.response, "body", b"") or b""
            try:
                error = json.loads(body).get("error", "")
            except ValueError:
                error = ""
            if e.code and 400 <= e.code < 500:
                raise _TokenRejected(error or f"HTTP {e.code}") from e
            raise IdPUnreachable(f"token endpoint: HTTP {e.code}") from e
        except web.HTTPError as e:
            # oauthenticator's "An access token was not returned: ..."
            raise _TokenRejected("no access token") from e
        except OSError as e:
            raise IdPUnreachable(f"token endpoint: {type(e).__name__}") from e

    async def verify_id_token(self, token: object, nonce: str | None) -> dict:
        """The claims of ``token`` for this client (IDTokenInvalid or IdPUnreachable
        otherwise); ``nonce=None`` for a refresh. Called at login and refresh."""
        return await self.provider.verify_id_token(
            token,
            audience=self.client_id,
            nonce=nonce,
            algorithms=tuple(self.id_token_algorithms),
            leeway=self.id_token_leeway,
        )

    async def authenticate(self, handler, data=None, **kwargs):
        """The auth model of the user IAM signed in, after every check of this login.

        OAuthenticator's own ``authenticate`` exchanges the code and reads userinfo;
        this one also checks the nonce the login sent (kept in the callback handler's
        cookie, which no other hook sees), verifies the ID token, and refuses a
        userinfo subject other than the ID token's or a name that belongs to another
        account. Raises :class:`LoginDenied` (the page says why) for every refusal.
        Called by JupyterHub's login flow through :class:`IAMCallbackHandler`.
        """
        nonce = handler.af_nonce() if isinstance(handler, IAMCallbackHandler) else None
        if not nonce:
            self.log.warning("IAM login without a nonce cookie")
            raise LoginDenied(*RETRY, status=400)
        token_info = await self._exchange_code(handler, data)
        id_claims = await self._verified_id_claims(token_info, nonce)
        auth_model = await self._login_auth_model(token_info)
        user_info = auth_model["auth_state"][self.user_auth_state_key]
        if user_info.get("sub") != id_claims["sub"]:
            self.log.warning("IAM userinfo subject differs from the ID token's")
            raise LoginDenied(*RETRY, status=400)
        await self._check_name_is_theirs(handler, auth_model["name"], id_claims["sub"])
        return auth_model

    async def _exchange_code(self, handler, data) -> dict:
        """The token endpoint's answer to this login's authorization code."""
        try:
            await self.discover()
            params = self.build_access_tokens_request_params(handler, data)
            return await self._token_request(handler, params)
        except IdPUnreachable as e:
            self.log.warning("IAM login failed, provider unreachable: %s", e)
            raise LoginDenied(*UNREACHABLE, status=503) from e
        except _TokenRejected as e:
            # a replayed or expired code, or a client misconfiguration
            self.log.warning("IAM refused the authorization code: %s", e)
            raise LoginDenied(*RETRY, status=400) from e

    async def _verified_id_claims(self, token_info: dict, nonce: str) -> dict:
        """The claims of the login's ID token, which must carry this login's nonce."""
        try:
            return await self.verify_id_token(token_info.get("id_token"), nonce)
        except IDTokenInvalid as e:
            self.log.warning("IAM login refused: %s", e)
            raise LoginDenied(
                "Sign-in could not be verified",
                "The identity token from IAM did not pass the facility's checks, so you "
                "were not signed in. Sign in again; if it keeps failing, tell the "
                "facility's admins (the hub's log says which check failed).",
            ) from e
        except IdPUnreachable as e:
            self.log.warning("IAM login failed, JWKS unreachable: %s", e)
            raise LoginDenied(*UNREACHABLE, status=503) from e

    async def _login_auth_model(self, token_info: dict) -> dict:
        """OAuthenticator's auth model (userinfo, auth_state, groups) for this login.

        ``_token_to_auth_model`` is OAuthenticator's private step shared by its
        ``authenticate`` and ``refresh_user``; it alone applies ``manage_groups`` and
        ``modify_auth_state_hook``, so it is called rather than copied.
        """
        try:
            return await self._token_to_auth_model(token_info)
        except (HTTPClientError, OSError) as e:
            self.log.warning("IAM userinfo failed: %s", type(e).__name__)
            raise LoginDenied(*UNREACHABLE, status=503) from e

    async def _check_name_is_theirs(self, handler, name: str, sub: str) -> None:
        """Refuse a login whose name already belongs to another IAM account.

        Two accounts can map to one username (``Alice`` and ``alice`` normalise
        alike); the first to sign in keeps it. Owners are remembered after a
        login succeeds, so a returning user costs no database query or decryption.
        """
        known = self._subject_of.get(name)
        if known is not None and _same(known, sub):
            return
        # unknown, or someone else: ask the database (an admin may have removed the user)
        user = handler.find_user(name)
        state = await user.get_auth_state() if user is not None else None
        owner = ((state or {}).get(self.user_auth_state_key) or {}).get("sub")
        if owner and not _same(owner, sub):
            self.log.warning("IAM login refused: username %s belongs to another subject", name)
            raise LoginDenied(
                "Username already taken",
                f"Your IAM account maps to the username {name!r}, which already belongs "
                "to a different IAM account on this facility. Ask the facility's admins "
                "to sort out the clash.",
            )

    async def run_post_auth_hook(self, handler, authentication):
        """JupyterHub's last step of a login that passed every check: remember whose
        IAM subject the name belongs to (see :meth:`_check_name_is_theirs`)."""
        # the login passed every check (blocked users, allowed): the name is theirs
        authentication = await super().run_post_auth_hook(handler, authentication)
        state = (authentication or {}).get("auth_state") or {}
        sub = (state.get(self.user_auth_state_key) or {}).get("sub")
        if sub:
            self._subject_of[authentication["name"]] = str(sub)
        return authentication

    def user_info_to_username(self, user_info):
        """OAuthenticator's hook: the normalized ``username_claim``. Raises LoginDenied
        when the claim is missing or the name is too long or holds other characters."""
        raw = user_info.get(self.username_claim) if isinstance(user_info, dict) else None
        if not isinstance(raw, str) or not raw.strip():
            raise LoginDenied(
                "No username from IAM",
                f"IAM did not send the {self.username_claim!r} claim this facility uses as "
                "username. Tell the facility's admins.",
            )
        name = self.normalize_username(raw.strip())
        if len(name) > self.max_username_length or not _USERNAME.match(name):
            self.log.warning("IAM login refused: unusable username (%d characters)", len(name))
            raise LoginDenied(
                "Username not usable here",
                f"Your IAM username cannot be used on this facility: it must be at most "
                f"{self.max_username_length} characters of lower-case letters, digits and "
                "'.', '_', '-', '@'. Tell the facility's admins.",
            )
        return name

    def build_auth_state_dict(self, token_info, user_info):
        """OAuthenticator's hook: its auth_state plus ``expires_at`` (epoch seconds)."""
        auth_state = super().build_auth_state_dict(token_info, user_info)
        expires_in = token_info.get("expires_in")
        if isinstance(expires_in, int | float):
            auth_state["expires_at"] = time.time() + expires_in
        return auth_state

    async def update_auth_model(self, auth_model):
        """VO groups from the claims, then the VO rule: admit or refuse with the reason."""
        user_info = auth_model["auth_state"][self.user_auth_state_key]
        if self.show_claims_in_log:
            self.log.info("IAM claims for %s: %s", auth_model["name"], sorted(user_info))
        claimed = groups_from_claims(user_info, self.group_claims, self.entitlement_regexes)
        if claimed.dropped:
            self.log.warning(
                "Ignored %d group values of %s that are not group paths",
                claimed.dropped,
                auth_model["name"],
            )
        if not claimed.claims_present:
            raise LoginDenied(
                "No group information from IAM",
                "IAM sent no group membership ("
                + ", ".join(self.group_claims)
                + "), so the facility cannot tell which VO you belong to. Sign in again "
                "and allow the facility to read your groups; if that does not help, tell "
                "the facility's admins (the client may lack the wlcg.groups scope).",
            )
        admission = admit_by_vo(claimed.groups, self.allowed_vos)
        if not admission.admitted:
            self.log.warning("IAM login of %s refused: %s", auth_model["name"], admission.reason)
            raise LoginDenied(admission.reason, admission.advice)
        auth_model["auth_state"]["af_groups"] = list(claimed.groups)
        return auth_model

    async def get_user_groups(self, auth_state):
        """OAuthenticator's hook (``manage_groups``): the VO groups update_auth_model kept."""
        return set(auth_state.get("af_groups", []))

    async def refresh_user(self, user, handler=None, **kwargs):
        """Keep the access token fresh and the groups current; False means "sign in again"."""
        auth_state = await user.get_auth_state()
        if not auth_state:
            return False
        try:
            model = await self.refreshed_auth_model(user, auth_state)
        except IdPUnreachable as e:
            # keep a still-valid session going while IAM is away
            self.log.warning("Auth refresh of %s: IAM unreachable (%s)", user.name, e)
            return auth_state.get("expires_at", 0) > time.time()
        if model is None:
            if handler is not None:
                # the login page this request is sent to says why (login_block.html)
                handler.set_cookie(NOTICE_COOKIE, "iam-session-ended", max_age=300)
            return False
        return model

    async def refreshed_auth_model(self, user, auth_state: dict) -> dict | None:
        """A fresh auth model for ``user``, or None when they must sign in again.

        The access token is refreshed first when it has less than
        ``access_token_min_ttl`` left (or userinfo refuses it); userinfo is read
        again, so group changes and VO removals in IAM take effect. Raises
        IdPUnreachable when IAM does not answer.
        """
        token_info = dict(auth_state.get("token_response") or {})
        refreshed = False
        if auth_state.get("expires_at", 0) - time.time() < self.access_token_min_ttl:
            token_info = await self._refresh_tokens(user, auth_state)
            refreshed = True
        for _ in range(2):
            if token_info is None:
                return None
            try:
                model = await self._token_to_auth_model(token_info)
            except LoginDenied as e:
                self.log.warning("Auth refresh of %s: %s; new login needed", user.name, e.reason)
                return None
            except HTTPClientError as e:
                if not (e.code and 400 <= e.code < 500):
                    raise IdPUnreachable(f"userinfo: HTTP {e.code}") from e
                if refreshed:
                    return None
                # userinfo refused the access token (revoked early): refresh once
                token_info = await self._refresh_tokens(user, auth_state)
                refreshed = True
                continue
            except OSError as e:
                raise IdPUnreachable(f"userinfo: {type(e).__name__}") from e
            stored = (auth_state.get(self.user_auth_state_key) or {}).get("sub")
            fresh = model["auth_state"][self.user_auth_state_key].get("sub")
            if model["name"] != user.name or (stored and not _same(stored, fresh)):
                # IAM now maps this session to another name or account
                self.log.warning("Auth refresh of %s: IAM identity changed; new login", user.name)
                return None
            return model if await self._still_allowed(model) else None
        return None

    async def _still_allowed(self, model: dict) -> bool:
        """Whether a refreshed user still passes ``blocked_users`` and ``check_allowed``
        (removed from an allowed group in IAM: the session ends; the new login says why)."""
        try:
            self.check_blocked_users(model["name"], model)
            if not self.allow_all:
                await self.check_allowed(model["name"], model)
        except LoginDenied as e:
            self.log.warning("Auth refresh of %s: %s; new login needed", model["name"], e.reason)
            return False
        return True

    async def _refresh_tokens(self, user, auth_state) -> dict | None:
        refresh_token = auth_state.get("refresh_token")
        if not refresh_token:
            self.log.info("No refresh token for %s; new login needed", user.name)
            return None
        await self.discover()
        params = self.build_refresh_token_request_params(refresh_token)
        try:
            token_info = await self._token_request(None, params)
        except _TokenRejected as e:
            self.log.warning(
                "Refresh token of %s was refused (%s): revoked or expired; new login needed",
                user.name,
                e,
            )
            return None
        if token_info.get("id_token"):
            try:
                await self.verify_id_token(token_info["id_token"], nonce=None)
            except IDTokenInvalid as e:
                self.log.warning("Refreshed ID token of %s rejected: %s", user.name, e)
                return None
        if not token_info.get("refresh_token"):
            token_info["refresh_token"] = refresh_token
        return token_info


def _same(a: object, b: object) -> bool:
    """Constant-time equality of two subjects (any characters)."""
    return secrets.compare_digest(str(a).encode(), str(b).encode())


# OAuthenticator's allow config that narrows the VO rule (allow_existing_users adds
# existing users to allowed_users, which JupyterHub does only when allow_all is False)
_NARROWING = ("allowed_users", "allowed_groups", "allowed_scopes", "allow_existing_users")


class _TokenRejected(Exception):
    """The token endpoint answered with an OAuth error (invalid_grant, ...)."""
