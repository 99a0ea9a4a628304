"""/metrics and /healthz answer only to the configured networks (loopback by default)."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from leakguard.metrics import Metrics, metrics_routes


async def _health() -> dict[str, object]:
    return {"ok": True}


def _app(*networks: str) -> Starlette:
    routes = metrics_routes(Metrics(), _health, networks or ("127.0.0.0/8", "::1/128"))
    return Starlette(routes=routes)  # type: ignore[arg-type]


async def _get(app: Starlette, client_ip: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=(client_ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://relay.test") as c:
        return await c.get(path)


async def test_loopback_reads_metrics_and_health() -> None:
    app = _app()
    r = await _get(app, "127.0.0.1", "/metrics")
    assert r.status_code == 200 and "leakguard_" in r.text
    assert (await _get(app, "::1", "/healthz")).json() == {"ok": True}


async def test_other_clients_are_refused_unless_allowed() -> None:
    app = _app()
    for path in ("/metrics", "/healthz"):
        r = await _get(app, "192.0.2.10", path)
        assert r.status_code == 403 and "leakguard_" not in r.text
    allowed = _app("192.0.2.0/24")
    assert (await _get(allowed, "192.0.2.10", "/metrics")).status_code == 200
    assert (await _get(allowed, "::ffff:192.0.2.10", "/metrics")).status_code == 200
    assert (await _get(allowed, "198.51.100.1", "/metrics")).status_code == 403
