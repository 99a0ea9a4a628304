"""Two relays on two data directories sharing one PostgreSQL store (issue 11, "Several
hosts"), as real ``leakguard serve`` processes with a real upstream sink.

Retrying clients send pass, Bcc and hold mail to both nodes; node A is killed with SIGKILL
mid-load; node B takes A's in-flight deliveries back once their lease runs out (4 s here);
A is restarted later on its own data directory. Then the reconciliation of the fault suite
(``test_e2e_faults``), against the shared store: every acknowledged mail delivered (to every
recipient) or held, no mail, hold or notice made twice (counted by Message-ID at the sink),
and a hold released on node B's side (its CLI) delivered exactly once. A third relay with a
different web secret refuses to start on the shared store. Each run gets a fresh database,
dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.harness import Relay, free_port
from e2e.sink import Sink
from e2e.test_e2e_faults import (
    DEFAULT_POLICY,
    NOTICE_HEADER,
    Load,
    Outcome,
    make_mail,
    send_with_retries,
)
from leakguard.store.sealing import encode_key, new_key

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres]

PG_ADMIN_DSN = os.environ.get("LEAKGUARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
MAILS = 150
CLIENTS = 6
LEASE = "4s"


def _pg(query: str, dsn: str = PG_ADMIN_DSN) -> list[Any]:
    asyncpg = pytest.importorskip("asyncpg")

    async def run() -> list[Any]:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            return list(await conn.fetch(query))
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL database for this run (dropped afterwards); its URL."""
    try:
        _pg("SELECT 1")
    except OSError as exc:  # pragma: no cover - environment
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    name = f"lg_multinode_{uuid.uuid4().hex[:10]}"
    _pg(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def node(tmp: Path, name: str, sink_port: int, url: str, **over: Any) -> Relay:
    extra: dict[str, Any] = {
        "store": {"url": url},
        "web": {"secret": "one secret for every node, 32+ characters long"},
        "retention": {"key": RETENTION_KEY},
        "delivery": {
            "poll_interval": "1s",
            "retry_base": "1s",
            "retry_max": "1s",
            "stale_claim_after": LEASE,
        },
        "limits": {"upstream_timeout": "3s"},
        "holds": {"timer_interval": 1.0, "notice_grace": "3s"},
    }
    for k, v in over.items():
        extra[k] = {**extra.get(k, {}), **v}
    (tmp / name).mkdir(exist_ok=True)
    return Relay(tmp / name, sink_port, policy=DEFAULT_POLICY, extra=extra)


RETENTION_KEY = encode_key(new_key())


def store_holds(url: str) -> dict[str, tuple[str, str]]:
    """hold id -> (state, Message-ID) of every hold in the shared store."""
    rows = _pg(
        "SELECT h.id, h.state, m.raw FROM holds h JOIN messages m ON m.sha256 = h.message_sha256",
        url,
    )
    out = {}
    for r in rows:
        mid = str(BytesHeaderParser().parsebytes(bytes(r["raw"])).get("Message-ID", "")).strip()
        out[str(r["id"])] = (str(r["state"]), mid)
    return out


def queue_busy(url: str) -> int:
    rows = _pg("SELECT count(*) AS n FROM deliveries WHERE state IN ('queued', 'sending')", url)
    return int(rows[0]["n"])


def at_sink(sink: Sink) -> tuple[Counter[tuple[str, str]], dict[tuple[str, str], list[str]]]:
    """(Message-ID, rcpt) -> copies of mail; (notice header, rcpt) -> notice Message-IDs."""
    mails: Counter[tuple[str, str]] = Counter()
    notices: dict[tuple[str, str], list[str]] = {}
    for m in list(sink.handler.messages):
        h = BytesHeaderParser().parsebytes(m.data)
        notice = h.get(NOTICE_HEADER)
        mid = str(h.get("Message-ID", "")).strip()
        for r in m.rcpts:
            if notice is not None:
                notices.setdefault((str(notice).strip(), r.lower()), []).append(mid)
            else:
                mails[(mid, r.lower())] += 1
    return mails, notices


def recovered(*logs: str) -> int:
    import re

    return sum(
        int(m.group(1))
        for log in logs
        for m in re.finditer(r'"deliveries": (\d+), "event": "queue_recovered"', log)
    )


def test_two_nodes_one_postgres_sigkill_under_load(tmp_path: Path, database: str) -> None:
    started = time.monotonic()
    mails = [make_mail("multinode", i) for i in range(MAILS)]
    with Sink() as sink:
        sink.handler.delay = 0.1  # an upstream that takes its time: deliveries in flight
        a = node(tmp_path, "a", sink.port, database).start()
        b = node(tmp_path, "b", sink.port, database).start()
        try:
            ports = {"a": a.port, "b": b.port}

            def port() -> int:  # a load balancer without health checks: either node
                return random.choice(list(ports.values()))

            with Load(port, mails, CLIENTS, attempts=80, timeout=15.0) as load:
                while load.done_count() < MAILS // 3:
                    time.sleep(0.02)
                # SIGKILL mid-load, while A has a delivery in flight: B carries on (and takes
                # that delivery back once its lease runs out); A's clients retry
                node_a = _node_id(a)
                end = time.monotonic() + 10
                while time.monotonic() < end and not _pg(
                    "SELECT id FROM deliveries WHERE state = 'sending' "
                    f"AND claimed_by = '{node_a}'",
                    database,
                ):
                    time.sleep(0.01)
                a.kill()
                killed_at = time.monotonic()
                while load.done_count() < MAILS * 2 // 3 and any(
                    t.is_alive() for t in load.threads
                ):
                    time.sleep(0.02)
                time.sleep(max(0.0, 5.0 - (time.monotonic() - killed_at)))  # past the lease
                a.start()  # back on its own data directory, same node id
                ports["a"] = a.port
                outcomes = load.join(120)

            acked = [o for o in outcomes if o.code == 250]
            assert len(acked) == MAILS, [(o.mail.message_id, o.code, o.text) for o in outcomes]
            held = {o.mail.message_id: o.text.split()[2] for o in acked if " held H-" in o.text}
            assert held, "the load had no holds"

            # release one hold through node B's configuration (its CLI): delivered once
            release_mid, release_id = sorted(held.items())[0]
            done = subprocess.run(
                [sys.executable, "-m", "leakguard", "holds", "release", release_id,
                 "-c", str(b.config), "--as", "officer"],
                capture_output=True, text=True, timeout=60, cwd=str(b.tmp),
            )  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr

            # the queue drains on the two nodes; every acknowledged mail is out or held
            def complete() -> bool:
                got, notices = at_sink(sink)
                noticed = {k[0].partition("hold=")[2] for k in notices}
                sent = all(
                    (o.mail.message_id in held and o.mail.message_id != release_mid)
                    or all(got[(o.mail.message_id, r.lower())] for r in o.mail.rcpts)
                    for o in acked
                )
                return sent and set(held.values()) <= noticed and queue_busy(database) == 0

            end = time.monotonic() + 40
            while time.monotonic() < end and not complete():
                time.sleep(0.25)
            time.sleep(2.0)  # a second copy, if any, would arrive by now
            assert complete(), "the queue did not drain"

            got, notices = at_sink(sink)
            holds = store_holds(database)
            cut = {o.mail.message_id for o in outcomes if o.cut_after_data}
            lost = []
            for o in acked:
                mid = o.mail.message_id
                if mid in held and mid != release_mid:
                    if holds.get(held[mid], ("", ""))[1] != mid:
                        lost.append(f"{mid}: hold {held[mid]} not in the store")
                    continue
                missing = [r for r in o.mail.rcpts if not got[(mid, r.lower())]]
                if missing:
                    lost.append(f"{mid}: not delivered to {missing[:3]}")
            # Copies the design accepts (docs/operations.md, "Several hosts"), bounded:
            # - a mail whose client was cut off after DATA (the kill came after the upstream
            #   took it, before the 250): the retry on the other node is sent again, once;
            # - a queued delivery that the kill cut off after the upstream took it, sent
            #   again by whichever node recovered it (``queue_recovered``): same Message-ID.
            duplicated: list[str] = []
            window_cut: set[str] = set()
            window_recovered: set[str] = set()
            for (mid, r), n in sorted(got.items()):
                if n == 2 and mid in cut:
                    window_cut.add(mid)
                elif n == 2:
                    window_recovered.add(mid)
                elif n > 2:
                    duplicated.append(f"{mid} to {r} x{n}")
            per_mail = Counter(mid for _s, mid in holds.values())
            duplicated += [f"{mid}: {n} holds" for mid, n in per_mail.items() if n > 1]
            for (notice, r), mids in sorted(notices.items()):
                if len(set(mids)) > 1:  # a second notice made anew: a real duplicate
                    duplicated.append(f"notice {notice!r} to {r}: {len(set(mids))} made")
                elif len(mids) > 1:
                    window_recovered.add(mids[0])
            window = sorted(window_cut | window_recovered)
            released = [got[(release_mid, r.lower())] for r in _rcpts(acked, release_mid)]
            n_recovered = recovered(a.log(), b.log())
            bound = len(cut) + n_recovered
            print(
                f"\nmultinode: mails={MAILS} acked={len(acked)} held={len(held)} "
                f"delivered={len({m for m, _r in got})} notices={sum(map(len, notices.values()))} "
                f"lost={len(lost)} duplicated={len(duplicated)} window={len(window)} "
                f"(bound {bound}: cut_after_data={len(cut)}, "
                f"queue_recovered={n_recovered}) "
                f"released={released} time={time.monotonic() - started:.1f}s"
            )
            assert not lost, lost[:10]
            assert not duplicated, duplicated[:10]
            assert len(window_cut) <= len(cut), window
            assert len(window_recovered) <= n_recovered, window
            assert holds[release_id][0] == "released"
            assert released and all(n == 1 for n in released), released  # exactly once
            assert '"event": "queue_recovered"' in a.log() + b.log()
        finally:
            a.stop()
            b.stop()

        # a third relay with another web secret is refused on the shared store
        c = node(tmp_path, "c", sink.port, database, web={"secret": "another secret entirely"})
        proc = subprocess.run(
            [sys.executable, "-m", "leakguard", "serve", "-c", str(c.config)],
            capture_output=True, text=True, timeout=60, cwd=str(c.tmp),
        )  # fmt: skip
        assert proc.returncode != 0
        out = proc.stdout + proc.stderr
        assert "web secret differs" in out and "Web の秘密鍵" in out, out[-2000:]


