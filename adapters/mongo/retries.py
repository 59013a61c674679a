"""Transient MongoDB errors, retried with backoff (stamina), and the transaction loop they need.

What counts as transient: a lost connection or a timeout (``ConnectionFailure``, which covers
``AutoReconnect``, ``NetworkTimeout`` and server selection; ``ExecutionTimeout``), any error the
server or the driver labelled retryable (``TransientTransactionError``, ``RetryableWriteError``,
``SystemOverloadedError``), and a cursor the server no longer knows (a read starts again).
Everything else (a duplicate key, a validation failure, a bad command) is permanent and
propagates unchanged at once.

Transactions are run by hand rather than with ``with_transaction``, whose retry budget is a fixed
120 s: here the whole transaction is retried within ``RetryPolicy``'s bounds, and a commit whose
outcome is unknown is retried as a commit (the server recognises the transaction number), never
by running the transaction again, so a batch is applied at most once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import stamina
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import ConnectionFailure, CursorNotFound, ExecutionTimeout, PyMongoError, WTimeoutError

P = ParamSpec("P")
T = TypeVar("T")

TRANSIENT_LABELS = ("TransientTransactionError", "RetryableWriteError", "SystemOverloadedError")
UNKNOWN_COMMIT = "UnknownTransactionCommitResult"


def is_transient(error: Exception) -> bool:
    """Worth another attempt of the same operation (a commit of unknown outcome is not: see above)."""
    if not isinstance(error, PyMongoError) or error.has_error_label(UNKNOWN_COMMIT):
        return False
    if isinstance(error, ConnectionFailure | ExecutionTimeout | WTimeoutError):
        return True
    if isinstance(error, CursorNotFound):  # a cursor the server dropped (idle, restarted): read again
        return True
    return any(error.has_error_label(label) for label in TRANSIENT_LABELS)


def _unknown_commit(error: Exception) -> bool:
    return isinstance(error, PyMongoError) and error.has_error_label(UNKNOWN_COMMIT)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds of the retries of one operation: at most ``attempts`` tries, no new try after
    ``timeout`` seconds, waits growing exponentially from ``wait_initial`` up to ``wait_max``
    (plus up to ``wait_jitter`` of random jitter). ``stamina.set_testing(True)`` disables the waits."""

    attempts: int = 5
    timeout: float = 10.0
    wait_initial: float = 0.1
    wait_max: float = 2.0
    wait_jitter: float = 0.25

    def _caller(self) -> stamina.AsyncRetryingCaller:
        return stamina.AsyncRetryingCaller(
            attempts=self.attempts,
            timeout=self.timeout,
            wait_initial=self.wait_initial,
            wait_max=self.wait_max,
            wait_jitter=self.wait_jitter,
        )

    async def call(self, operation: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """``operation(*args, **kwargs)``, tried again on transient errors."""
        return await self._caller().on(is_transient)(operation, *args, **kwargs)

    async def transaction(
        self, client: Any, work: Callable[[AsyncClientSession], Awaitable[T]], session: AsyncClientSession | None = None
    ) -> T:
        """``work`` in one multi-document transaction, committed once; retried as a whole when transient.

        On ``session`` when given (a writer's, held across its transactions), else on a new one."""
        if session is not None:
            return await self.call(self._in_transaction, session, work)
        return await self.call(self._transaction_once, client, work)

    async def _transaction_once(self, client: Any, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        async with client.start_session() as session:
            return await self._in_transaction(session, work)

    async def _in_transaction(
        self, session: AsyncClientSession, work: Callable[[AsyncClientSession], Awaitable[T]]
    ) -> T:
        await session.start_transaction()
        try:
            result = await work(session)
        except BaseException:
            if session.in_transaction:
                with contextlib.suppress(PyMongoError):
                    await session.abort_transaction()
            raise
        await self._caller().on(_unknown_commit)(session.commit_transaction)
        return result


DEFAULT_RETRY = RetryPolicy()
