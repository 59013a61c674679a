"""The supervisor's policy, driven step by step: no process, no thread, a clock that only we move."""

from __future__ import annotations

import logging
import threading

import pytest

from adapters.embedded.supervisor import RestartPolicy, ServerHealth, ServerState, Supervisor


class FakeServer:
    """Plays the server: `down` makes the probe report it dead; `failures` restarts fail first."""

    def __init__(self) -> None:
        self.down: str | None = None
        self.failures: list[Exception] = []
        self.waiting = 0  # restarts that another process is doing: not ours, not failures
        self.restarts = 0

    def probe(self) -> str | None:
        return self.down

    def recover(self) -> str | None:
        if self.waiting:
            self.waiting -= 1
            return None
        if self.failures:
            raise self.failures.pop(0)
        self.down = None
        self.restarts += 1
        return f"restart #{self.restarts}"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="adapters.embedded.supervisor")


POLICY = RestartPolicy(check_interval=0.25, first_delay=0.5, max_delay=5.0, give_up_after=3, expected_restart=1.5)


def supervised(server: FakeServer, clock: Clock | None = None) -> Supervisor:
    return Supervisor(server.probe, server.recover, POLICY, clock=clock or Clock())


def test_a_running_server_is_only_probed() -> None:
    server = FakeServer()
    supervisor = supervised(server)
    assert [supervisor.step() for _ in range(3)] == [0.25, 0.25, 0.25]
    assert supervisor.health == ServerHealth(ServerState.RUNNING)
    assert server.restarts == 0


def test_a_dead_server_is_restarted_at_once_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    server, clock = FakeServer(), Clock()
    supervisor = supervised(server, clock)
    server.down = "pid=7 exited with code -9"
    assert supervisor.step() == 0.25
    health = supervisor.health
    assert (health.state, health.restarts, health.failures, health.available, health.live) == (
        ServerState.RUNNING,
        1,
        0,
        True,
        True,
    )
    assert server.restarts == 1
    events = [record.getMessage() for record in caplog.records]
    assert events[0].startswith("embedded_mongo.died pid=7 exited with code -9")
    assert events[1].startswith("embedded_mongo.restarted restart #1 after 0.00s down")


def test_failed_restarts_back_off_and_then_liveness_fails(caplog: pytest.LogCaptureFixture) -> None:
    server = FakeServer()
    supervisor = supervised(server)
    server.down = "pid=7 is gone"
    server.failures = [OSError(f"storage unusable {n}\nsecond line") for n in range(5)]
    seen: list[tuple[float, ServerState, int, int]] = []
    for _ in range(5):
        delay = supervisor.step()
        health = supervisor.health
        seen.append((delay, health.state, health.failures, health.retry_after))
    assert seen == [
        (0.5, ServerState.RESTARTING, 1, 2),
        (1.0, ServerState.RESTARTING, 2, 3),
        (2.0, ServerState.FAILED, 3, 4),
        (4.0, ServerState.FAILED, 4, 6),
        (5.0, ServerState.FAILED, 5, 7),  # capped at max_delay
    ]
    assert not supervisor.health.live and not supervisor.health.available
    assert supervisor.health.detail == "OSError: storage unusable 4", "one line: the first of the error"
    gave_up = [r for r in caplog.records if r.getMessage().startswith("embedded_mongo.unrecoverable")]
    assert len(gave_up) == 1, "said once, not at every further failure"


def test_a_failed_server_that_comes_back_is_live_again() -> None:
    server = FakeServer()
    supervisor = supervised(server)
    server.down = "pid=7 is gone"
    server.failures = [OSError("no") for _ in range(3)]
    for _ in range(3):
        supervisor.step()
    assert supervisor.health.state is ServerState.FAILED
    assert supervisor.step() == 0.25  # the storage is back: the retry succeeds
    assert supervisor.health == ServerHealth(ServerState.RUNNING, restarts=1)


def test_waiting_for_another_process_to_restart_it_is_not_a_failure() -> None:
    server, clock = FakeServer(), Clock()
    supervisor = supervised(server, clock)
    server.down, server.waiting = "pid=7 is gone", 2
    for _ in range(2):
        assert supervisor.step() == 0.25
        clock.now += 0.25
        assert (supervisor.health.state, supervisor.health.failures) == (ServerState.RESTARTING, 0)
    supervisor.step()
    assert supervisor.health.state is ServerState.RUNNING


def test_the_downtime_is_measured_from_the_death(caplog: pytest.LogCaptureFixture) -> None:
    server, clock = FakeServer(), Clock()
    supervisor = supervised(server, clock)
    server.down, server.failures = "pid=7 is gone", [OSError("port taken")]
    supervisor.step()
    clock.now += 0.5
    supervisor.step()
    assert any("after 0.50s down (1 failed attempts)" in r.getMessage() for r in caplog.records)


def test_a_probe_that_raises_counts_as_a_dead_server() -> None:
    def probe() -> str | None:
        raise PermissionError("/proc is hidden")

    restarted: list[str] = []

    def recover() -> str:
        restarted.append("again")
        return "again"

    supervisor = Supervisor(probe, recover, POLICY, clock=Clock())
    supervisor.step()
    assert restarted == ["again"]
    assert supervisor.health.restarts == 1


def test_the_policy_backs_off_exponentially_up_to_its_cap() -> None:
    assert [POLICY.delay(n) for n in range(0, 7)] == [0.5, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_the_thread_restarts_a_dead_server_and_stops_when_told() -> None:
    server = FakeServer()
    restarted = threading.Event()

    def recover() -> str | None:
        answer = server.recover()
        restarted.set()
        return answer

    supervisor = Supervisor(server.probe, recover, RestartPolicy(check_interval=0.01))
    supervisor.start()
    supervisor.start()  # idempotent: one thread
    try:
        server.down = "pid=7 is gone"
        assert restarted.wait(5), "the thread noticed and restarted the server"
    finally:
        supervisor.stop(timeout=5)
    assert server.restarts == 1
    assert supervisor.health.live, "a supervisor stopped on purpose is not a failure"
    assert not any(t.name == "embedded-mongo-supervisor" for t in threading.enumerate())


def test_a_supervisor_thread_that_died_makes_the_process_not_live() -> None:
    supervisor = supervised(FakeServer())
    supervisor._thread = threading.Thread(target=lambda: None)  # a thread that ended, as only a bug could end it
    supervisor._thread.start()
    supervisor._thread.join(5)
    health = supervisor.health
    assert (health.state, health.live, health.detail) == (
        ServerState.FAILED,
        False,
        "the supervisor thread stopped",
    )


def test_a_bug_in_a_step_is_logged_and_the_thread_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    server = FakeServer()
    server.down = "pid=7 is gone"
    bugs = [RuntimeError("a bug in the clock")]
    restarted = threading.Event()

    def clock() -> float:
        if bugs:
            raise bugs.pop()
        return 100.0

    def recover() -> str | None:
        answer = server.recover()
        restarted.set()
        return answer

    supervisor = Supervisor(server.probe, recover, RestartPolicy(check_interval=0.01, max_delay=0.01), clock=clock)
    supervisor.start()
    try:
        assert restarted.wait(5), "the thread survived the bug and restarted the server on its next step"
    finally:
        supervisor.stop(timeout=5)
    assert [r.getMessage() for r in caplog.records if "supervisor_error" in r.getMessage()] == [
        "embedded_mongo.supervisor_error"
    ]
    assert supervisor.health == ServerHealth(ServerState.RUNNING, restarts=1)
