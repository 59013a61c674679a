"""Prometheus metrics with the names of CONTRACT.md section 5, in a registry of their own.

One registry per application instance (not the global default), so that several apps in one
process (tests, the benchmark) never collide on registration. Labels stay low-cardinality:
reasons, kinds and decisions come from closed sets, never from input.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from application.metrics import SecurityMetrics

CONTENT_TYPE = CONTENT_TYPE_LATEST


class PrometheusMetrics(SecurityMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.auth_failures = Counter(
            "eyewear_auth_failures", "Requests refused for want of a valid token", ["reason"], registry=self.registry
        )
        self.authz_decisions = Counter(
            "eyewear_authz_decisions", "Authorization decisions", ["decision"], registry=self.registry
        )
        self.threats = Counter(
            "eyewear_threats_detected", "Threats detected in requests", ["kind"], registry=self.registry
        )

    def authz_decision(self, decision: str) -> None:
        self.authz_decisions.labels(decision=decision).inc()

    def auth_failure(self, reason: str) -> None:
        self.auth_failures.labels(reason=reason).inc()

    def threat_detected(self, kind: str) -> None:
        self.threats.labels(kind=kind).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
