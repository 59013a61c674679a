"""Client secrets hashed with scrypt (stdlib ``hashlib.scrypt``): slow and memory-hard on purpose.

Stored form: ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>``. The parameters travel with the hash, so
that raising them later leaves old hashes verifiable. n=2**14, r=8, p=1 costs ~16 MiB and some tens
of milliseconds per check: negligible for one token request, ruinous for an offline guesser.
Verification recomputes with the stored parameters (bounded, so a tampered record cannot make a
check eat the machine) and compares in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from domain.clients import SecretHasher

SCHEME = "scrypt"
DEFAULT_N = 2**14
DEFAULT_R = 8
DEFAULT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
#: Parameters a stored hash may ask for: above these it is refused, not computed.
_MAX_N = 2**20
_MAX_R = 32
_MAX_P = 16


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # maxmem: scrypt needs 128 * n * r bytes (plus a little); OpenSSL's default cap is 32 MiB.
    return hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=129 * n * r * p + 2**20
    )


def _acceptable(n: int, r: int, p: int) -> bool:
    return 2 <= n <= _MAX_N and not n & (n - 1) and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P


class ScryptHasher(SecretHasher):
    def __init__(self, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P) -> None:
        if not _acceptable(n, r, p):
            raise ValueError("scrypt needs n a power of two (2..2**20), 1 <= r <= 32 and 1 <= p <= 16")
        self.n, self.r, self.p = n, r, p

    def hash(self, secret: str) -> str:
        salt = secrets.token_bytes(SALT_BYTES)
        digest = _scrypt(secret, salt, self.n, self.r, self.p, HASH_BYTES)
        return f"{SCHEME}${self.n}${self.r}${self.p}${_b64(salt)}${_b64(digest)}"

    def verify(self, secret: str, encoded: str) -> bool:
        try:
            scheme, n_text, r_text, p_text, salt_text, hash_text = encoded.split("$")
            n, r, p = int(n_text), int(r_text), int(p_text)
            salt, expected = _unb64(salt_text), _unb64(hash_text)
        except (ValueError, binascii.Error, AttributeError):
            return False
        if scheme != SCHEME or not _acceptable(n, r, p) or not salt or not 16 <= len(expected) <= 64:
            return False
        try:
            candidate = _scrypt(secret, salt, n, r, p, len(expected))
        except (UnicodeError, ValueError, MemoryError):  # a lone surrogate; OpenSSL refusing the parameters
            return False
        return hmac.compare_digest(candidate, expected)
