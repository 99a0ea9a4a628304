"""Prometheus metrics (``/metrics``): messages by action and rule, latencies, queue depth,
upstream errors. One ``Metrics`` object per service, on its own registry (tests may run
several services in one process).

With several worker processes (``serve --workers N``) the parent sets
``PROMETHEUS_MULTIPROC_DIR`` before anything imports prometheus_client: every worker then
writes its values to files there, and ``/metrics`` (answered by whichever worker the kernel
hands the connection to) adds up every worker's files (``MultiProcessCollector``). Gauges
say how: connections add up over live workers, the queue depth and the stale-policy flag
are one value for the whole service (the largest a live worker reports).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Awaitable, Callable, Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


def multiprocess_dir() -> str | None:
    """The directory shared by worker processes, when metrics are in multiprocess mode."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "leakguard_messages", "Messages decided, by action", ["action"], registry=r
        )
        self.journal_errors = Counter(
            "leakguard_journal_errors",
            "Decision journal rows or retained mail not written, by stage (build, write, "
            "prune, buffer_full: kept as hash only)",
            ["stage"],
            registry=r,
        )
        self.rule_matches = Counter(
            "leakguard_rule_matches",
            "Rule matches, by rule and mode",
            ["rule", "mode"],
            registry=r,
        )
        self.decision_seconds = Histogram(
            "leakguard_decision_seconds",
            "CPU time of one decision (parse, detect, decide)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.transaction_seconds = Histogram(
            "leakguard_transaction_seconds",
            "Time from end of DATA to the reply (decision and action), by action",
            ["action"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_seconds = Histogram(
            "leakguard_upstream_seconds",
            "Time for the upstream to take one message",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.step_budget_exceeded = Counter(
            "leakguard_step_budget_exceeded",
            "Steps that read mail content and ran past their budget (reason timeout) or found "
            "their pool full (reason backlog), by step; each failed closed (leakguard.budget)",
            ["step", "reason"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "leakguard_upstream_errors",
            "Upstream failures, by kind (temporary, permanent, refused_recipient, ambiguous: "
            "connection lost after DATA, dsn_error: a bounce could not be built or sent)",
            ["kind"],
            registry=r,
        )
        self.deliveries = Counter(
            "leakguard_queue_deliveries",
            "Queued deliveries finished, by kind and result",
            ["kind", "result"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "leakguard_queue_depth",
            "Deliveries waiting or being sent",
            registry=r,
            multiprocess_mode="livemax",  # the store's count: the same for every worker
        )
        self.smtp_replies = Counter(
            "leakguard_smtp_replies",
            "Final replies to DATA, by code class",
            ["code"],
            registry=r,
        )
        self.auth_failures = Counter(
            "leakguard_auth_failures", "Failed SMTP AUTH attempts", registry=r
        )
        self.relay_denied = Counter(
            "leakguard_relay_denied",
            "Transactions refused as relaying without permission",
            registry=r,
        )
        self.connections = Gauge(
            "leakguard_smtp_connections",
            "Open SMTP connections, by listener",
            ["listener"],
            registry=r,
            multiprocess_mode="livesum",
        )

        self.reload_failures = Counter(
            "leakguard_policy_reload_failures",
            "Policy reloads (SIGHUP) refused because the new policy is invalid; the running "
            "policy stays in force",
            registry=r,
        )
        self.policy_stale = Gauge(
            "leakguard_policy_stale",
            "1 when the policy files on disk differ from the policy in force (a reload "
            "failed or has not been asked for), else 0",
            registry=r,
            multiprocess_mode="livemax",
        )

    def render(self) -> tuple[bytes, str]:
        path = multiprocess_dir()
        if path is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client import multiprocess

        # every worker's values: a fresh registry per scrape, as the library documents
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST


def metrics_routes(
    metrics: Metrics,
    health: Callable[[], Awaitable[dict[str, object]]],
    allowed_networks: Sequence[str] = ("127.0.0.0/8", "::1/128"),
) -> list[object]:
    """Starlette routes ``/metrics`` and ``/healthz``, answered only to clients in
    ``allowed_networks`` (they share the port of the review pages, which the whole office
    reaches; rule names, volumes and listener details are not for everyone)."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    networks = [ipaddress.ip_network(n, strict=False) for n in allowed_networks]

    def allowed(request: Request) -> bool:
        host = request.client.host if request.client else ""
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in n for n in networks)

    forbidden = PlainTextResponse("403 Forbidden\n", status_code=403)

    async def metrics_endpoint(request: Request) -> Response:
        if not allowed(request):
            return forbidden
        body, ctype = metrics.render()
        return Response(body, media_type=ctype)

    async def health_endpoint(request: Request) -> Response:
        if not allowed(request):
            return forbidden
        status = await health()
        ok = bool(status.get("ok"))
        degraded = status.get("status") == "degraded"
        strict = request.query_params.get("strict") in ("1", "true", "yes")
        # 503 when the relay cannot work; "degraded" (still relaying, but e.g. with an older
        # policy than the file on disk) is 200 unless ?strict=1 asks for 503 as well
        code = 503 if not ok or (degraded and strict) else 200
        return JSONResponse(status, status_code=code)

    return [
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/healthz", health_endpoint, methods=["GET"]),
    ]
