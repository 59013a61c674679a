"""What authlib's server components are handed: the request, the client and the token objects.

authlib 1.9 ships server integrations for Flask and Django only. Its contract for any other framework
is small: an ``OAuth2Request`` whose ``payload`` and ``form`` hold the form parameters and whose
``headers`` answer ``get("Authorization")``, plus model objects with the ``ClientMixin`` /
``TokenMixin`` methods. The form is read here, before authlib runs (Starlette reads bodies
asynchronously, authlib is synchronous), with the RFC 6749 rules authlib leaves to the framework.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidClientError,
    InvalidRequestError,
    OAuth2Error,
    OAuth2Request,
    TokenMixin,
)
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from starlette.requests import Request

from adapters.auth.access_tokens import IssuedToken
from domain.clients import OAuthClient, RefreshTokenRecord, scope_of
from domain.rbac import Principal, Role

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 16 * 1024
MAX_FORM_FIELDS = 32
SECRET_METHODS = ["client_secret_basic", "client_secret_post"]
#: Revocation only: no client secret at all, the token itself is the credential (see oauth_server).
POSSESSION_METHOD = "token_possession"
_PRINTABLE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class FormRequest(OAuth2Request):
    """A token or revocation request, read in full; it also carries what happened, for the audit."""

    def __init__(self, request: Request, form: dict[str, str]) -> None:
        # authlib's constructor refuses any non-https URL (InsecureTransportError). TLS ends at the
        # proxy in front of uvicorn, which authlib cannot see, and neither endpoint uses the URL: it
        # is given a placeholder and the real one is set after.
        super().__init__(request.method, "https://oauth.invalid/", headers=request.headers)
        self.uri = str(request.url)
        self.payload = BasicOAuth2Payload(form)
        self._form = form
        self.correlation_id: str = request.scope.get("state", {}).get("request_id", "-")
        self.client_ip: str | None = request.client.host if request.client else None
        self.error: OAuth2Error | None = None
        self.outcome: str = ""
        self.reuse_detected = False
        #: What the throttle saw (oauth_throttle): refused unchecked, a secret checked and wrong or
        #: right, and the counts a failure tipped into a block.
        self.throttled = False
        self.client_auth_failed = False
        self.client_authenticated = False
        self.tipped: tuple[str, ...] = ()

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}

    def claimed_client_id(self) -> str | None:
        """The id the caller says it is (Basic user or form field), if it could be one of ours."""
        try:
            basic_id, _ = basic_credentials(self.headers)
        except InvalidClientError:
            basic_id = None
        claimed = basic_id or self._form.get("client_id")
        return claimed if isinstance(claimed, str) and _PRINTABLE_ID.fullmatch(claimed) else None

    def presents_secret(self) -> bool:
        return basic_credentials(self.headers) != (None, None) or "client_secret" in self._form


class TooManyFailures(OAuth2Error):
    """429 for a throttled client authentication (ADR 0014). RFC 6749 has no such error; its
    ``temporarily_unavailable`` (§4.1.2.1: "unable to handle the request due to a temporary
    overloading") says "retry later" without saying the credentials are wrong, which they may not be
    (the peer may be blocked for a neighbour's guesses). ``slow_down`` (RFC 8628) would tell a device
    client to poll 5 s slower, and ``invalid_client`` would tell a real client its secret is bad."""

    error = "temporarily_unavailable"
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many failed client authentications; retry later.")
        self.retry_after = retry_after

    def get_headers(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = super().get_headers()
        return [*headers, ("Retry-After", str(self.retry_after))]


def basic_credentials(headers: Any) -> tuple[str | None, str | None]:
    """authlib's Basic parser, except that a ``user:password`` that is not UTF-8 is ``invalid_client``
    (authlib lets its UnicodeDecodeError escape: a 500)."""
    try:
        user, password = extract_basic_authorization(headers)
    except UnicodeDecodeError:
        raise InvalidClientError(status_code=401, description="The Basic credentials are not UTF-8.") from None
    return user, password


async def read_form(request: Request, required: str) -> dict[str, str]:
    """The form parameters, by RFC 6749 §3.1-3.2: empty values are omitted, a repeated one is an error.

    Raises InvalidRequestError for a body that is not a small UTF-8 form, one without ``required``
    (authlib would call a missing ``grant_type`` an unsupported one), or credentials sent both ways
    (authlib would silently pick one).
    """
    basic = basic_credentials(request.headers)  # before authlib parses them
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != FORM_TYPE:
        raise InvalidRequestError(f"The body must be {FORM_TYPE}.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InvalidRequestError("The body is too large.")
    try:
        pairs = parse_qsl(body.decode("utf-8"), max_num_fields=MAX_FORM_FIELDS, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequestError("The body is not a UTF-8 form of at most 32 fields.") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise InvalidRequestError("A parameter is repeated.")
        form[name] = value
    if required not in form:
        raise InvalidRequestError(f"Missing '{required}' in request.")
    if "client_secret" in form and basic != (None, None):
        raise InvalidRequestError("Use one client authentication method, not two.")  # RFC 6749 §2.3
    return form


class ClientModel(ClientMixin):
    """A registered client as authlib sees it; ``record`` None stands for an unknown or disabled one.

    An unknown client still costs one secret check (against a decoy hash), so that the answer time
    does not tell which client ids exist.
    """

    def __init__(self, record: OAuthClient | None, verify: Any, decoy_hash: str) -> None:
        self.record = record
        self._verify = verify
        self._decoy_hash = decoy_hash

    @property
    def client_id(self) -> str:
        return self.record.client_id if self.record else ""

    def get_client_id(self) -> str:
        return self.client_id

    def check_client_secret(self, client_secret: str) -> bool:
        if self.record is None:
            self._verify(client_secret, self._decoy_hash)
            return False
        return bool(self._verify(client_secret, self.record.secret_hash))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in SECRET_METHODS

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("client_credentials", "refresh_token")


class TokenHolder(ClientMixin):
    """Whoever holds a token may revoke it without a client secret (RFC 7009 §5: possession suffices)."""

    client_id = ""
    record = None

    def get_client_id(self) -> str:
        return ""

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == POSSESSION_METHOD and endpoint == "revocation"


TOKEN_HOLDER = TokenHolder()


def authenticate_token_holder(query_client: Any, request: FormRequest) -> TokenHolder | None:
    """The revocation endpoint's last client authentication method: applies when no secret is sent."""
    return None if request.presents_secret() else TOKEN_HOLDER


class RefreshCredential(TokenMixin):
    """A refresh token record as authlib's RefreshTokenGrant and RevocationEndpoint see it."""

    def __init__(self, record: RefreshTokenRecord) -> None:
        self.record = record

    def check_client(self, client: Any) -> bool:
        return client is TOKEN_HOLDER or client.get_client_id() == self.record.client_id

    def get_scope(self) -> str:
        return scope_of(self.record.roles)


class AccessTokenRef(TokenMixin):
    """A verified access token presented for revocation."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    def check_client(self, client: Any) -> bool:
        return client is TOKEN_HOLDER or client.get_client_id() == self.principal.client_id


@dataclass(frozen=True)
class Grant:
    """What one token response grants, kept beside the JSON body for ``save_token`` and the audit."""

    subject: str
    roles: frozenset[Role]
    brands: frozenset[str]
    access: IssuedToken


class TokenResponse(dict[str, Any]):
    """The RFC 6749 §5.1 JSON body; ``grant`` rides along as an attribute, never serialised."""

    def __init__(self, body: Mapping[str, Any], grant: Grant) -> None:
        super().__init__(body)
        self.grant = grant
