"""A small async client for Rucio's REST API, made for paging: :class:`RucioClient`,
:func:`take_page` (one page of a streamed listing), :func:`did_item` (the panel's
item for a DID)."""

from __future__ import annotations

import email.utils
import json
import os
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import httpx

from ..api import PanelError
from .config import InstanceConfig
from .redirects import follow, origin_text, same_origin_only, sends_token, storage_url

TOKEN_MARGIN_SECONDS = 300


def did_path(scope: str, name: str) -> str:
    """``scope/name`` quoted for a Rucio API path (slashes in names included)."""
    return f"{quote(scope, safe='')}/{quote(name, safe='')}"


def default_proxy_path() -> str:
    """The user's X.509 proxy: ``$X509_USER_PROXY``, else ``/tmp/x509up_u<uid>``."""
    return os.environ.get("X509_USER_PROXY") or f"/tmp/x509up_u{os.getuid()}"  # noqa: S108


def _expiry(header: str | None) -> float:
    """Rucio's X-Rucio-Auth-Token-Expires ('Sun, 22 Nov 2026 10:01:05 UTC') as epoch."""
    if header:
        try:
            return email.utils.parsedate_to_datetime(header).timestamp()
        except (TypeError, ValueError):
            pass
    return time.time() + 3600


async def take_page(lines: AsyncIterator[dict], page: int, page_size: int) -> tuple[list, bool]:
    """Items ``page*page_size`` .. ``+page_size`` of a stream, and whether more follow;
    reads at most one item past the page, then stops."""
    skip, items = page * page_size, []
    try:
        async for item in lines:
            if skip:
                skip -= 1
                continue
            if len(items) == page_size:
                return items, True
            items.append(item)
        return items, False
    finally:
        # close the HTTP stream now, so Rucio stops sending the rest
        aclose = getattr(lines, "aclose", None)
        if aclose is not None:
            await aclose()


