"""ID token verification: every check, as a table of tokens made with real keys."""

import base64
import json
import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from jhub_af.auth import IDTokenInvalid, verify_id_token
from jhub_af.auth.id_token import UnknownSigningKey

ISS = "https://iam.example.org/"
AUD = "jhub-af"
NONCE = "n-0S6_WzA2Mj"
NOW = 1_800_000_000

KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
OTHER = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)  # same kid, other key
ROTATED = RSAKey.generate_key(2048, parameters={"kid": "k2"}, private=True)
EC = ECKey.generate_key("P-256", parameters={"kid": "e1"}, private=True)
KEYS = KeySet([KEY, EC])


def claims(**changes):
    base = {"iss": ISS, "aud": AUD, "sub": "u-1", "exp": NOW + 300, "iat": NOW, "nonce": NONCE}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def token(key=KEY, alg="RS256", **changes):
    return jwt.encode({"alg": alg, "kid": key.kid}, claims(**changes), key)


def b64(data):
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def verify(tok, nonce=NONCE, **kwargs):
    return verify_id_token(tok, KEYS, issuer=ISS, audience=AUD, nonce=nonce, now=NOW, **kwargs)


def test_valid_token_gives_its_claims():
    assert verify(token())["sub"] == "u-1"


def test_ec_signed_token_is_accepted():
    assert verify(token(EC, "ES256"))["sub"] == "u-1"


def test_several_audiences_need_azp():
    assert verify(token(aud=[AUD, "other"], azp=AUD))["sub"] == "u-1"


def test_refresh_token_without_nonce_check():
    assert verify(token(nonce=None), nonce=None)["sub"] == "u-1"


def test_leeway_allows_small_skew():
    assert verify(token(exp=NOW - 30), leeway=60)["sub"] == "u-1"


ALG_NONE = f"{b64({'alg': 'none', 'kid': 'k1'})}.{b64(claims())}."


@pytest.mark.parametrize(
    ("id", "tok", "nonce", "message"),
    [
        ("wrong issuer", token(iss="https://evil.example.org/"), NONCE, "wrong issuer"),
        ("wrong audience", token(aud="someone-else"), NONCE, "wrong audience"),
        ("azp missing", token(aud=[AUD, "x"]), NONCE, "wrong authorized party"),
        ("expired", token(exp=NOW - 120), NONCE, "expired"),
        ("no exp", token(exp=None), NONCE, "no expiry"),
        ("from the future", token(iat=NOW + 3600), NONCE, "issued in the future"),
        ("no sub", token(sub=None), NONCE, "no subject"),
        ("wrong nonce", token(nonce="other"), NONCE, "wrong nonce"),
        ("missing nonce", token(nonce=None), NONCE, "wrong nonce"),
        ("bad signature", token(OTHER), NONCE, "bad signature"),
        ("alg none", ALG_NONE, NONCE, "signature algorithm not allowed"),
        ("HS256 with public key", None, NONCE, "signature algorithm not allowed"),
        ("not a JWT", "abc", NONCE, "not a signed JWT"),
        ("not a string", 42, NONCE, "not a signed JWT"),
        ("garbage", "a.b.c", NONCE, "malformed token"),
        (
            "payload swapped",
            ".".join([token().split(".")[0], b64(claims(sub="admin")), token().split(".")[2]]),
            NONCE,
            "bad signature",
        ),
    ],
)
def test_rejected(id, tok, nonce, message):
    if tok is None:
        # the classic confusion: HMAC "signed" with the RSA public key as secret
        header = b64({"alg": "HS256", "kid": "k1"})
        tok = f"{header}.{b64(claims())}.c2ln"
    with pytest.raises(IDTokenInvalid) as rejected:
        verify(tok, nonce=nonce)
    assert str(rejected.value) == f"ID token rejected: {message}"


def test_unknown_key_is_its_own_error_so_the_caller_can_refetch():
    with pytest.raises(UnknownSigningKey):
        verify(token(ROTATED))


def test_algorithm_allow_list_is_applied():
    with pytest.raises(IDTokenInvalid, match="signature algorithm not allowed"):
        verify(token(EC, "ES256"), algorithms=("RS256",))


def test_error_never_contains_the_token():
    tok = token(iss="https://evil.example.org/")
    with pytest.raises(IDTokenInvalid) as rejected:
        verify(tok)
    assert tok not in str(rejected.value)
    assert tok.split(".")[1] not in str(rejected.value)


def test_real_clock_is_used_by_default():
    now = int(time.time())
    tok = token(exp=now + 60, iat=now)
    assert verify_id_token(tok, KEYS, issuer=ISS, audience=AUD, nonce=NONCE)["sub"] == "u-1"
