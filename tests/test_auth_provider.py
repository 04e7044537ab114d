"""OIDCProvider's caches: discovery checks, and JWKS refetch on key rotation, rate-limited.

The provider's HTTP is a function passed in; here it serves documents from a
dict and counts requests (the real IdP is exercised in test_auth_iam_login.py).
"""

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from jhub_af.auth import IdPUnreachable, IDTokenInvalid, OIDCProvider

ISS = "http://idp.test"
K1 = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
K2 = RSAKey.generate_key(2048, parameters={"kid": "k2"}, private=True)


class Documents:
    def __init__(self, jwks_keys, issuer=ISS):
        self.docs = {
            f"{ISS}/.well-known/openid-configuration": {
                "issuer": issuer,
                "jwks_uri": f"{ISS}/jwks",
            },
            f"{ISS}/jwks": KeySet(jwks_keys).as_dict(private=False),
        }
        self.requests = []
        self.down = False

    async def __call__(self, url):
        self.requests.append(url)
        if self.down:
            raise ConnectionRefusedError(url)
        return self.docs[url]


def id_token(key):
    import time

    now = int(time.time())
    claims = {"iss": ISS, "aud": "c", "sub": "s", "exp": now + 60, "iat": now, "nonce": "n"}
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


async def test_rotation_refetches_the_jwks_once():
    docs = Documents([K1])
    provider = OIDCProvider(ISS, docs, jwks_refetch_interval=0)
    assert (await provider.verify_id_token(id_token(K1), audience="c", nonce="n"))["sub"] == "s"
    docs.docs[f"{ISS}/jwks"] = KeySet([K2]).as_dict(private=False)  # the IdP rotated
    assert (await provider.verify_id_token(id_token(K2), audience="c", nonce="n"))["sub"] == "s"
    assert docs.requests.count(f"{ISS}/jwks") == 2
    assert docs.requests.count(f"{ISS}/.well-known/openid-configuration") == 1


async def test_unknown_keys_cannot_make_it_refetch_all_the_time():
    docs = Documents([K1])
    provider = OIDCProvider(ISS, docs, jwks_refetch_interval=3600)
    await provider.key_set()
    for _ in range(5):
        with pytest.raises(IDTokenInvalid, match="unpublished key"):
            await provider.verify_id_token(id_token(K2), audience="c", nonce="n")
    assert docs.requests.count(f"{ISS}/jwks") == 1


async def test_discovery_must_name_the_configured_issuer():
    provider = OIDCProvider(ISS, Documents([K1], issuer="http://evil.test"))
    with pytest.raises(IdPUnreachable, match=r"names issuer 'http://evil\.test'"):
        await provider.metadata()


async def test_unreachable_provider_is_reported_without_details_of_the_request():
    docs = Documents([K1])
    docs.down = True
    with pytest.raises(IdPUnreachable, match=r"OIDC discovery .*ConnectionRefusedError"):
        await OIDCProvider(ISS, docs).metadata()


async def test_metadata_is_cached():
    docs = Documents([K1])
    provider = OIDCProvider(ISS, docs)
    await provider.metadata()
    await provider.metadata()
    assert len(docs.requests) == 1
