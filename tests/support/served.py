"""``eyewear serve`` as a real child process, for tests of what only a process shows (memory,
event-loop stalls, signals): started with the test's settings, ready when ``/health/ready`` says ok."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from adapters.embedded.process import free_port

EYEWEAR = [sys.executable, "-c", "from entrypoints.cli import main; main()"]
READY_WITHIN = 60.0


def served_env(mongo_url: str, data_dir: Path, **settings: str) -> dict[str, str]:
    """The parent's environment without its ``EYEWEAR_*``, on a database of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EYEWEAR_")}
    db = f"eyewear_served_{uuid.uuid4().hex[:8]}"
    base = {"EYEWEAR_MONGODB_URL": mongo_url, "EYEWEAR_MONGODB_DB": db, "EYEWEAR_DATA_DIR": str(data_dir)}
    return env | base | {"EYEWEAR_LOG_LEVEL": "WARNING"} | settings


@dataclass
class Served:
    process: asyncio.subprocess.Process
    url: str
    env: dict[str, str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def token(self, *roles: str, subject: str = "served", brands: tuple[str, ...] = ()) -> str:
        """A token signed with the served process's keys (``eyewear token`` on the same data dir)."""
        args = [*EYEWEAR, "token", "--subject", subject, *(a for r in roles for a in ("--role", r))]
        args += [a for b in brands for a in ("--brand", b)]
        issued = subprocess.run(args, env=self.env, capture_output=True, text=True, check=True, timeout=60)
        return issued.stdout.strip()

    def peak_rss_bytes(self) -> int:
        """The process's peak resident memory so far (``VmHWM``), which no short spike escapes."""
        return _status_kib(self.pid, "VmHWM") * 1024

    def rss_bytes(self) -> int:
        return _status_kib(self.pid, "VmRSS") * 1024


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@contextlib.asynccontextmanager
async def serve(env: dict[str, str]) -> AsyncIterator[Served]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *EYEWEAR, "serve", "--port", str(port), env=env, stdout=subprocess.DEVNULL
    )
    served = Served(process, f"http://127.0.0.1:{port}", env)
    try:
        async with httpx.AsyncClient(base_url=served.url, timeout=5) as http:
            deadline = time.monotonic() + READY_WITHIN
            while True:
                assert process.returncode is None, "eyewear serve exited before it was ready"
                assert time.monotonic() < deadline, "eyewear serve did not become ready"
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/health/ready")).json().get("status") == "ok":
                        break
                await asyncio.sleep(0.1)
        yield served
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
