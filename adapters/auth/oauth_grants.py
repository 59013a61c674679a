"""authlib's grants and revocation endpoint, configured for this service; the I/O is the server's.

Each class keeps authlib's flow (client authentication, parameter checks, error codes, response
shape) and overrides only the storage hooks plus the points listed on each class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant, RefreshTokenGrant
from authlib.oauth2.rfc7009 import RevocationEndpoint

from adapters.auth.oauth_models import POSSESSION_METHOD, SECRET_METHODS, RefreshCredential

if TYPE_CHECKING:
    from adapters.auth.oauth_server import OAuthServer


class ClientCredentials(ClientCredentialsGrant):
    """RFC 6749 §4.4, with HTTP Basic or form credentials.

    Unlike authlib's default (and RFC 6749 §4.4.3's SHOULD NOT), a refresh token is issued: this is
    the only grant that starts a session, and CONTRACT 4.1 requires the refresh grant (see the
    server's docstring for why that is safe here).
    """

    TOKEN_ENDPOINT_AUTH_METHODS = SECRET_METHODS

    def create_token_response(self) -> tuple[int, Any, list[tuple[str, str]]]:
        token = self.generate_token(scope=self.request.payload.scope, include_refresh_token=True)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class RotatingRefreshToken(RefreshTokenGrant):
    """RFC 6749 §6 with rotation and reuse detection (RFC 9700 §4.14.2).

    The presented token is consumed (atomically marked used) while it is authenticated, before any
    new token exists: of two concurrent exchanges exactly one succeeds, and the other is a replay,
    which revokes the whole family. So ``revoke_old_credential`` has nothing left to do.
    """

    TOKEN_ENDPOINT_AUTH_METHODS = SECRET_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: OAuthServer

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshCredential | None:
        return self.server.ledger.consume(refresh_token, self.request)

    def _validate_token_scope(self, token: RefreshCredential) -> None:
        """Done by ``RefreshLedger.consume``, before the token is spent: a bad ``scope`` must not cost
        the client its session. (authlib also compares scope strings literally, where roles inherit.)"""

    def authenticate_user(self, refresh_token: RefreshCredential) -> RefreshCredential:
        return refresh_token  # no end users here: the grant itself carries subject, roles and brands

    def revoke_old_credential(self, refresh_token: RefreshCredential) -> None:
        """Already consumed by ``authenticate_refresh_token``."""


class Revocation(RevocationEndpoint):
    """RFC 7009 for access and refresh tokens alike.

    Changed from authlib: a client that sends no secret may still revoke a token it holds (the
    ``token_possession`` method); an unknown ``token_type_hint`` is ignored rather than refused, as
    RFC 7009 §2.1 has the server search every token type anyway.
    """

    CLIENT_AUTH_METHODS: ClassVar[list[str]] = [*SECRET_METHODS, POSSESSION_METHOD]
    server: OAuthServer

    def check_params(self, request: Any, client: Any) -> None:
        if not request.form.get("token"):
            raise InvalidRequestError("Missing 'token' in request.")

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return self.server.ledger.find(token_string)

    def revoke_token(self, token: Any, request: Any) -> None:
        self.server.ledger.revoke(token, request)
