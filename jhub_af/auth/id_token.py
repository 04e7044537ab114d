"""ID token verification (OpenID Connect Core 3.1.3.7), with joserfc doing the crypto.

Checked: the signature against the provider's JWKS (an allow-list of
algorithms, never ``none``), issuer, audience (and ``azp`` when there are
several audiences), expiry and issue time with a small leeway, and the nonce
the login sent.
"""

from __future__ import annotations

import hmac
import time

from joserfc import errors, jwt
from joserfc.jwk import KeySet

DEFAULT_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")


class IDTokenInvalid(Exception):
    """The ID token failed a check; ``str()`` names the check, never the token."""


class UnknownSigningKey(IDTokenInvalid):
    """The token names a key the cached JWKS does not have: refetch it (key rotation)."""


def _rejected(check: str) -> IDTokenInvalid:
    """The error for a failed ``check`` (its name only: never the token)."""
    return IDTokenInvalid(f"ID token rejected: {check}")


def verify_id_token(
    token: object,
    key_set: KeySet,
    *,
    issuer: str,
    audience: str,
    nonce: str | None,
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS,
    leeway: int = 60,
    now: float | None = None,
) -> dict:
    """Return the token's claims if every check passes; raise IDTokenInvalid otherwise.

    ``nonce=None`` skips the nonce check (a token from a refresh has none to match).
    Raises :class:`UnknownSigningKey` (an IDTokenInvalid) when the token's key is not
    in ``key_set``, so the caller can refetch the JWKS once. Called by
    :meth:`OIDCProvider.verify_id_token`.
    """
    if not isinstance(token, str) or token.count(".") != 2:
        raise _rejected("not a signed JWT")
    try:
        decoded = jwt.decode(token, key_set, algorithms=list(algorithms))
    except errors.InvalidKeyIdError as e:
        raise UnknownSigningKey("ID token rejected: signed with an unpublished key") from e
    except errors.UnsupportedAlgorithmError as e:
        raise _rejected("signature algorithm not allowed") from e
    except errors.BadSignatureError as e:
        raise _rejected("bad signature") from e
    except (errors.JoseError, ValueError) as e:
        raise _rejected("malformed token") from e
    claims = decoded.claims
    now = time.time() if now is None else now

    if claims.get("iss") != issuer:
        raise _rejected("wrong issuer")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if audience not in audiences:
        raise _rejected("wrong audience")
    if len(audiences) > 1 and claims.get("azp") != audience:
        raise _rejected("wrong authorized party")
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        raise _rejected("no expiry")
    if exp + leeway < now:
        raise _rejected("expired")
    iat = claims.get("iat")
    if isinstance(iat, int | float) and iat - leeway > now:
        raise _rejected("issued in the future")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise _rejected("no subject")
    if nonce is not None:
        got = claims.get("nonce")
        if not isinstance(got, str) or not hmac.compare_digest(got, nonce):
            raise _rejected("wrong nonce")
    return claims
