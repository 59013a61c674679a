"""Access tokens: the round trip, and every reason a token is refused, crafted with the test's own keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import string
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey
from joserfc.jws import JWSRegistry

from adapters.auth import access_tokens
from adapters.auth.access_tokens import (
    INVALID_TOKEN_REASONS,
    AccessTokenIssuer,
    AccessTokenVerifier,
    InvalidToken,
)
from adapters.auth.keys import SigningKeys, generate_key
from adapters.memory.revocations import MemoryRevocationList
from domain.rbac import Principal, Role

ISS = "eyewear-catalog"
AUD = "eyewear-catalog-api"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEEWAY = 30


class ManualClock:
    def __init__(self, start: datetime = T0) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def keys() -> SigningKeys:
    return SigningKeys.generate()


@pytest.fixture
def issuer(keys: SigningKeys, clock: ManualClock) -> AccessTokenIssuer:
    return AccessTokenIssuer(keys, ISS, AUD, clock=clock)


@pytest.fixture
def revocations(clock: ManualClock) -> MemoryRevocationList:
    return MemoryRevocationList(clock=clock)


@pytest.fixture
def verifier(keys: SigningKeys, revocations: MemoryRevocationList, clock: ManualClock) -> AccessTokenVerifier:
    return AccessTokenVerifier(keys, ISS, AUD, revocations, leeway_seconds=LEEWAY, clock=clock)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(data: Any) -> str:
    return b64(json.dumps(data, separators=(",", ":")).encode())


def header_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


def good_claims(**changes: Any) -> dict[str, Any]:
    now = int(T0.timestamp())
    claims: dict[str, Any] = {
        "iss": ISS,
        "aud": AUD,
        "sub": "alice",
        "client_id": "eyewear-cli",
        "iat": now,
        "exp": now + 900,
        "jti": "jti-0123456789abcdef",
        "scope": "",
        "roles": ["editor"],
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def sign(claims: dict[str, Any], key: ECKey | OKPKey, **header: Any) -> str:
    """Any header, any claims, signed for real by hand: only the check under test can refuse the token."""
    header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt", **header}
    header = {k: v for k, v in header.items() if v is not None}
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    signature = JWSRegistry.algorithms[str(key.alg)].sign(signing_input.encode(), key)
    return f"{signing_input}.{b64(signature)}"


def private_key(keys: SigningKeys) -> ECKey | OKPKey:
    key = keys.signing_key.private
    assert key is not None
    return key


def refused(verifier: AccessTokenVerifier, token: Any) -> str:
    with pytest.raises(InvalidToken) as caught:
        verifier.verify_without_revocation(token)
    error = caught.value
    if isinstance(token, str) and token:
        assert token not in str(error) and token not in repr(error)
        assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    assert error.reason in INVALID_TOKEN_REASONS
    return error.reason


async def test_issue_then_verify_gives_the_principal(issuer: AccessTokenIssuer, verifier: AccessTokenVerifier) -> None:
    issued = issuer.issue(
        "alice", ["editor", "viewer", "no-such-role"], brands=["Ray-Ban", "Oakley"], client_id="shop", ttl_seconds=900
    )
    principal = await verifier.verify(issued.token)
    assert principal == Principal(
        subject="alice",
        roles=frozenset({Role.EDITOR, Role.VIEWER}),
        brands=frozenset({"Ray-Ban", "Oakley"}),
        client_id="shop",
        token_id=issued.jti,
        expires_at=T0 + timedelta(seconds=900),
    )
    assert issued.expires_at == T0 + timedelta(seconds=900)
    assert issued.token not in repr(issued)


def test_the_token_is_an_rfc_9068_jwt(keys: SigningKeys, issuer: AccessTokenIssuer) -> None:
    issued = issuer.issue("alice", ["viewer"], scope="catalog", ttl_seconds=60)
    decoded = jwt.decode(issued.token, keys.signing_key.public, algorithms=["ES256"])
    assert decoded.header == {"alg": "ES256", "kid": keys.signing_kid, "typ": "at+jwt"}
    now = int(T0.timestamp())
    assert decoded.claims == {
        "iss": ISS,
        "aud": AUD,
        "sub": "alice",
        "client_id": "eyewear-cli",
        "iat": now,
        "exp": now + 60,
        "jti": issued.jti,
        "scope": "catalog",
        "roles": ["viewer"],
    }
    assert len(base64.urlsafe_b64decode(issued.jti + "==")) >= 16  # at least 128 random bits
    assert issued.jti != issuer.issue("alice", ["viewer"], ttl_seconds=60).jti


def test_issue_refuses_nonsense(issuer: AccessTokenIssuer) -> None:
    for bad in ({"subject": ""}, {"ttl_seconds": 0}, {"ttl_seconds": True}, {"roles": "admin"}, {"client_id": ""}):
        arguments: dict[str, Any] = {"subject": "alice", "roles": ["viewer"], "ttl_seconds": 60, **bad}
        with pytest.raises(ValueError):
            issuer.issue(**arguments)


async def test_any_client_id_is_accepted(keys: SigningKeys, verifier: AccessTokenVerifier) -> None:
    token = sign(good_claims(client_id="some-other-client"), private_key(keys))
    assert (await verifier.verify(token)).client_id == "some-other-client"


def test_an_audience_list_that_holds_ours_is_accepted(keys: SigningKeys, verifier: AccessTokenVerifier) -> None:
    token = sign(good_claims(aud=["other-api", AUD]), private_key(keys))
    assert verifier.verify_without_revocation(token).subject == "alice"


def test_the_type_may_carry_the_application_prefix(keys: SigningKeys, verifier: AccessTokenVerifier) -> None:
    for typ in ("application/at+jwt", "AT+JWT"):
        assert verifier.verify_without_revocation(sign(good_claims(), private_key(keys), typ=typ)).subject == "alice"


def test_wrong_audience_and_issuer(keys: SigningKeys, verifier: AccessTokenVerifier) -> None:
    key = private_key(keys)
    assert refused(verifier, sign(good_claims(aud="another-api"), key)) == "wrong_audience"
    assert refused(verifier, sign(good_claims(aud=["another-api"]), key)) == "wrong_audience"
    assert refused(verifier, sign(good_claims(iss="someone-else"), key)) == "wrong_issuer"


def test_expiry_allows_the_leeway_and_no_more(
    issuer: AccessTokenIssuer, verifier: AccessTokenVerifier, clock: ManualClock
) -> None:
    token = issuer.issue("alice", ["viewer"], ttl_seconds=60).token
    clock.advance(60 + LEEWAY - 1)
    assert verifier.verify_without_revocation(token).subject == "alice"
    clock.advance(1)
    assert refused(verifier, token) == "expired"


def test_not_yet_valid_beyond_the_leeway(keys: SigningKeys, verifier: AccessTokenVerifier) -> None:
    key, now = private_key(keys), int(T0.timestamp())
    assert refused(verifier, sign(good_claims(nbf=now + LEEWAY + 10), key)) == "not_yet_valid"
    assert refused(verifier, sign(good_claims(iat=now + LEEWAY + 10, exp=now + 3600), key)) == "not_yet_valid"
    assert verifier.verify_without_revocation(sign(good_claims(nbf=now + LEEWAY - 1), key)).subject == "alice"


def test_unknown_kid(keys: SigningKeys, verifier: AccessTokenVerifier) -> None:
    assert refused(verifier, sign(good_claims(), private_key(keys), kid="no-such-key")) == "unknown_kid"
    assert refused(verifier, sign(good_claims(), private_key(keys), kid=None)) == "unknown_kid"
    assert refused(verifier, sign(good_claims(), private_key(keys), kid=7)) == "unknown_kid"


def test_a_foreign_key_with_our_kid(keys: SigningKeys, verifier: AccessTokenVerifier) -> None:
    foreign = ECKey.import_key(generate_key().as_dict(private=True) | {"kid": keys.signing_kid})
    assert foreign.kid == keys.signing_kid
    assert refused(verifier, sign(good_claims(), foreign)) == "bad_signature"


def test_alg_none(keys: SigningKeys, verifier: AccessTokenVerifier) -> None:
    for alg in ("none", "None", "NONE"):
        header = {"alg": alg, "kid": keys.signing_kid, "typ": "at+jwt"}
        for signature in ("", "AAAA"):
            token = f"{b64json(header)}.{b64json(good_claims())}.{signature}"
            assert refused(verifier, token) == "algorithm_not_allowed"


def test_hs256_signed_with_the_public_key_as_secret(keys: SigningKeys, verifier: AccessTokenVerifier) -> None:
    """The classic confusion: an attacker HMACs with what the JWKS publishes."""
    public = keys.signing_key.public
    pem = public.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    secrets = [json.dumps(keys.public_jwks()).encode(), json.dumps(public.as_dict()).encode(), pem]
    for alg, digest in (("HS256", hashlib.sha256), ("HS384", hashlib.sha384), ("HS512", hashlib.sha512)):
        header = {"alg": alg, "kid": keys.signing_kid, "typ": "at+jwt"}
        for secret in secrets:
            signing_input = f"{b64json(header)}.{b64json(good_claims())}"
            mac = hmac.new(secret, signing_input.encode(), digest).digest()
            assert refused(verifier, f"{signing_input}.{b64(mac)}") == "algorithm_not_allowed"


def test_other_algorithms_are_refused_before_the_signature(keys: SigningKeys, verifier: AccessTokenVerifier) -> None:
    for alg in ("RS256", "ES384", "PS256", "ES256K", "", "ES256 "):
        header = {"alg": alg, "kid": keys.signing_kid, "typ": "at+jwt"}
        token = f"{b64json(header)}.{b64json(good_claims())}.{b64(b'x' * 64)}"
        assert refused(verifier, token) == "algorithm_not_allowed"


def test_a_header_alg_other_than_the_kids_pinned_alg(keys: SigningKeys, verifier: AccessTokenVerifier) -> None:
    ed_kid = keys.add_key(alg="Ed25519")
    ec_key = keys.verification_key(keys.kids[0])
    assert ec_key is not None and ec_key.private is not None
    token = sign(good_claims(), ec_key.private, kid=ed_kid)  # ES256 header naming the Ed25519 key
    assert refused(verifier, token) == "algorithm_not_allowed"


def test_wrong_type(keys: SigningKeys, verifier: AccessTokenVerifier) -> None:
    for typ in ("JWT", "jwt", "application/jwt", "dpop+jwt", "", None):
        assert refused(verifier, sign(good_claims(), private_key(keys), typ=typ)) == "wrong_type"
    assert refused(verifier, sign(good_claims(), private_key(keys), typ=1)) == "malformed"


@pytest.mark.parametrize("claim", ["iss", "aud", "sub", "exp", "iat", "jti", "client_id", "roles"])
def test_missing_claims(keys: SigningKeys, verifier: AccessTokenVerifier, claim: str) -> None:
    claims = good_claims()
    del claims[claim]
    assert refused(verifier, sign(claims, private_key(keys))) == "missing_claim"
    assert refused(verifier, sign(good_claims(**{claim: ""}), private_key(keys))) in {"missing_claim", "malformed"}


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": "tomorrow"},
        {"exp": 10**30},
        {"iat": "now"},
        {"nbf": True},
        {"sub": 42},
        {"jti": 7},
        {"client_id": ["a"]},
        {"roles": "admin"},
        {"roles": [1]},
        {"brands": "Ray-Ban"},
        {"scope": ["a"]},
        {"iss": 1},
        {"aud": 3},
    ],
)
def test_claims_of_the_wrong_shape(keys: SigningKeys, verifier: AccessTokenVerifier, changes: dict[str, Any]) -> None:
    assert refused(verifier, sign(good_claims(**changes), private_key(keys))) == "malformed"


async def test_a_revoked_jti_is_refused_until_it_would_have_expired(
    issuer: AccessTokenIssuer,
    verifier: AccessTokenVerifier,
    revocations: MemoryRevocationList,
    clock: ManualClock,
) -> None:
    issued = issuer.issue("alice", ["viewer"], ttl_seconds=60)
    other = issuer.issue("alice", ["viewer"], ttl_seconds=60)
    await verifier.revoke(await verifier.verify(issued.token))
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(issued.token)
    assert caught.value.reason == "revoked"
    assert (await verifier.verify(other.token)).token_id == other.jti
    clock.advance(60 + LEEWAY - 1)  # past exp but inside the leeway: still refused as revoked
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(issued.token)
    assert caught.value.reason == "revoked"
    clock.advance(1)
    assert len(revocations) == 0 or not await revocations.is_revoked(issued.jti)


async def test_revoked_through_the_port_directly(
    issuer: AccessTokenIssuer, verifier: AccessTokenVerifier, revocations: MemoryRevocationList
) -> None:
    issued = issuer.issue("alice", ["viewer"], ttl_seconds=60)
    await revocations.revoke(issued.jti, issued.expires_at)
    with pytest.raises(InvalidToken, match="revoked"):
        await verifier.verify(issued.token)


GARBAGE = [
    "",
    "abc",
    "a.b",
    "a.b.c",
    "..",
    "...",
    "a.b.c.d.e",
    "Bearer x.y.z",
    "💥.💥.💥",
    "eyJhbGciOiJFUzI1NiJ9",
    f"{b64(b'not json')}.{b64(b'{}')}.AAAA",
    f"{b64json([1, 2])}.{b64(b'{}')}.AAAA",
    f"{b64json('alg')}.{b64(b'{}')}.AAAA",
    f"{b64json({'alg': 5})}.{b64(b'{}')}.AAAA",
    f"{b64json({'typ': 'at+jwt'})}.{b64(b'{}')}.AAAA",
    f"{b64(b'[' * 5000)}.{b64(b'{}')}.AAAA",
    b64(b'{"a":' * 1500) + "." + b64(b"{}") + ".AAAA",
    "x" * 100_000,
    "a" * 5000 + "." + "b" * 5000 + ".c",
]


@pytest.mark.parametrize("token", GARBAGE)
def test_garbage_is_malformed(verifier: AccessTokenVerifier, token: str) -> None:
    assert refused(verifier, token) == "malformed"


def test_not_a_string_is_malformed(verifier: AccessTokenVerifier) -> None:
    for token in (None, b"a.b.c", 42):
        assert refused(verifier, token) == "malformed"


def test_a_signed_payload_that_is_not_a_json_object(keys: SigningKeys, verifier: AccessTokenVerifier) -> None:
    key = private_key(keys)
    header = b64json({"alg": "ES256", "kid": keys.signing_kid, "typ": "at+jwt"})
    for payload in (b"[1]", b"nope", b"\xff\xfe"):
        signing_input = f"{header}.{b64(payload)}".encode()
        signature = JWSRegistry.algorithms["ES256"].sign(signing_input, key)
        assert refused(verifier, f"{signing_input.decode()}.{b64(signature)}") == "malformed"


def test_rotation_keeps_old_tokens_valid_and_signs_with_the_new_key(
    keys: SigningKeys, issuer: AccessTokenIssuer, verifier: AccessTokenVerifier
) -> None:
    old_kid = keys.signing_kid
    old = issuer.issue("alice", ["viewer"], ttl_seconds=60).token
    new_kid = keys.add_key()
    new = issuer.issue("bob", ["viewer"], ttl_seconds=60).token
    assert new_kid != old_kid and keys.signing_kid == new_kid
    assert header_of(old)["kid"] == old_kid
    assert header_of(new)["kid"] == new_kid
    assert verifier.verify_without_revocation(old).subject == "alice"
    assert verifier.verify_without_revocation(new).subject == "bob"


def test_rotation_on_disk(tmp_path: Any, clock: ManualClock) -> None:
    path = tmp_path / "keys.json"
    SigningKeys.generate().save(path)
    before = SigningKeys.load(path)
    old = AccessTokenIssuer(before, ISS, AUD, clock=clock).issue("alice", ["viewer"], ttl_seconds=60).token
    after = SigningKeys.rotate(path)
    reloaded = SigningKeys.load(path)
    assert reloaded.kids == after.kids and reloaded.kids[0] == before.signing_kid
    verifier = AccessTokenVerifier(reloaded, ISS, AUD, None, clock=clock)
    assert verifier.verify_without_revocation(old).subject == "alice"
    new = AccessTokenIssuer(reloaded, ISS, AUD, clock=clock).issue("bob", ["viewer"], ttl_seconds=60).token
    assert header_of(new)["kid"] == reloaded.kids[-1]


def test_the_verifier_refuses_a_key_whose_alg_is_not_pinned(keys: SigningKeys, clock: ManualClock) -> None:
    keys.add_key(alg="Ed25519")  # the newest key is now Ed25519 and signs
    token = AccessTokenIssuer(keys, ISS, AUD, clock=clock).issue("alice", ["viewer"], ttl_seconds=60).token
    es256_only = AccessTokenVerifier(keys, ISS, AUD, None, algorithms=["ES256"], clock=clock)
    assert refused(es256_only, token) == "algorithm_not_allowed"
    default = AccessTokenVerifier(keys, ISS, AUD, None, clock=clock)
    assert default.verify_without_revocation(token).subject == "alice"


def test_the_verifier_cannot_be_configured_with_unsafe_algorithms(keys: SigningKeys) -> None:
    for algorithms in (["HS256"], ["none"], ["ES256", "RS256"], []):
        with pytest.raises(ValueError):
            AccessTokenVerifier(keys, ISS, AUD, None, algorithms=algorithms)


def test_reasons_are_the_fixed_set() -> None:
    with pytest.raises(ValueError):
        InvalidToken("something the caller made up")


# -- tampering: a hypothesis property over one valid token ---------------------------------------

_KEYS = SigningKeys.generate()
_TOKEN = AccessTokenIssuer(_KEYS, ISS, AUD, clock=lambda: T0).issue("alice", ["admin"], ttl_seconds=900).token
_VERIFIER = AccessTokenVerifier(_KEYS, ISS, AUD, None, clock=lambda: T0)
_B64URL = string.ascii_letters + string.digits + "-_"


def test_the_untampered_token_verifies() -> None:
    assert _VERIFIER.verify_without_revocation(_TOKEN).subject == "alice"


@settings(max_examples=300, deadline=None)
@given(position=st.integers(0, len(_TOKEN) - 1), replacement=st.sampled_from(_B64URL + "."))
def test_changing_any_character_never_verifies(position: int, replacement: str) -> None:
    if _TOKEN[position] == replacement:
        replacement = "A" if replacement != "A" else "B"
    tampered = _TOKEN[:position] + replacement + _TOKEN[position + 1 :]
    with pytest.raises(InvalidToken):
        _VERIFIER.verify_without_revocation(tampered)


@settings(max_examples=300, deadline=None)
@given(position=st.integers(0, len(_TOKEN) - 1), mask=st.integers(1, 255))
def test_flipping_bits_of_any_byte_never_verifies(position: int, mask: int) -> None:
    raw = bytearray(_TOKEN.encode("ascii"))
    raw[position] ^= mask
    with pytest.raises(InvalidToken):
        _VERIFIER.verify_without_revocation(raw.decode("latin-1"))


@settings(max_examples=100, deadline=None)
@given(segment=st.integers(0, 2), data=st.binary(max_size=200))
def test_replacing_a_whole_segment_never_verifies(segment: int, data: bytes) -> None:
    parts = _TOKEN.split(".")
    if b64(data) == parts[segment]:
        return
    parts[segment] = b64(data)
    with pytest.raises(InvalidToken):
        _VERIFIER.verify_without_revocation(".".join(parts))


def test_a_remembered_token_skips_the_signature_but_not_the_claims(
    issuer: AccessTokenIssuer, verifier: AccessTokenVerifier, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[str] = []
    real_decode = access_tokens.jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(access_tokens.jwt, "decode", counting_decode)
    token = issuer.issue("alice", ["viewer"], ttl_seconds=60).token
    first = verifier.verify_without_revocation(token)
    assert verifier.verify_without_revocation(token) == first
    assert decoded == [token]
    clock.advance(60 + LEEWAY)
    assert refused(verifier, token) == "expired"


def test_a_tampered_copy_of_a_remembered_token_is_refused(
    issuer: AccessTokenIssuer, verifier: AccessTokenVerifier
) -> None:
    token = issuer.issue("alice", ["viewer"], ttl_seconds=60).token
    verifier.verify_without_revocation(token)
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["admin"]
    forged = ".".join((head, b64json(claims), signature))
    assert refused(verifier, forged) == "bad_signature"
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert refused(verifier, flipped) in {"bad_signature", "malformed"}


def test_remembered_tokens_are_bounded(
    issuer: AccessTokenIssuer, verifier: AccessTokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(access_tokens, "VERIFIED_TOKENS", 3)
    tokens = [issuer.issue(f"user{i}", ["viewer"], ttl_seconds=60).token for i in range(5)]
    for token in tokens:
        verifier.verify_without_revocation(token)
    assert list(verifier._verified) == tokens[-3:]
    verifier.verify_without_revocation(tokens[2])  # used again: the most recent, the last to leave
    verifier.verify_without_revocation(tokens[0])
    assert list(verifier._verified) == [tokens[4], tokens[2], tokens[0]]
