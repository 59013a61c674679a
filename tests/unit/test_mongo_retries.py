"""Which MongoDB errors are retried, and how often (no server needed: the errors are built here)."""

from __future__ import annotations

import pytest
from pymongo.errors import (
    AutoReconnect,
    CursorNotFound,
    DuplicateKeyError,
    NetworkTimeout,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteError,
)

from adapters.mongo.retries import RetryPolicy, is_transient

FAST = RetryPolicy(attempts=3, timeout=5.0, wait_initial=0.001, wait_max=0.002, wait_jitter=0.0)


def labelled(*labels: str, code: int = 2) -> OperationFailure:
    return OperationFailure("failed", code, {"ok": 0, "code": code, "errorLabels": list(labels)})


@pytest.mark.parametrize(
    "error",
    [
        AutoReconnect("connection closed"),
        NetworkTimeout("timed out"),
        ServerSelectionTimeoutError("no primary"),
        labelled("TransientTransactionError", code=112),
        labelled("RetryableWriteError", code=91),
        labelled("SystemOverloadedError", code=462),
        CursorNotFound("cursor id 1 not found", 43),
    ],
)
def test_transient_errors_are_retried(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        DuplicateKeyError("E11000", 11000),
        WriteError("Document failed validation", 121),
        labelled(code=2),
        labelled("UnknownTransactionCommitResult", "RetryableWriteError"),  # retried as a commit, not again
        ValueError("not a driver error"),
    ],
)
def test_permanent_errors_are_not(error: Exception) -> None:
    assert not is_transient(error)


async def test_a_transient_error_is_tried_again_within_the_bounds() -> None:
    calls: list[int] = []

    async def flaky(answer: str) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise AutoReconnect("connection closed")
        return answer

    assert await FAST.call(flaky, "done") == "done"
    assert len(calls) == 3
    calls.clear()

    async def down() -> None:
        calls.append(1)
        raise AutoReconnect("connection closed")

    with pytest.raises(AutoReconnect):
        await FAST.call(down)
    assert len(calls) == 3


async def test_a_permanent_error_is_raised_at_once() -> None:
    calls: list[int] = []

    async def refused() -> None:
        calls.append(1)
        raise DuplicateKeyError("E11000", 11000)

    with pytest.raises(DuplicateKeyError):
        await FAST.call(refused)
    assert calls == [1]
