"""Where the panel's credentials may go: the pure rules, and :func:`follow`, the one
way the Data tab follows a redirect.

The panel follows redirects itself (its httpx clients never do), so that each hop's
headers are chosen here, before anything is sent:

- to Rucio (:meth:`RucioClient._stream` and the token fetch), a hop to another
  origin (scheme, host or port) is refused with a sentence naming that origin; the
  token or password never leaves for it (:func:`same_origin_only`);
- to storage (downloads), the bearer token goes only over https and only to the
  PFN's own origin; other hops are made without credentials (:func:`sends_token`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import asynccontextmanager
from urllib.parse import urljoin, urlsplit

import httpx

from ..api import PanelError

REDIRECT_STATUSES = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5
DEFAULT_PORTS = {"http": 80, "https": 443, "davs": 443}
BODY_KEYS = ("json", "content", "data", "files")

Origin = tuple[str, str, int | None]


def origin(url: str) -> Origin:
    """``(scheme, host, port)`` of ``url`` in lower case, the port filled in for http
    and https; ``("", "", None)`` for a URL that cannot be read (it matches nothing).
    Called by :func:`same_origin_only` and :func:`sends_token`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ("", "", None)
    kind = parts.scheme.lower()
    return (kind, (parts.hostname or "").lower(), port or DEFAULT_PORTS.get(kind))


def origin_text(url: str) -> str:
    """``scheme://host:port`` of ``url``, as the refusals name it (never a path or a
    query, which may hold a signed capability)."""
    kind, host, port = origin(url)
    if not kind:
        return "an address the panel cannot read"
    host = f"[{host}]" if ":" in host else host
    return f"{kind}://{host}:{port}" if port else f"{kind}://{host}"


def redirect_target(status: int, location: str | None, base: str) -> str | None:
    """The absolute URL a redirect answer points to (``location`` resolved against
    ``base``), or None when ``status`` is not a redirect or has no ``Location``."""
    if status not in REDIRECT_STATUSES or not location:
        return None
    return urljoin(base, location.strip())


def storage_url(pfn: str) -> str:
    """The URL fetched for a download PFN: ``davs://`` is WebDAV over TLS, fetched as
    ``https://``; other PFNs are fetched as they are."""
    if pfn[:7].lower() == "davs://":
        return "https://" + pfn[7:]
    return pfn


def sends_token(url: str, pfn_url: str) -> bool:
    """Whether a download hop to ``url`` may carry the storage credentials: only over
    https, and only to the origin of the PFN Rucio listed (``pfn_url``, from
    :func:`storage_url`). Storage doors (dCache, EOS) redirect to data servers with a
    one-time authorisation in the URL, so those hops work without the token."""
    return origin(url)[0] == "https" and origin(url) == origin(pfn_url)


def same_origin_only(
    first_url: str, headers: dict, refusal: Callable[[str], PanelError]
) -> Callable[[str], dict]:
    """The hop policy for Rucio: ``headers`` for every hop to the origin of
    ``first_url``; a hop anywhere else raises ``refusal(url)`` before anything is sent.

    Refused rather than followed without credentials: the calls the panel makes to
    Rucio never redirect to another host on a working instance, so such a redirect is
    a misconfiguration or an attack, and following it without the token would only
    end in a 401 that hides what happened. Used by :class:`RucioClient`."""
    allowed = origin(first_url)

    def hop(url: str) -> dict:
        if origin(url) != allowed:
            raise refusal(url)
        return headers

    return hop


def _redirected(method: str, status: int, kwargs: dict) -> tuple[str, dict]:
    """The method and arguments of the next hop, as browsers and httpx do it: 303 (and
    301/302 after a POST) becomes a GET without a body; 307/308 repeat the request."""
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        return "GET", {k: v for k, v in kwargs.items() if k not in BODY_KEYS}
    return method, kwargs


@asynccontextmanager
async def follow(
    http: httpx.AsyncClient, method: str, url: str, headers_for: Callable[[str], dict], **kwargs
):
    """A streamed response to ``method url``, following at most ``MAX_REDIRECTS``
    redirects; each hop is sent with ``headers_for(hop_url)``, which may raise
    :class:`PanelError` to refuse the hop before it is sent (:func:`same_origin_only`).
    ``http`` must not follow redirects itself. Raises :class:`PanelError` 502 after too
    many redirects, and httpx's errors as they come. Used by :class:`RucioClient`."""
    for _ in range(MAX_REDIRECTS + 1):
        async with http.stream(method, url, headers=headers_for(url), **kwargs) as r:
            target = redirect_target(r.status_code, r.headers.get("Location"), str(r.url))
            if target is None:
                yield r
                return
        # the redirect's body is never read (a hostile server could make it endless)
        method, kwargs = _redirected(method, r.status_code, kwargs)
        url = target
    raise PanelError(
        502,
        f"{origin_text(url)} sent the panel through more than {MAX_REDIRECTS} redirects; "
        "try again later, and if it persists tell your facility's admins.",
    )
