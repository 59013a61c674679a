"""What the token-throttle tests share: a counting secret hasher and the 429 they expect."""

from __future__ import annotations

import threading

import httpx

from adapters.auth.hashing import ScryptHasher
from domain.clients import SecretHasher

TOKEN, REVOKE = "/oauth/token", "/oauth/revoke"
Client = tuple[str, str]


class CountingHasher(SecretHasher):
    """Real scrypt (cheap parameters: the count matters here, not the cost) that counts its checks."""

    def __init__(self) -> None:
        self.inner = ScryptHasher(n=2**4)
        self.checks = 0
        self._lock = threading.Lock()  # checks run in authlib's worker threads

    def hash(self, secret: str) -> str:
        return self.inner.hash(secret)

    def verify(self, secret: str, encoded: str) -> bool:
        with self._lock:
            self.checks += 1
        return self.inner.verify(secret, encoded)


async def token(http: httpx.AsyncClient, client: Client, **form: str) -> httpx.Response:
    return await http.post(TOKEN, data={"grant_type": "client_credentials", **form}, auth=client)


def wrong(client: Client) -> Client:
    return client[0], "not-the-secret"


def assert_throttled(response: httpx.Response, retry_after: int | None = None) -> int:
    """A 429 in RFC 6749 shape; returns its ``Retry-After``."""
    assert response.status_code == 429, response.text
    assert response.json() == {
        "error": "temporarily_unavailable",
        "error_description": "Too many failed client authentications; retry later.",
    }
    assert response.headers["cache-control"] == "no-store"
    seconds = int(response.headers["retry-after"])
    if retry_after is not None:
        assert seconds == retry_after
    return seconds
