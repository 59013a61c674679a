"""Attacks on a running ``eyewear serve`` (a real process): what a test inside the process cannot see,
its memory and whether its event loop stalls, measured from outside."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from adapters.feeds.readers import MAX_BLANK_LINES
from tests.support.served import Served, serve, served_env

INGESTIONS = "/api/v1/ingestions"
LIVE_WITHIN = 1.0  # seconds: the bound for /health/live while a hostile feed is ingested
MIB = 1 << 20


@pytest.fixture
async def served(mongo_url: str, tmp_path: Path) -> AsyncIterator[Served]:
    async with serve(served_env(mongo_url, tmp_path)) as process:
        yield process


def bomb(filler: bytes, members: int = 16) -> bytes:
    """Gzip that inflates to ``members`` × 64 MiB of ``filler`` (16: about 1 MB for 1 GiB); a gzip
    stream may hold several members, and readers must read them all."""
    member = gzip.compress(filler * (64 * MIB // len(filler)), compresslevel=9)
    return member * members


async def finished(http: httpx.AsyncClient, run_id: str, headers: dict[str, str], within: float = 60) -> dict:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        report = (await http.get(f"{INGESTIONS}/{run_id}", headers=headers)).json()
        if report["status"] not in ("queued", "running"):
            return dict(report)
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish within {within}s")


BOMBS = {
    # 1 GiB of lines skipped for free one by one, yet hours of work: refused past the limit, in milliseconds.
    "blank lines": (b"\n", 16, "failed", f"more than {MAX_BLANK_LINES} blank lines"),
    # One record 256 MiB long: skipped chunk by chunk off the event loop (seconds of work), a malformed row.
    "one endless line": (b"x", 4, "succeeded", None),
}


@pytest.mark.parametrize("kind", list(BOMBS))
async def test_a_gzip_bomb_never_stalls_the_server(served: Served, kind: str) -> None:
    filler, members, status, reason = BOMBS[kind]
    body = bomb(filler, members)
    headers = {"Authorization": f"Bearer {served.token('ingestor', subject='bomber')}"}
    latencies: list[float] = []
    stop = asyncio.Event()

    async def probe_liveness() -> None:
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as probe:
            while not stop.is_set():
                started = time.monotonic()
                answer = await probe.get("/health/live")
                latencies.append(time.monotonic() - started)
                assert answer.status_code == 200
                await asyncio.sleep(0.02)

    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        prober = asyncio.create_task(probe_liveness())
        try:
            started = await http.post(
                INGESTIONS,
                content=body,
                headers={**headers, "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
            )
            assert started.status_code == 202, started.text
            report = await finished(http, started.json()["run_id"], headers, within=120)
        finally:
            stop.set()
            await prober
    assert report["status"] == status, report["reason"]
    if reason is not None:
        assert reason in report["reason"]
    else:
        assert (report["counts"]["rows"], report["counts"]["invalid"]) == (1, 1)
    assert latencies, "liveness was never probed"
    print(
        f"gzip bomb of {kind} ({len(body) / 1e6:.2f} MB, {members * 64} MiB inflated): run {report['status']} in"
        f" {report['duration_seconds']} s; /health/live max {max(latencies) * 1000:.1f} ms over {len(latencies)} probes"
    )
    assert max(latencies) < LIVE_WITHIN


async def upload(served: Served, token: str, size: int, media: str = "application/x-ndjson") -> tuple[int, int]:
    """Streams ``size`` bytes of empty lines to the ingestion route on a raw connection, the way an
    attacker would (no ``Expect: 100-continue``, sending until the server answers or hangs up);
    returns the answer's status and how many bytes were sent."""
    host, port = served.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        (
            f"POST {INGESTIONS} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: {media}\r\nContent-Length: {size}\r\n\r\n"
        ).encode()
    )
    sent = 0
    chunk = b"\n" * MIB

    async def send_body() -> None:
        nonlocal sent
        with contextlib.suppress(ConnectionError):
            while sent < size:
                writer.write(chunk[: size - sent])
                await writer.drain()
                sent += min(len(chunk), size - sent)

    sender = asyncio.create_task(send_body())
    try:
        status_line = await asyncio.wait_for(reader.readline(), 120)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return int(status_line.split()[1]), sent


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        # A viewer's feed: 403 at once (the body was read whole, 0.5 GB per request, before the check).
        ("viewer", 403),
        # An ingestor's feed is spooled as it arrives (then fails its run: all blank lines).
        ("ingestor", 202),
    ],
)
async def test_a_200_mib_upload_never_sits_in_the_servers_memory(served: Served, role: str, expected: int) -> None:
    size = 200 * MIB
    token = served.token(role, subject=f"uploader-{role}")
    before = served.peak_rss_bytes()
    status, sent = await upload(served, token, size)
    growth = served.peak_rss_bytes() - before
    print(
        f"200 MiB upload as {role}: {status} after {sent / MIB:.0f} MiB sent; server peak RSS +{growth / MIB:.1f} MiB"
    )
    assert status == expected
    assert sent == size or status == 403  # an accepted feed is read to its end
    assert growth < 32 * MIB


async def client_ip_seen(served: Served, forwarded_for: str) -> str:
    subject = f"peer-{forwarded_for.replace('.', '-')}"
    headers = {"Authorization": f"Bearer {served.token('viewer', subject=subject)}", "X-Forwarded-For": forwarded_for}
    auditor = {"Authorization": f"Bearer {served.token('auditor', subject='aud')}"}
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
        assert (await http.get("/api/v1/products", headers=headers)).status_code == 200
        for _ in range(100):  # another process's records show once shipped
            items = (await http.get("/api/v1/audit", params={"actor": subject}, headers=auditor)).json()["items"]
            if items:
                return str(items[0]["client_ip"])
            await asyncio.sleep(0.05)
    raise AssertionError("the request was never audited")


async def test_x_forwarded_for_is_believed_only_from_configured_proxies(mongo_url: str, tmp_path: Path) -> None:
    """A loopback caller cannot pick its address (the token throttle counts by it) unless the operator
    names the proxy (``EYEWEAR_FORWARDED_ALLOW_IPS``)."""
    async with serve(served_env(mongo_url, tmp_path / "plain")) as plain:
        assert await client_ip_seen(plain, "203.0.113.7") == "127.0.0.1"
    proxied = served_env(mongo_url, tmp_path / "proxied", EYEWEAR_FORWARDED_ALLOW_IPS="127.0.0.1")
    async with serve(proxied) as behind_a_proxy:
        assert await client_ip_seen(behind_a_proxy, "203.0.113.8") == "203.0.113.8"
