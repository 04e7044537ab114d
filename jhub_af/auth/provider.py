"""An OIDC provider as the hub sees it: discovery metadata and its signing keys.

Metadata comes from ``{issuer}/.well-known/openid-configuration`` and is kept
for ``metadata_ttl`` seconds. The JWKS is cached; a token signed with a key we
do not know triggers one refetch (the provider rotated its keys), at most once
per ``jwks_refetch_interval`` so that forged tokens cannot hammer the provider.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from joserfc.jwk import KeySet

from .id_token import DEFAULT_ALGORITHMS, UnknownSigningKey, verify_id_token

FetchJSON = Callable[[str], Awaitable[dict]]


class IdPUnreachable(Exception):
    """The identity provider did not answer (or answered nonsense)."""


class OIDCProvider:
    """One OIDC provider's discovery metadata and signing keys, cached.

    ``fetch_json(url)`` is how it reads the web (IAMAuthenticator passes its own
    ``httpfetch``); every failure to read becomes :class:`IdPUnreachable`.
    """

    def __init__(
        self,
        issuer: str,
        fetch_json: FetchJSON,
        *,
        discovery_url: str = "",
        jwks_url: str = "",
        metadata_ttl: float = 3600,
        jwks_refetch_interval: float = 30,
    ):
        self.issuer = issuer
        self.discovery_url = discovery_url or (
            issuer.rstrip("/") + "/.well-known/openid-configuration"
        )
        self._jwks_url = jwks_url
        self._fetch_json = fetch_json
        self.metadata_ttl = metadata_ttl
        self.jwks_refetch_interval = jwks_refetch_interval
        self._metadata: dict | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = float("-inf")

    async def _get(self, url: str, what: str) -> dict:
        """The JSON object at ``url``; IdPUnreachable names ``what`` failed."""
        try:
            data = await self._fetch_json(url)
        except Exception as e:
            raise IdPUnreachable(f"{what} from {url}: {type(e).__name__}") from e
        if not isinstance(data, dict):
            raise IdPUnreachable(f"{what} from {url}: not a JSON object")
        return data

    async def metadata(self) -> dict:
        """The discovery document (cached for ``metadata_ttl`` s).

        Raises IdPUnreachable when it cannot be read or names another issuer.
        Called by :meth:`IAMAuthenticator.discover` and :meth:`jwks_url`.
        """
        if self._metadata is None or time.monotonic() - self._metadata_at > self.metadata_ttl:
            data = await self._get(self.discovery_url, "OIDC discovery")
            if data.get("issuer") != self.issuer:
                raise IdPUnreachable(
                    f"OIDC discovery at {self.discovery_url} names issuer "
                    f"{data.get('issuer')!r}, not the configured {self.issuer!r}"
                )
            self._metadata = data
            self._metadata_at = time.monotonic()
        return self._metadata

    async def jwks_url(self) -> str:
        """The configured JWKS URL, else discovery's ``jwks_uri`` (IdPUnreachable if none)."""
        if self._jwks_url:
            return self._jwks_url
        url = (await self.metadata()).get("jwks_uri")
        if not url:
            raise IdPUnreachable("the provider publishes no jwks_uri")
        return url

    async def key_set(self, refresh: bool = False) -> KeySet:
        """The provider's keys, fetched once; ``refresh=True`` fetches them again, at most
        once per ``jwks_refetch_interval``. Raises IdPUnreachable."""
        stale = time.monotonic() - self._keys_at > self.jwks_refetch_interval
        if self._keys is None or (refresh and stale):
            data = await self._get(await self.jwks_url(), "JWKS")
            try:
                keys = KeySet.import_key_set(data)
            except Exception as e:
                raise IdPUnreachable(f"JWKS is not a valid key set: {type(e).__name__}") from e
            self._keys = keys
            self._keys_at = time.monotonic()
        return self._keys

    async def verify_id_token(
        self,
        token: object,
        *,
        audience: str,
        nonce: str | None,
        algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS,
        leeway: int = 60,
    ) -> dict:
        """The ID token's claims, verified against the cached keys; on an unknown key
        the JWKS is refetched once (key rotation). Raises IDTokenInvalid or
        IdPUnreachable. Called by :meth:`IAMAuthenticator.verify_id_token`."""
        kwargs = dict(
            issuer=self.issuer, audience=audience, nonce=nonce, algorithms=algorithms, leeway=leeway
        )
        try:
            return verify_id_token(token, await self.key_set(), **kwargs)
        except UnknownSigningKey:
            return verify_id_token(token, await self.key_set(refresh=True), **kwargs)
