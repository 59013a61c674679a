"""Threat screening for the API: refuse, record, count strikes; never rewrite the input.

The policy (what is a threat, when a caller is shut out) is the domain's; this module only
reports what the domain finds: an audit record per detection, a strike per detection, and a 429
for a caller whose strikes tipped it over.

The screen looks at the query string only. It never reads a body: bodies are the route's, read
after the caller is authenticated (and a feed only after it is authorized, streamed to disk), and
their threats are found by the same domain parsers that read feed rows (``parse_product_payload``,
the store profile parser), which raise ``ThreatDetected``: reported here through the problem
handler. So an API body and a feed row meet one rule set.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request

from application.authorization import Authorizer, Caller
from domain.abuse import AbuseTracker
from domain.ports import Clock
from domain.threats import Threat, scan_query
from entrypoints.http.problems import Problem


@dataclass
class ThreatScreen:
    authorizer: Authorizer
    tracker: AbuseTracker
    clock: Clock

    @staticmethod
    def keys(caller: Caller) -> list[str]:
        """Strikes count against the authenticated subject, else against the client address
        (so many users behind one proxy are not shut out for one of them)."""
        if caller.actor != "anonymous":
            return [f"sub:{caller.actor}"]
        return [f"ip:{caller.client_ip}"] if caller.client_ip else []

    async def refuse_if_blocked(self, keys: Iterable[str]) -> None:
        now = self.clock.now()
        for key in keys:
            until = await self.tracker.blocked_until(key, now)
            if until is not None:
                raise _too_many(until, now)

    async def report(self, caller: Caller, resource: str, threats: Sequence[Threat]) -> None:
        """Audits each kind once and counts one strike per request."""
        for kind in sorted({t.kind for t in threats}):
            await self.authorizer.threat(caller, resource, kind.value)
        now = self.clock.now()
        for key in self.keys(caller):
            await self.tracker.strike(key, now)

    async def screen(self, request: Request, caller: Caller, resource: str) -> None:
        await self.refuse_if_blocked(self.keys(caller))
        threats = scan_query(request.query_params.multi_items())
        if threats:
            await self.report(caller, resource, threats)
            raise Problem(400, "the query string carries operator injection", tuple(t.as_error() for t in threats))


def _too_many(until: datetime, now: datetime) -> Problem:
    seconds = max(1, math.ceil((until - now).total_seconds()))
    return Problem(429, "too many refused requests; try again later", headers={"Retry-After": str(seconds)})