def _node_id(r: Relay) -> str:
    import json

    for line in r.log().splitlines():
        if '"event": "started"' in line:
            return str(json.loads(line)["node"])
    raise AssertionError("no start line in the log")


def _rcpts(acked: list[Outcome], mid: str) -> tuple[str, ...]:
    return next(o.mail.rcpts for o in acked if o.mail.message_id == mid)


HAPROXY = shutil.which("haproxy")


@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")
def test_behind_haproxy_with_proxy_protocol(tmp_path: Path, database: str) -> None:
    """HAProxy (TCP mode, send-proxy-v2) in front of the two nodes: mail goes through
    either node; a connection that bypasses the balancer (no PROXY header) is closed."""
    front = free_port()
    proxied: dict[str, Any] = {"proxy_protocol": True, "proxy_trusted": ["127.0.0.1/32"]}
    with Sink() as sink:
        nodes = [node(tmp_path, n, sink.port, database) for n in ("a", "b")]
        for r in nodes:  # plain listener behind the balancer, client network trusted
            cfg = yaml.safe_load(r.config.read_text("utf-8"))
            cfg["listeners"][0].update(proxied)
            r.config.write_text(yaml.safe_dump(cfg, allow_unicode=True), "utf-8")
        conf = tmp_path / "haproxy.cfg"
        servers = "\n".join(
            f"    server {n} 127.0.0.1:{r.port} send-proxy-v2"
            for n, r in zip("ab", nodes, strict=True)
        )
        conf.write_text(
            "global\n    log stdout format raw local0 warning\n"
            "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n"
            "    timeout server 60s\n"
            f"frontend smtp\n    bind 127.0.0.1:{front}\n    default_backend relays\n"
            f"backend relays\n    balance roundrobin\n{servers}\n",
            "utf-8",
        )
        check = subprocess.run([str(HAPROXY), "-c", "-f", str(conf)], capture_output=True)
        assert check.returncode == 0, check.stdout + check.stderr
        for r in nodes:
            _start_proxied(r)
        hap = subprocess.Popen([str(HAPROXY), "-db", "-f", str(conf)])
        try:
            mails = [make_mail("haproxy", i, kinds=("pass",)) for i in range(10)]
            outs = [send_with_retries(lambda: front, m, attempts=5) for m in mails]
            assert [o.code for o in outs] == [250] * 10, [o.text for o in outs]
            # straight to a node, bypassing the balancer: cut off
            direct = send_with_retries(lambda: nodes[0].port, make_mail("direct", 0), attempts=1)
            assert direct.code == 0
            end = time.monotonic() + 20
            while time.monotonic() < end and len(sink.handler.messages) < 10:
                time.sleep(0.1)
            got, _n = at_sink(sink)
            assert sorted({m for m, _r in got}) == sorted(m.message_id for m in mails)
            assert all(n == 1 for n in got.values())
            for r in nodes:  # the balancer spread the sessions over both nodes
                assert '"event": "message"' in r.log(), r.log()[-2000:]
        finally:
            hap.terminate()
            hap.wait(10)
            for r in nodes:
                r.stop()


def _start_proxied(r: Relay) -> None:
    """Start a relay whose listener expects a PROXY header (no greeting to wait for)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(r.log_path, "ab") as log:
        r.proc = subprocess.Popen(
            [sys.executable, "-m", "leakguard", "serve", "-c", str(r.config)],
            stdout=log, stderr=subprocess.STDOUT, cwd=str(r.tmp), env=env,
        )  # fmt: skip
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", r.web_port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("relay did not start:\n" + r.log())
