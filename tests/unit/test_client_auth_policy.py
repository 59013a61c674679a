"""The token endpoint's throttle policy (ADR 0014): how peers and ids become keys, what a policy
may be, and the ``Retry-After`` a block gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.abuse import (
    DEFAULT_CLIENT_AUTH_POLICY,
    AbusePolicy,
    block_length,
    client_auth_keys,
    peer_network,
    retry_after_seconds,
)


@pytest.mark.parametrize(
    ("address", "counted_as"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),  # one host holds a whole /64
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),  # an IPv4 peer on a dual-stack socket
        ("testclient", "testclient"),  # a server that reports a name
        (None, "unknown"),
        ("", "unknown"),
    ],
)
def test_peers_are_counted_by_address_or_ipv6_network(address: str | None, counted_as: str) -> None:
    assert peer_network(address) == counted_as


def test_a_claimed_id_keys_a_pair_and_the_id_and_none_keys_only_the_peer() -> None:
    keys = client_auth_keys("shop-sync-1a2b", "2001:db8::9")
    assert (keys.peer, keys.pair, keys.client) == (
        "oauth-peer:2001:db8::/64",
        "oauth-pair:shop-sync-1a2b@2001:db8::/64",
        "oauth-client:shop-sync-1a2b",
    )
    anonymous = client_auth_keys(None, "198.51.100.7")
    assert (anonymous.peer, anonymous.pair, anonymous.client) == ("oauth-peer:198.51.100.7", None, None)
    assert len(peer_network("x" * 500)) == 64  # a name is no way to grow a key without bound


def test_retry_after_rounds_up_to_whole_seconds_and_is_never_zero() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds(now + timedelta(seconds=60), now) == 60
    assert retry_after_seconds(now + timedelta(seconds=59, milliseconds=1), now) == 60
    assert retry_after_seconds(now + timedelta(milliseconds=1), now) == 1
    assert retry_after_seconds(now, now) == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"strikes": 0},
        {"growth": 0},
        {"window": timedelta(0)},
        {"block": timedelta(0)},
        {"memory": timedelta(seconds=-1)},
        {"block": timedelta(minutes=2), "max_block": timedelta(minutes=1)},
    ],
)
def test_a_policy_that_could_not_work_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AbusePolicy(**fields)  # type: ignore[arg-type]


def test_the_default_policy_bounds_every_block() -> None:
    policy = DEFAULT_CLIENT_AUTH_POLICY
    assert [block_length(policy.pair, level).total_seconds() for level in range(1, 8)] == [
        60, 120, 240, 480, 900, 900, 900,
    ]  # fmt: skip
    assert max(p.cap for p in (policy.pair, policy.peer, policy.suspect)) == timedelta(minutes=15)
    assert policy.pair.trust > timedelta(0) and not policy.peer.trust  # only a pair is trusted
    assert block_length(AbusePolicy(), 10) == AbusePolicy().block  # the threat screen's: fixed
