"""RFC 9068 JWT access tokens: issued with the newest signing key, verified against every configured key.

Both sides call joserfc directly. authlib's RFC 9068 classes (authlib 1.9, ``authlib/oauth2/rfc9068/``,
themselves thin wrappers over joserfc) were read and not used, because as installed they cannot do
this job correctly without overriding the very methods that do the work:

- ``JWTBearerTokenValidator.authenticate_token`` calls ``jwt.decode(token, key)`` with no ``algorithms``:
  joserfc then accepts its "recommended" set (HS256, RS256, ES256), not the algorithm pinned to the
  token's ``kid``. There is no parameter to pin them.
- its ``typ`` check (``JWTAccessTokenClaims.validate``) lets a token WITHOUT ``typ`` through (authlib
  PR #696 made that deliberate), while RFC 9068 §4 requires rejecting anything but ``at+jwt``.
- every failure becomes one ``InvalidTokenError``; the 401 reasons (and the metric
  ``eyewear_auth_failures_total{reason}``) need to know which check failed. ``validate_token`` runs
  with leeway 0 on the real clock, needs an authlib request object, re-imports ``get_jwks()`` on
  every call, and has no revocation hook (ours is an async port).
- authlib ships resource protectors for Flask and Django only; under FastAPI the validator would be
  called by hand anyway.
- ``JWTBearerTokenGenerator``: handed a KeySet, joserfc picks a RANDOM key of the set to sign (not
  the newest); handed one key, the header gets no ``kid``. Its clock is ``time.time()``, its default
  ``jti`` is 16 alphanumerics (~95 bits, below 128), and it needs authlib client/user objects that
  ``eyewear token`` does not have. The OAuth token endpoint can register a generator that delegates
  to ``AccessTokenIssuer.issue``.

The checks are those of RFC 9068 §4 and of authlib's validator (essential ``iss``, ``exp``, ``aud``,
``sub``, ``client_id``, ``iat``, ``jti``), plus: ``alg`` pinned per ``kid`` (checked before any
signature work), ``typ`` mandatory, ``nbf`` and a future ``iat`` refused beyond the leeway, and the
revocation list. ``client_id`` is checked for presence only: any client's token is accepted
(CONTRACT 4.2). Verification is CPU only while the ``kid`` is known: keys are in memory. A token
naming an unknown ``kid`` is given one ``lookup`` of the verifier's keys (a ``KeyRing`` reads the
registry of every replica's keys, at a bounded rate; a ``SigningKeys`` file set knows them all).
"""

from __future__ import annotations

import json
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jws import JWSRegistry
from joserfc.jwt import JWTClaimsRegistry
from joserfc.util import urlsafe_b64decode

from adapters.auth.keys import SUPPORTED_ALGORITHMS, ManagedKey, SigningKeys
from domain.audit import RevocationList
from domain.rbac import Principal, parse_roles

AT_JWT_TYP: Final = "at+jwt"
_ACCEPTED_TYPES = frozenset({"at+jwt", "application/at+jwt"})
#: Far above any token we issue (~1 KiB) and below joserfc's own limits: refused before any parsing.
MAX_TOKEN_LENGTH: Final = 8192
#: Verified tokens remembered per process (least recently used leave first): ~2 KiB each.
VERIFIED_TOKENS: Final = 1024
DEFAULT_LEEWAY_SECONDS: Final = 30

#: The reasons a token is refused: fixed and few, fit for a metric label and a log field.
#: ``missing`` (no bearer token at all) is raised by the HTTP guard, never by the verifier.
INVALID_TOKEN_REASONS: Final = frozenset(
    {
        "missing",
        "malformed",
        "bad_signature",
        "unknown_kid",
        "algorithm_not_allowed",
        "wrong_type",
        "expired",
        "not_yet_valid",
        "wrong_issuer",
        "wrong_audience",
        "missing_claim",
        "revoked",
    }
)


class InvalidToken(Exception):
    """A refused bearer token (HTTP 401). The message names the reason, never the token."""

    def __init__(self, reason: str) -> None:
        if reason not in INVALID_TOKEN_REASONS:
            raise ValueError(f"unknown invalid-token reason {reason!r}")
        super().__init__(f"invalid access token: {reason}")
        self.reason = reason


class _UnknownKid(InvalidToken):
    def __init__(self, kid: str | None) -> None:
        super().__init__("unknown_kid")
        self.kid = kid