class RucioClient:
    """One Rucio instance, with the credentials of its configuration; one per instance,
    kept by the Data tab's handlers. Every call raises :class:`PanelError` with a
    sentence naming the instance (401 credentials, 403 refused, 404 unknown DID,
    409 conflict, 503 unreachable or failing).

    Rucio streams its listings as one JSON object per line; the listings here stop
    reading as soon as they have a page (:func:`take_page`), so the first page of a
    100,000-file dataset costs one short ``list_files`` read plus ``/replicas/list``
    for that page's files only.

    Tokens: ``userpass`` and ``x509`` tokens are fetched from the auth server once and
    cached until shortly before they expire (and fetched again once if Rucio refuses
    one); ``oidc`` reads the user's IAM token from its file on every call (the
    BearerTokenKeeper rewrites the file before it expires). Tokens are never logged.

    Where credentials go (:mod:`.redirects`): the token, password and proxy go only to
    the configured ``url`` and ``auth_url``; a redirect from Rucio to another origin is
    refused (502, naming that origin) before anything is sent there. Downloads send the
    storage token only over https to the PFN's own origin; ``http://`` PFNs and
    redirects to another host are fetched without credentials.
    """

    def __init__(self, config: InstanceConfig, timeout: float = 30, log=None):
        self.config = config
        self.log = log
        self._token: str | None = None
        self._token_expires = 0.0
        self.timeout = httpx.Timeout(timeout, connect=min(timeout, 10))
        # redirects are followed by .redirects.follow, which picks each hop's headers
        self.http = httpx.AsyncClient(
            verify=self._ssl_context(), timeout=self.timeout, follow_redirects=False
        )

    def _ssl_context(self, client_cert: str = "") -> ssl.SSLContext:
        ca = self.config.ca_cert
        ctx = ssl.create_default_context(
            cafile=ca if ca and os.path.isfile(ca) else None,
            capath=ca if ca and os.path.isdir(ca) else None,
        )
        if client_cert:
            ctx.load_cert_chain(client_cert)  # a proxy file holds certificate and key
        return ctx

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self.http.aclose()

    # --- credentials ---------------------------------------------------------

    def _unreachable(self, exc: Exception) -> PanelError:
        return PanelError(
            503,
            f"The Rucio server '{self.config.name}' ({self.config.url}) does not answer "
            f"({type(exc).__name__}). Try again in a few minutes; if it persists, tell "
            "your facility's admins.",
        )

    def _refused(self) -> PanelError:
        c = self.config
        if c.auth == "oidc":
            return PanelError(
                401,
                f"Rucio '{c.name}' did not accept your IAM token (it may have expired). "
                "Stop and start your server from the hub's control panel (File > Hub "
                "Control Panel), or log out and in again, to get a fresh token.",
            )
        if c.auth == "x509":
            return PanelError(
                401,
                f"Rucio '{c.name}' did not accept your X.509 proxy "
                f"({c.proxy_path or default_proxy_path()}); it may have expired. Renew it "
                "(voms-proxy-init) in a terminal and try again.",
            )
        return PanelError(
            401,
            f"Rucio '{c.name}' did not accept the username and password configured for "
            f"account '{c.account}'. Ask your facility's admins to check the panel's "
            "Rucio settings; nothing in your server needs to change.",
        )

    def _elsewhere(self, url: str, asked: str) -> PanelError:
        c = self.config
        return PanelError(
            502,
            f"Rucio '{c.name}' sent the panel to another host, {origin_text(url)}, instead "
            f"of answering from {origin_text(asked)}; the panel sends your credentials only "
            "to the configured Rucio, so it stopped there. Tell your facility's admins (if "
            "Rucio moved, its 'url' or 'auth_url' in RucioPanel.instances must say so).",
        )

    @asynccontextmanager
    async def _rucio(self, http: httpx.AsyncClient, method: str, url: str, headers: dict, **kw):
        """A streamed request to Rucio, following redirects to the same origin only."""
        hops = same_origin_only(url, headers, lambda target: self._elsewhere(target, url))
        async with follow(http, method, url, hops, **kw) as r:
            yield r

    def _oidc_token(self) -> str:
        path = self.config.token_file or os.environ.get("BEARER_TOKEN_FILE", "")
        try:
            token = Path(path).read_text().strip() if path else ""
        except OSError:
            token = ""
        if not token:
            raise PanelError(
                401,
                f"No IAM token for Rucio '{self.config.name}' (no $BEARER_TOKEN_FILE). "
                "Stop and start your server from the hub's control panel (File > Hub "
                "Control Panel), or log out and in again.",
            )
        return token

    async def _fetch_token(self) -> None:
        c = self.config
        headers = {"X-Rucio-Account": c.account}
        proxy = c.proxy_path or default_proxy_path()
        if c.vo:
            headers["X-Rucio-VO"] = c.vo
        if c.auth == "userpass":
            headers["X-Rucio-Username"] = c.username
            headers["X-Rucio-Password"] = c.password
            url = f"{c.auth_url}/auth/userpass"
        else:
            if not os.path.exists(proxy):
                raise PanelError(
                    401,
                    f"No X.509 proxy at {proxy} for Rucio '{c.name}'. Create one "
                    "(voms-proxy-init) in a terminal and try again.",
                )
            url = f"{c.auth_url}/auth/x509"
        try:
            if c.auth == "x509":
                # the proxy is renewed by the user: load it afresh for each token
                async with httpx.AsyncClient(
                    verify=self._ssl_context(proxy), timeout=self.timeout
                ) as x509_http:
                    r = await self._read(x509_http, url, headers)
            else:
                r = await self._read(self.http, url, headers)
        except httpx.HTTPError as e:
            raise self._unreachable(e) from None
        except ssl.SSLError as e:
            raise PanelError(
                401,
                f"Your X.509 proxy {proxy} cannot be used ({e}). "
                "Renew it (voms-proxy-init) and try again.",
            ) from None
        token = r.headers.get("X-Rucio-Auth-Token")
        if r.status_code != 200 or not token:
            if r.status_code in (401, 403):
                raise self._refused()
            raise self._upstream_error(r)
        self._token = token
        self._token_expires = _expiry(r.headers.get("X-Rucio-Auth-Token-Expires"))

    async def _read(self, http: httpx.AsyncClient, url: str, headers: dict) -> httpx.Response:
        async with self._rucio(http, "GET", url, headers) as r:
            await r.aread()
        return r

    async def _headers(self, fresh: bool = False) -> dict:
        headers = {"Accept": "application/x-json-stream, application/json"}
        if self.config.vo:
            headers["X-Rucio-VO"] = self.config.vo
        if self.config.auth == "oidc":
            headers["X-Rucio-Auth-Token"] = self._oidc_token()
            return headers
        if fresh or not self._token or time.time() > self._token_expires - TOKEN_MARGIN_SECONDS:
            await self._fetch_token()
        headers["X-Rucio-Auth-Token"] = self._token
        return headers

    def storage_headers(self) -> dict:
        """Credentials for reading from storage: the IAM token for oidc, none for the
        other kinds. Sent only where :func:`.redirects.sends_token` allows; called by
        :meth:`open_replica`."""
        if self.config.auth == "oidc":
            return {"Authorization": f"Bearer {self._oidc_token()}"}
        return {}

    # --- requests ------------------------------------------------------------

    def _upstream_error(self, r: httpx.Response) -> PanelError:
        cls = r.headers.get("ExceptionClass", "")
        msg = r.headers.get("ExceptionMessage", "")
        if not msg:
            try:
                body = json.loads(r.content or b"{}")
                cls, msg = body.get("ExceptionClass", cls), body.get("ExceptionMessage", "")
            except (ValueError, AttributeError):
                msg = ""
        if r.status_code == 404 or cls.endswith("NotFound"):
            return PanelError(404, f"Rucio '{self.config.name}': {msg or 'not found'}.")
        if r.status_code in (401, 403) and cls == "AccessDenied":
            return PanelError(403, f"Rucio '{self.config.name}' refused this: {msg}")
        if r.status_code == 409:
            return PanelError(409, f"Rucio '{self.config.name}': {msg}")
        if r.status_code >= 500:
            return PanelError(
                503,
                f"The Rucio server '{self.config.name}' failed ({r.status_code} "
                f"{cls or 'error'}). Try again in a few minutes; if it persists, tell your "
                "facility's admins.",
            )
        return PanelError(400, f"Rucio '{self.config.name}' refused the request: {cls} {msg}")

    @asynccontextmanager
    async def _stream(self, method: str, path: str, **kwargs):
        """A streamed response from Rucio, token renewed once if it was refused."""
        url = f"{self.config.url}/{path}"
        for attempt in (0, 1):
            headers = await self._headers(fresh=attempt == 1)
            try:
                async with self._rucio(self.http, method, url, headers, **kwargs) as r:
                    if r.status_code == 401 and attempt == 0 and self.config.auth != "oidc":
                        continue
                    if r.status_code == 401:
                        raise self._refused()
                    if r.status_code >= 300:
                        await r.aread()
                        raise self._upstream_error(r)
                    yield r
                    return
            except httpx.HTTPError as e:
                raise self._unreachable(e) from None

    async def _lines(self, method: str, path: str, **kwargs) -> AsyncIterator[dict]:
        async with self._stream(method, path, **kwargs) as r:
            async for line in r.aiter_lines():
                if line.strip():
                    yield json.loads(line)

    async def _json(self, method: str, path: str, **kwargs):
        async with self._stream(method, path, **kwargs) as r:
            body = await r.aread()
        return json.loads(body) if body.strip() else None

    async def ping(self) -> dict:
        """Rucio's ``ping`` answer (its version)."""
        return await self._json("GET", "ping")

    # --- the panel's queries ---------------------------------------------------

    async def search(
        self, scope: str, pattern: str, did_type: str, page: int, page_size: int
    ) -> tuple[list[dict], bool]:
        """One page of the DIDs of ``did_type`` in ``scope`` whose names match
        ``pattern`` (Rucio's wildcards), as :func:`did_item`, and whether more follow."""
        params = {
            "type": did_type,
            "name": pattern,
            "long": "True",
            "limit": str((page + 1) * page_size + 1),
        }
        lines = self._lines("GET", f"dids/{quote(scope, safe='')}/dids/search", params=params)
        rows, more = await take_page(lines, page, page_size)
        return [did_item(r) for r in rows], more

    async def get_did(self, scope: str, name: str, totals: bool = True) -> dict:
        """One DID; ``totals`` adds a collection's bytes (summed over its files by
        Rucio, which costs time on a large dataset) and events."""
        params = {"dynamic_depth": "FILE"} if totals else {}
        row = await self._json("GET", f"dids/{did_path(scope, name)}", params=params)
        item = did_item(row)
        if totals and item["type"] in ("dataset", "container"):
            # events live in the metadata (Rucio sums the files' events for datasets)
            meta = await self._json("GET", f"dids/{did_path(scope, name)}/meta")
            item["events"] = (meta or {}).get("events")
        return item

    async def children(
        self, scope: str, name: str, did_type: str, page: int, page_size: int
    ) -> tuple[list[dict], bool]:
        """A container's datasets/containers, or a dataset's files (with events)."""
        if did_type == "dataset":
            lines = self._lines("GET", f"dids/{did_path(scope, name)}/files")
            rows, more = await take_page(lines, page, page_size)
            return [did_item({**r, "type": "FILE"}) for r in rows], more
        lines = self._lines("GET", f"dids/{did_path(scope, name)}/dids")
        rows, more = await take_page(lines, page, page_size)
        return [did_item(r) for r in rows], more

    async def replicas(self, dids: list[dict]) -> dict[tuple[str, str], list[dict]]:
        """``{(scope, name): [{"rse", "pfns"}]}`` for these files only, all schemes."""
        found: dict[tuple[str, str], list[dict]] = {(d["scope"], d["name"]): [] for d in dids}
        if not dids:
            return found
        body = {
            "dids": [{"scope": d["scope"], "name": d["name"]} for d in dids],
            "schemes": ["root", "davs", "https", "http", "file"],
            "domain": "all",
            "all_states": False,
            "resolve_archives": False,
        }
        async for row in self._lines("POST", "replicas/list", json=body):
            found[(row["scope"], row["name"])] = [
                {"rse": rse, "pfns": pfns} for rse, pfns in sorted((row.get("rses") or {}).items())
            ]
        return found

    async def add_rule(self, scope: str, name: str, rse: str) -> str:
        """A rule for one copy of ``scope:name`` at ``rse``, for the instance's account;
        its id. The handler checks first that the instance allows ``rse``."""
        body = {
            "dids": [{"scope": scope, "name": name}],
            "copies": 1,
            "rse_expression": rse,
            "account": self.config.account,
            "grouping": "DATASET",
            "weight": None,
            "lifetime": None,
            "locked": False,
            "ask_approval": False,
            "asynchronous": False,
            "comment": "requested from the JupyterLab panel",
        }
        ids = await self._json("POST", "rules/", json=body)
        return ids[0]

    @asynccontextmanager
    async def open_replica(self, pfn: str):
        """A streamed GET of an ``https``, ``davs`` or ``http`` PFN; called by the
        downloads. The storage credentials (:meth:`storage_headers`) go only over https
        to the PFN's own origin: an ``http://`` PFN, and any redirect to another host,
        is fetched without them (so a storage that allows anonymous reads still works,
        and the token never crosses the network in clear or leaves for another host).
        Raises :class:`PanelError`: 401 when the storage refuses, saying whether the
        panel withheld the token; 502 for too many redirects; 503 when it fails."""
        url = storage_url(pfn)
        creds = self.storage_headers()

        def hop(hop_url: str) -> dict:
            return creds if sends_token(hop_url, url) else {}

        try:
            async with follow(self.http, "GET", url, hop) as r:
                if r.status_code in (401, 403):
                    withheld = bool(creds) and not hop(str(r.url))
                    raise self._storage_refused(pfn, r, withheld)
                if r.status_code >= 300:
                    raise PanelError(
                        503, f"The storage answered {r.status_code} for {pfn}; try another replica."
                    )
                yield r
        except httpx.HTTPError as e:
            raise PanelError(
                503,
                f"The storage behind {pfn} does not answer ({type(e).__name__}); "
                "try another replica.",
            ) from None

    def _storage_refused(self, pfn: str, r: httpx.Response, withheld: bool) -> PanelError:
        if withheld:
            return PanelError(
                401,
                f"The storage at {origin_text(str(r.url))} refused to send {pfn} "
                f"({r.status_code}) without credentials; the panel sends your token only "
                "over https to the replica's own host. Pick an https:// or davs:// replica, "
                "or open the file with the snippet.",
            )
        return PanelError(
            401,
            f"The storage refused to send {pfn} ({r.status_code}). " + self._refused().message,
        )


def did_item(row: dict) -> dict:
    """Rucio's DID row (search, content, files or get_did) -> the panel's item."""
    kind = (row.get("did_type") or row.get("type") or "FILE").lower()
    return {
        "scope": row["scope"],
        "name": row["name"],
        "type": kind,
        "bytes": row.get("bytes"),
        "events": row.get("events"),
    }
