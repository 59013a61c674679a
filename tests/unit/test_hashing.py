"""Client secrets are stored as scrypt hashes: salted, self-describing, checked in constant time."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.auth.hashing import ScryptHasher
from domain.clients import refresh_token_hash

FAST = ScryptHasher(n=2**4)  # the property tests need many rounds; the format is the same


def test_round_trip_with_the_production_parameters() -> None:
    hasher = ScryptHasher()
    stored = hasher.hash("correct horse battery staple")
    assert stored.startswith("scrypt$16384$8$1$")
    assert hasher.verify("correct horse battery staple", stored)
    assert not hasher.verify("correct horse battery stapler", stored)
    assert not hasher.verify("", stored)


def test_two_hashes_of_one_secret_differ_by_their_salt() -> None:
    first, second = FAST.hash("s3cret"), FAST.hash("s3cret")
    assert first != second
    assert first.split("$")[4] != second.split("$")[4]
    assert FAST.verify("s3cret", first) and FAST.verify("s3cret", second)


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=12, max_size=64))
def test_the_stored_form_never_contains_the_secret(secret: str) -> None:
    stored = FAST.hash(secret)
    assert secret not in stored
    assert base64.b64encode(secret.encode()).decode().rstrip("=") not in stored
    assert FAST.verify(secret, stored)
    assert not FAST.verify(secret + "x", stored)


def test_a_hash_made_with_other_parameters_still_verifies() -> None:
    """The parameters travel with the hash: raising them later leaves old hashes usable."""
    old = ScryptHasher(n=2**10, r=4).hash("s3cret")
    assert ScryptHasher().verify("s3cret", old)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "nonsense",
        "bcrypt$16384$8$1$c2FsdA$aGFzaA",
        "scrypt$16384$8$1$!!!$aGFzaGhhc2hoYXNoaGFzaA",
        "scrypt$1000$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",  # n not a power of two
        "scrypt$1073741824$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",  # would eat the machine
        "scrypt$16384$8$1$$aGFzaGhhc2hoYXNoaGFzaA",
        "scrypt$16384$8$1$c2FsdHNhbHRzYWx0$aGFzaA",  # hash too short to mean anything
    ],
)
def test_a_malformed_stored_hash_verifies_nothing(stored: str) -> None:
    assert ScryptHasher().verify("s3cret", stored) is False


def test_a_secret_that_cannot_be_encoded_is_refused_not_an_error() -> None:
    stored = FAST.hash("s3cret")
    assert FAST.verify("\ud800", stored) is False


def test_unusable_parameters_are_refused_up_front() -> None:
    for n, r, p in ((1000, 8, 1), (2**14, 0, 1), (2**14, 8, 0), (2**21, 8, 1)):
        with pytest.raises(ValueError):
            ScryptHasher(n=n, r=r, p=p)


def test_refresh_tokens_are_stored_as_their_sha256() -> None:
    digest = refresh_token_hash("a-refresh-token")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest == refresh_token_hash("a-refresh-token") != refresh_token_hash("a-refresh-tokeN")
    assert "a-refresh-token" not in digest
