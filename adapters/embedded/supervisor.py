"""Keeps the embedded server running: notices that it died and starts it again, with back-off.

A thread, not an asyncio task: ``eyewear serve`` starts the server before uvicorn creates its
event loop, and the container starts it from a synchronous resource; a thread serves both, and
its checks (a ``poll()`` of the child, a look at /proc) never block an event loop. The thread
only calls the two functions it is given, so its policy is tested without any process.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

logger = logging.getLogger(__name__)


class ServerState(StrEnum):
    RUNNING = "running"
    RESTARTING = "restarting"
    FAILED = "failed"


@dataclass(frozen=True)
class ServerHealth:
    """What the app needs to answer while the server is down: whether to try, and when again."""

    state: ServerState = ServerState.RUNNING
    restarts: int = 0
    #: Consecutive restart attempts that failed; back to 0 once one succeeds.
    failures: int = 0
    detail: str = ""
    #: Seconds a client should wait before it retries (the ``Retry-After`` of a 503).
    retry_after: int = 1

    @property
    def available(self) -> bool:
        return self.state is ServerState.RUNNING

    @property
    def live(self) -> bool:
        """False once restarts keep failing: then only restarting the process may help."""
        return self.state is not ServerState.FAILED


@dataclass(frozen=True)
class RestartPolicy:
    """How often to look, how to back off, and when to stop calling the process live."""

    check_interval: float = 0.25
    first_delay: float = 0.5
    max_delay: float = 5.0
    give_up_after: int = 3
    #: A restart takes about a second (WiredTiger recovery): what a client is told to wait.
    expected_restart: float = 1.5

    def delay(self, failures: int) -> float:
        """Seconds before the next attempt after ``failures`` consecutive failed ones."""
        return float(min(self.first_delay * 2 ** max(failures - 1, 0), self.max_delay))


#: None while the server runs, else why it is down (one line).
Probe = Callable[[], str | None]
#: Brings the server back: a description of it when it runs again, None when another process
#: is restarting it (not a failure; ask again soon); raises when this attempt failed.
Recover = Callable[[], str | None]


class Supervisor:
    """Probes the server every ``check_interval`` seconds and restarts it when it has died."""

    def __init__(
        self,
        probe: Probe,
        recover: Recover,
        policy: RestartPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str = "embedded-mongo-supervisor",
    ) -> None:
        self.policy = policy or RestartPolicy()
        self._probe = probe
        self._recover = recover
        self._clock = clock
        self._name = name
        self._health = ServerHealth()
        self._down_since: float | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    @property
    def health(self) -> ServerHealth:
        health = self._health
        thread = self._thread
        if (
            thread is not None
            and not thread.is_alive()
            and not self._stopping.is_set()
            and os.getpid() == self._pid  # a forked child never had the thread
        ):
            return replace(health, state=ServerState.FAILED, detail="the supervisor thread stopped")
        return health

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stops watching; waits for a restart in progress, so that the caller can stop what it started."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def step(self) -> float:
        """One probe and, when the server is down, one restart attempt; seconds until the next step."""
        if self._health.state is ServerState.RUNNING:
            try:
                reason = self._probe()
            except Exception as exc:  # a probe that cannot tell counts as a dead server
                reason = f"the probe failed: {type(exc).__name__}: {exc}"
            if reason is None:
                return self.policy.check_interval
            self._went_down(reason)
        return self._attempt()

    def _run(self) -> None:
        wait = self.policy.check_interval
        while not self._stopping.wait(wait):
            try:
                wait = self.step()
            except Exception:  # never let the thread die of a bug: it is all that restarts the server
                logger.exception("embedded_mongo.supervisor_error")
                wait = self.policy.max_delay

    def _went_down(self, reason: str) -> None:
        self._down_since = self._clock()
        self._health = replace(
            self._health,
            state=ServerState.RESTARTING,
            failures=0,
            detail=reason,
            retry_after=_seconds(self.policy.expected_restart),
        )
        logger.warning("embedded_mongo.died %s; restarting it", reason)

    def _attempt(self) -> float:
        health = self._health
        try:
            restarted = self._recover()
        except Exception as exc:
            return self._failed(health, exc)
        if restarted is None:  # another process is restarting it: not this one's failure
            self._health = replace(health, retry_after=_seconds(self.policy.expected_restart))
            return self.policy.check_interval
        downtime = self._clock() - (self._down_since if self._down_since is not None else self._clock())
        self._health = ServerHealth(ServerState.RUNNING, restarts=health.restarts + 1)
        self._down_since = None
        logger.info(
            "embedded_mongo.restarted %s after %.2fs down (%d failed attempts)", restarted, downtime, health.failures
        )
        return self.policy.check_interval

    def _failed(self, health: ServerHealth, exc: Exception) -> float:
        failures = health.failures + 1
        delay = self.policy.delay(failures)
        state = ServerState.FAILED if failures >= self.policy.give_up_after else ServerState.RESTARTING
        detail = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
        self._health = replace(
            health,
            state=state,
            failures=failures,
            detail=detail,
            retry_after=_seconds(delay + self.policy.expected_restart),
        )
        logger.warning("embedded_mongo.restart_failed attempt=%d retry_in=%.1fs: %s", failures, delay, detail)
        if state is ServerState.FAILED and health.state is not ServerState.FAILED:
            logger.error(
                "embedded_mongo.unrecoverable after %d failed restarts: /health/live fails; still retrying every %.1fs",
                failures,
                self.policy.max_delay,
            )
        return delay


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))