class VerificationKeys(Protocol):
    """The keys a verifier trusts: ``SigningKeys`` (a fixed set) or a ``KeyRing`` (every replica's)."""

    def verification_key(self, kid: str) -> ManagedKey | None: ...

    async def lookup(self, kid: str) -> ManagedKey | None: ...

    def public_jwks(self) -> dict[str, list[dict[str, Any]]]: ...


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A signed token; its repr leaves the token out, so that logging the object cannot leak it."""

    token: str
    jti: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"IssuedToken(jti={self.jti!r}, expires_at={self.expires_at.isoformat()!r})"


def utc_now() -> datetime:
    return datetime.now(UTC)


def _epoch_seconds(clock: Callable[[], datetime]) -> int:
    moment = clock()
    if moment.tzinfo is None:
        raise ValueError("the clock must return aware datetimes")
    return int(moment.timestamp())


def _registries() -> dict[str, JWSRegistry]:
    return {alg: JWSRegistry(algorithms=[alg]) for alg in SUPPORTED_ALGORITHMS}


class AccessTokenIssuer:
    """Signs access tokens with the newest key of the set (whatever key is newest at each call)."""

    def __init__(self, keys: SigningKeys, issuer: str, audience: str, clock: Callable[[], datetime] = utc_now) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._clock = clock
        self._registries = _registries()

    def issue(
        self,
        subject: str,
        roles: Iterable[str],
        *,
        brands: Iterable[str] = (),
        client_id: str = "eyewear-cli",
        scope: str = "",
        ttl_seconds: int,
    ) -> IssuedToken:
        if not isinstance(subject, str) or not subject:
            raise ValueError("a token needs a non-empty subject")
        if not isinstance(client_id, str) or not client_id:
            raise ValueError("a token needs a non-empty client_id")
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be a positive whole number of seconds")
        role_names = sorted(set(_strings(roles, "roles")))
        brand_names = list(dict.fromkeys(_strings(brands, "brands")))
        key = self._keys.signing_key
        assert key.private is not None  # SigningKeys guarantees the newest key is private
        now = _epoch_seconds(self._clock)
        jti = secrets.token_urlsafe(16)  # 128 random bits
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": subject,
            "client_id": client_id,
            "iat": now,
            "exp": now + ttl_seconds,
            "jti": jti,
            "scope": scope,
            "roles": role_names,
        }
        if brand_names:
            claims["brands"] = brand_names
        header = {"alg": key.alg, "kid": key.kid, "typ": AT_JWT_TYP}
        token = jwt.encode(header, claims, key.private, registry=self._registries[key.alg], default_type=None)
        return IssuedToken(token=token, jti=jti, expires_at=datetime.fromtimestamp(now + ttl_seconds, UTC))


@dataclass(frozen=True, slots=True)
class _Verified:
    claims: dict[str, Any]
    principal: Principal
    key: ManagedKey


class AccessTokenVerifier:
    """Turns a bearer token into a Principal, or refuses it with one reason (see INVALID_TOKEN_REASONS).

    Order: shape → ``alg`` allowed → ``kid`` known and its pinned ``alg`` equal to the header's →
    signature → ``typ`` → claims → revocation. Nothing before the signature trusts the token; the
    refusals before it only spare the signature work.
    """

    def __init__(
        self,
        keys: VerificationKeys,
        issuer: str,
        audience: str,
        revocations: RevocationList | None,
        *,
        leeway_seconds: int = DEFAULT_LEEWAY_SECONDS,
        algorithms: Iterable[str] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """``algorithms``: the JWS algorithms accepted at all (default: every one a signing key may
        have, ES256 and Ed25519). Each key is further pinned to its own ``alg``."""
        allowed = frozenset(SUPPORTED_ALGORITHMS if algorithms is None else algorithms)
        if not allowed or not allowed <= SUPPORTED_ALGORITHMS.keys():
            raise ValueError(f"algorithms must be a non-empty subset of {sorted(SUPPORTED_ALGORITHMS)}")
        if leeway_seconds < 0:
            raise ValueError("leeway_seconds must not be negative")
        self.keys = keys
        self._verified: OrderedDict[str, _Verified] = OrderedDict()
        self._revocations = revocations
        self._algorithms = allowed
        self._leeway = timedelta(seconds=leeway_seconds)
        self._registries = _registries()
        self._claims = JWTClaimsRegistry(
            now=lambda: _epoch_seconds(clock),
            leeway=leeway_seconds,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            jti={"essential": True},
            client_id={"essential": True},
        )

    async def verify(self, token: str) -> Principal:
        """The full check. A failing revocation list propagates (fail closed): it is not a 401."""
        principal = await self.verify_signed(token)
        if self._revocations is not None and await self._revocations.is_revoked(principal.token_id or ""):
            raise InvalidToken("revoked")
        return principal

    async def revoke(self, principal: Principal) -> None:
        """Revoke a verified token until it would be refused anyway: its ``exp`` plus the leeway."""
        if self._revocations is None:
            raise RuntimeError("this verifier has no revocation list")
        if principal.token_id is None or principal.expires_at is None:
            raise ValueError("only a principal from a verified token (with jti and exp) can be revoked")
        await self._revocations.revoke(principal.token_id, principal.expires_at + self._leeway)

    async def verify_signed(self, token: str) -> Principal:
        """``verify_without_revocation``, after one ``lookup`` of a kid the keys do not know yet (another
        replica's key: the lookup may read the key registry). A registry that fails propagates."""
        try:
            return self.verify_without_revocation(token)
        except _UnknownKid as unknown:
            if not unknown.kid or await self.keys.lookup(unknown.kid) is None:
                raise InvalidToken("unknown_kid") from None
        return self.verify_without_revocation(token)

    def verify_without_revocation(self, token: str) -> Principal:
        """Everything but the revocation list and key lookups (which are I/O): signature, type, claims.

        A token whose signature and type verified is remembered (its exact text, claims, principal
        and key) so that its next requests skip the signature: the same bytes verify the same way
        under the same key, and a client sends the same token for its whole lifetime. The claims
        are validated on every request, since ``exp`` and ``nbf`` depend on the time, and so is its
        key: a key that retired or left the registry takes its remembered tokens with it.
        """
        remembered = self._verified.get(token) if isinstance(token, str) else None
        if remembered is not None:
            if self.keys.verification_key(remembered.key.kid) is remembered.key:
                self._verified.move_to_end(token)
                self._validate(remembered.claims)
                return remembered.principal
            del self._verified[token]  # verified from scratch: refused, unless its key is back
        key = self._key_for(token)
        try:
            decoded = jwt.decode(token, key.public, registry=self._registries[key.alg])
        except BadSignatureError:
            raise InvalidToken("bad_signature") from None
        except (JoseError, ValueError, TypeError, RecursionError):
            raise InvalidToken("malformed") from None
        typ = decoded.header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYPES:
            raise InvalidToken("wrong_type")
        claims = decoded.claims
        self._validate(claims)
        principal = _principal(claims)
        self._verified[token] = _Verified(claims, principal, key)
        if len(self._verified) > VERIFIED_TOKENS:
            self._verified.popitem(last=False)
        return principal

    def _validate(self, claims: dict[str, Any]) -> None:
        try:
            self._claims.validate(claims)
        except MissingClaimError:
            raise InvalidToken("missing_claim") from None
        except ExpiredTokenError:
            raise InvalidToken("expired") from None
        except InvalidClaimError as error:
            raise InvalidToken(_claim_reason(error.claim, claims)) from None

    def _key_for(self, token: str) -> ManagedKey:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise InvalidToken("malformed")
        try:
            header = json.loads(urlsafe_b64decode(token[: token.index(".")].encode("ascii")))
        except (ValueError, RecursionError):  # binascii, Unicode and JSON errors are ValueErrors; [[[[… recurses
            raise InvalidToken("malformed") from None
        if not isinstance(header, dict) or not isinstance(header.get("alg"), str):
            raise InvalidToken("malformed")
        if header["alg"] not in self._algorithms:
            raise InvalidToken("algorithm_not_allowed")
        kid = header.get("kid")
        key = self.keys.verification_key(kid) if isinstance(kid, str) else None
        if key is None:
            raise _UnknownKid(kid if isinstance(kid, str) else None)
        if key.alg != header["alg"] or key.alg not in self._algorithms:
            raise InvalidToken("algorithm_not_allowed")
        return key


def _claim_reason(claim: str, claims: Mapping[str, Any]) -> str:
    value = claims.get(claim)
    if value in ("", [], {}):
        return "missing_claim"
    if claim == "iss" and isinstance(value, str):
        return "wrong_issuer"
    if claim == "aud" and isinstance(value, str | list):
        return "wrong_audience"
    if claim in ("nbf", "iat") and _is_number(value):
        return "not_yet_valid"
    return "malformed"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _principal(claims: Mapping[str, Any]) -> Principal:
    client_id, roles, brands, scope = (claims.get(name) for name in ("client_id", "roles", "brands", "scope"))
    if roles is None:
        raise InvalidToken("missing_claim")
    if not (
        isinstance(client_id, str)
        and _is_string_list(roles)
        and (brands is None or _is_string_list(brands))
        and (scope is None or isinstance(scope, str))
    ):
        raise InvalidToken("malformed")
    try:
        expires_at = datetime.fromtimestamp(claims["exp"], UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidToken("malformed") from None
    return Principal(
        subject=claims["sub"],
        roles=parse_roles(roles),
        brands=frozenset(brands or ()),
        client_id=client_id,
        token_id=claims["jti"],
        expires_at=expires_at,
    )


def _is_string_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _strings(values: Iterable[str], name: str) -> list[str]:
    if isinstance(values, str):
        raise ValueError(f"{name} must be an iterable of strings, not one string")
    items = list(values)
    if not all(isinstance(item, str) and item for item in items):
        raise ValueError(f"{name} must be non-empty strings")
    return items
