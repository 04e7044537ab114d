"""A real OpenID Connect provider (node ``oidc-provider`` 9, tests/idp/idp.mjs) on a free
loopback port, and a browser-less login through a hub that uses it.

``start_idp`` writes the IdP's JSON config (clients, accounts, keys, token lifetimes)
into ``workdir`` and runs ``node tests/idp/idp.mjs`` from the repository root.
The IdP keeps everything in memory: ``restart`` (and ``rotate_keys``, which restarts
with a new signing key) forgets sessions, grants and tokens.

Nothing here prints or logs a token or a secret: ``RunningIdP``'s repr leaves out
the client secret and the private keys.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests
from joserfc.jwk import RSAKey

from .hub import REPO
from .net import free_port, wait_for_http
from .processes import ManagedProcess

IDP_SCRIPT = REPO / "tests" / "idp" / "idp.mjs"
PUBLIC_JWK_MEMBERS = ("kty", "kid", "use", "alg", "n", "e")


def make_rsa_jwk(kid: str | None = None) -> dict:
    """A new private RSA (2048-bit) JWK for RS256 signatures, with ``kid`` (random if None)."""
    kid = kid or f"key-{secrets.token_hex(4)}"
    key = RSAKey.generate_key(
        2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True
    )
    return dict(key.as_dict(private=True))


def public_jwks(jwks: dict) -> dict:
    """The public part of a private JWKS (what the IdP publishes at its jwks_uri)."""
    return {
        "keys": [{k: v for k, v in key.items() if k in PUBLIC_JWK_MEMBERS} for key in jwks["keys"]]
    }


@dataclass
class RunningIdP:
    """An IdP at ``issuer`` (http://127.0.0.1:PORT) with one confidential client.

    ``jwks`` is the private key set; its first key signs the ID tokens."""

    issuer: str
    port: int
    client_id: str
    client_secret: str = field(repr=False)
    jwks: dict = field(repr=False)
    workdir: Path
    settings: dict = field(repr=False)
    process: ManagedProcess | None = field(default=None, repr=False)
    _discovery: dict | None = field(default=None, repr=False)

    # ---- lifecycle -------------------------------------------------------------------
    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def config_file(self) -> Path:
        return self.workdir / "idp-config.json"

    @property
    def log(self) -> Path:
        return self.workdir / "idp.log"

    def _start(self, timeout: float = 30) -> None:
        config = {
            "port": self.port,
            "issuer": self.issuer,
            "jwks": self.jwks,
            **self.settings,
        }
        self.config_file.touch(mode=0o600, exist_ok=True)
        self.config_file.write_text(json.dumps(config, indent=2))
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not on PATH (the test IdP needs Node.js 20+)")
        process = ManagedProcess(
            [node, str(IDP_SCRIPT), str(self.config_file)], log=self.log, cwd=REPO
        )
        try:
            wait_for_http(self.discovery_url, timeout, process.alive, process.log_tail)
        except Exception:
            process.stop()
            raise
        self.process = process
        self._discovery = None

    def stop(self) -> int | None:
        if self.process is None:
            return None
        code = self.process.stop()
        self.process = None
        return code

    def restart(self, jwks: dict | None = None) -> None:
        """Stop and start again on the same port (with ``jwks`` if given).

        The IdP keeps its state in memory: sessions, grants and tokens are gone."""
        self.stop()
        if jwks is not None:
            self.jwks = jwks
        # the port was ours a moment ago; give the kernel a moment if it is not free yet
        deadline = time.monotonic() + 10
        while True:
            try:
                self._start()
                return
            except RuntimeError:
                if time.monotonic() > deadline or "EADDRINUSE" not in self._log_text():
                    raise
                time.sleep(0.2)

    def rotate_keys(self, keep_old: bool = True) -> str:
        """Restart with a new signing key first in the key set; keep the old keys
        published (``keep_old``) or drop them. Returns the new key's ``kid``."""
        new = make_rsa_jwk()
        keys = [new, *self.jwks["keys"]] if keep_old else [new]
        self.restart({"keys": keys})
        return new["kid"]

    def _log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # ---- what clients see ------------------------------------------------------------
    @property
    def signing_kid(self) -> str:
        return self.jwks["keys"][0]["kid"]

    @property
    def public_jwks(self) -> dict:
        return public_jwks(self.jwks)

    def discovery(self) -> dict:
        """The IdP's discovery document (fetched once per start)."""
        if self._discovery is None:
            r = requests.get(self.discovery_url, timeout=10)
            r.raise_for_status()
            self._discovery = r.json()
        return self._discovery

    def endpoint(self, name: str) -> str:
        """A discovery entry, e.g. ``endpoint("token")`` -> ``token_endpoint``."""
        return self.discovery()[f"{name}_endpoint"]

    def _client_post(self, endpoint: str, data: dict) -> requests.Response:
        """POST with the client's credentials: in the body (client_secret_post) or
        in an Authorization header (client_secret_basic)."""
        method = self.settings["clients"][0]["token_endpoint_auth_method"]
        if method == "client_secret_basic":
            auth = (self.client_id, self.client_secret)
        else:
            auth = None
            data = {"client_id": self.client_id, "client_secret": self.client_secret, **data}
        return requests.post(self.endpoint(endpoint), data=data, auth=auth, timeout=10)

    def token_request(self, **params) -> dict:
        """POST ``params`` to the token endpoint with the client's credentials;
        the JSON answer (an ``error`` member when the IdP refused)."""
        r = self._client_post("token", params)
        try:
            body = r.json()
        except ValueError:
            raise AssertionError(f"token endpoint: HTTP {r.status_code}, not JSON") from None
        return body

    def revoke(self, token: str, hint: str = "refresh_token") -> None:
        """Revoke ``token`` at the revocation endpoint (RFC 7009)."""
        r = self._client_post("revocation", {"token": token, "token_type_hint": hint})
        if r.status_code != 200:
            raise AssertionError(f"revocation: HTTP {r.status_code} {r.text[:300]}")


def start_idp(
    workdir: Path,
    accounts: dict[str, dict],
    redirect_uris: list[str],
    *,
    access_token_ttl: int = 3600,
    refresh_token_ttl: int = 86400,
    id_token_ttl: int = 3600,
    jwks: dict | None = None,
    client_id: str = "jhub-af",
    client_secret: str | None = None,
    token_endpoint_auth_method: str = "client_secret_post",  # noqa: S107 (a method name)
    rotate_refresh_tokens: bool = False,
    port: int | None = None,
    timeout: float = 30,
) -> RunningIdP:
    """Start the test IdP on ``port`` (a free one if None) with one client and ``accounts``.

    ``accounts``: username -> claims (``sub``, which defaults to the username,
    ``email``, ``name``, ``preferred_username``, ``wlcg.groups``, ``groups``,
    ``eduperson_entitlement``). ``token_endpoint_auth_method`` is
    ``client_secret_post`` (credentials in the POST body, oauthenticator's default)
    or ``client_secret_basic``."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    client_secret = client_secret or secrets.token_urlsafe(32)
    settings = {
        "clients": [
            {
                "client_id": client_id,
                "client_secret": client_secret,
                "redirect_uris": list(redirect_uris),
                "token_endpoint_auth_method": token_endpoint_auth_method,
            }
        ],
        "accounts": accounts,
        "access_token_ttl": access_token_ttl,
        "refresh_token_ttl": refresh_token_ttl,
        "id_token_ttl": id_token_ttl,
        "rotate_refresh_tokens": rotate_refresh_tokens,
    }
    idp = RunningIdP(
        issuer=f"http://127.0.0.1:{port}",
        port=port,
        client_id=client_id,
        client_secret=client_secret,
        jwks=jwks or {"keys": [make_rsa_jwk()]},
        workdir=workdir,
        settings=settings,
    )
    idp._start(timeout)
    return idp


# ---- a browser-less login ----------------------------------------------------------------
class _FormParser(HTMLParser):
    """The forms of a page: [(action, {input name: value})]."""

    def __init__(self):
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self._current: dict[str, str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._current = {}
            self.forms.append((a.get("action") or "", self._current))
        elif tag == "input" and self._current is not None and a.get("name"):
            self._current[a["name"]] = a.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def _forms(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def drive_login(
    s: requests.Session,
    r: requests.Response,
    username: str,
    until: Callable[[str], bool],
    *,
    password: str = "any",  # noqa: S107 (the IdP takes any password)
    max_steps: int = 20,
) -> tuple[str | None, requests.Response]:
    """From response ``r``, follow redirects and fill in the IdP's login form (as
    ``username``) and consent form, until a redirect goes to a URL for which
    ``until(url)`` is true. Returns (that URL, not fetched, and the redirecting
    response), or (None, the page it stopped at: one without a form, e.g. an error)."""
    for _ in range(max_steps):
        if r.is_redirect:
            url = urljoin(r.url, r.headers["Location"])
            if until(url):
                return url, r
            r = s.get(url, allow_redirects=False, timeout=30)
            continue
        forms = _forms(r.text) if r.status_code == 200 else []
        if not forms:
            return None, r
        action, data = forms[0]
        if "login" in data:
            data.update(login=username, password=password)
        r = s.post(urljoin(r.url, action), data=data, allow_redirects=False, timeout=30)
    raise AssertionError(f"login of {username}: no way back after {max_steps} steps")


def oidc_login_response(
    hub_url: str,
    username: str,
    *,
    password: str = "any",  # noqa: S107 (the IdP takes any password)
    session: requests.Session | None = None,
) -> tuple[requests.Session, requests.Response]:
    """Log in at the hub through its OAuth login and the IdP's login and consent forms.

    Follows redirects by hand up to the hub's ``/hub/oauth_callback`` and returns
    (session, that callback's response, not followed further: 302 when the hub let
    the user in). If the IdP stops on a page that is no form of its own (an
    error page), that page is returned instead. Nothing is raised for 4xx/5xx."""
    s = session or requests.Session()
    r = s.get(f"{hub_url}/hub/oauth_login", allow_redirects=False, timeout=30)
    url, r = drive_login(
        s,
        r,
        username,
        lambda url: urlsplit(url).path.endswith("/hub/oauth_callback"),
        password=password,
    )
    if url is None:
        return s, r
    return s, s.get(url, allow_redirects=False, timeout=60)


def oidc_login(
    hub_url: str,
    username: str,
    *,
    password: str = "any",  # noqa: S107 (the IdP takes any password)
) -> requests.Session:
    """A session logged in at the hub as ``username`` through the IdP (fails the
    test with the last page's text otherwise); REST calls carry X-XSRFToken."""
    s, r = oidc_login_response(hub_url, username, password=password)
    if s.get(f"{hub_url}/hub/api/user", timeout=10).status_code != 200:
        raise AssertionError(
            f"login of {username} through the IdP failed: HTTP {r.status_code} at "
            f"{urlsplit(r.url).path}\n{r.text[:1000]}"
        )
    xsrf = s.cookies.get("_xsrf", path="/hub/")
    if xsrf is None:
        s.get(f"{hub_url}/hub/home", timeout=30)
        xsrf = s.cookies.get("_xsrf", path="/hub/")
    s.headers["X-XSRFToken"] = xsrf
    return s
