"""What the relay benchmarks share: the servers, the mails, the load and the measurements.

- ``Sink``: Postfix's ``smtp-sink`` (the protocol ceiling, and every relay's upstream).
- ``Leakguard``: ``leakguard serve`` with the default policy on a plain loopback listener,
  upstream = the sink, its own data directory; extra command-line arguments pass through.
- ``Postfix`` (tests/deploy/postfix.py): a private Postfix relay, queue on disk.
- ``write_mail``: the mails of the three paths of the default policy, to a given size:
  ``pass`` (internal recipients), ``held`` (a citizen's form with a My Number to a partner:
  rules personal-my-number and others) and ``bcc`` (12 companies visible in To:
  bulk-external). ``check_action`` asks ``leakguard check`` which action a mail gets, so a
  benchmark never measures the wrong path.
- ``smtp_source``: Postfix's C load generator sending a mail file (``-F``), the same bytes
  to every target.
- ``paced``: a small asyncio client (raw sockets, one connection per session) that sends at
  a fixed total rate and times MAIL FROM -> the 250 after DATA.
- ``tree_cpu`` / ``status_kb``: CPU seconds of a process and its descendants
  (/proc/<pid>/stat utime+stime), and VmRSS / VmHWM from /proc/<pid>/status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.header import Header
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from deploy.postfix import Postfix, why_postfix_cannot_run  # noqa: E402

__all__ = [
    "ROOT",
    "SENDER",
    "Leakguard",
    "Postfix",
    "Sink",
    "check_action",
    "envelope",
    "free_port",
    "loadavg",
    "paced",
    "smtp_source",
    "status_kb",
    "tree_cpu",
    "wait_port",
    "why_postfix_cannot_run",
    "write_mail",
]

SENDER = "kazuya.sato@city.example.lg.jp"
# smtp-source -r N -t ADDR sends to ADDR, 2ADDR, ... NADDR: the envelope of each path
RCPT = {
    "pass": "staff@city.example.lg.jp",
    "held": "soumu@sample-shoji.co.jp",
    "bcc": "info@company01.example",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")
SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), 1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


# ---------------------------------------------------------------- /proc measurements


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (worker processes, extraction workers)."""
    kids = _children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def _cpu(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    f = stat[stat.rindex(")") + 2 :].split()
    return (int(f[11]) + int(f[12])) / CLK_TCK  # utime, stime


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and its live descendants (a descendant that
    exited is missed: the relay's workers live as long as the relay)."""
    return sum(_cpu(p) for p in tree(pid))


def settle(pid: int, idle_cores: float = 0.03, window: float = 1.0, timeout: float = 180) -> float:
    """Wait until ``pid``'s process tree is idle (uses less than ``idle_cores`` over a
    ``window``): work a run left behind (hold notices, journal batches, queued deliveries)
    must be counted to that run, not to the next. Returns the seconds until the tree went
    idle (the idle window itself not counted)."""
    t0 = time.monotonic()
    last = tree_cpu(pid)
    busy_until = t0
    while time.monotonic() - t0 < timeout:
        time.sleep(window)
        now = tree_cpu(pid)
        if (now - last) / window < idle_cores:
            break
        last = now
        busy_until = time.monotonic()
    return round(busy_until - t0, 1)


def status_kb(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` field in kB (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def tree_rss_kb(pid: int) -> int:
    total = 0
    for p in tree(pid):
        with contextlib.suppress(OSError, KeyError):
            total += status_kb(p, "VmRSS")
    return total


def reset_hwm(pid: int) -> None:
    """Reset VmHWM to the current RSS (Linux ``clear_refs`` 5)."""
    with open(f"/proc/{pid}/clear_refs", "w") as fh:
        fh.write("5")


# ---------------------------------------------------------------- servers


class Sink:
    """``smtp-sink`` on a loopback port: accepts everything, keeps nothing."""

    def __init__(self, backlog: int = 1000) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [SMTP_SINK, "-u", "postfix", f"127.0.0.1:{self.port}", str(backlog)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_port(self.port)

    def stop(self) -> None:
        _stop(self.proc)


def _stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@dataclass
class Leakguard:
    """``leakguard serve`` relaying to ``upstream_port`` (0: to the maildir of its data
    directory), in a fresh data directory."""

    upstream_port: int
    extra_args: Sequence[str] = ()
    max_recipients: int = 1000
    max_message_size: int = 100 * 1024 * 1024
    config: dict[str, Any] = field(default_factory=dict)  # top-level keys merged in
    binary: str = str(ROOT / ".venv" / "bin" / "leakguard")  # another checkout's, to compare
    port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.data = Path(tempfile.mkdtemp(prefix="lg-bench-"))
        cfg = {
            "data_dir": str(self.data / "data"),
            "policy": str(ROOT / "policies" / "default.yaml"),
            "listeners": [
                {"kind": "plain", "listen": f"127.0.0.1:{self.port}", "max_connections": 1100}
            ],
            "web": {"listen": f"127.0.0.1:{self.web_port}"},
            "limits": {
                "max_recipients": self.max_recipients,
                "max_message_size": self.max_message_size,
            },
        }
        if self.upstream_port:  # else the local maildir (the demo mode)
            cfg["upstream"] = {"host": "127.0.0.1", "port": self.upstream_port, "tls": "none"}
        cfg.update(self.config)
        self.config_file = self.data / "leakguard.yaml"
        self.config_file.write_text(json.dumps(cfg), "utf-8")  # JSON is YAML
        self.log = self.data / "serve.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [self.binary, "serve", "-c", str(self.config_file),
                 *self.extra_args],
                stdout=subprocess.DEVNULL, stderr=log, cwd=self.data, start_new_session=True,
            )  # fmt: skip
        try:
            wait_port(self.port, 120)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"leakguard serve did not start: {self.tail()}") from None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self) -> str:
        try:
            return self.log.read_text("utf-8", "replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        _stop(self.proc)
        shutil.rmtree(self.data, ignore_errors=True)


# ---------------------------------------------------------------- mails

_FILLER = [
    "来年度の予算要求について、各課の取りまとめ状況を確認しています。",
    "差し替えの資料がある場合は、今週金曜日までに総務課へお知らせください。",
    "会議室の予約は庁内ポータルから行い、備品の貸し出しは前日までに申請してください。",
    "The revised schedule for the spring inspection is attached to the shared folder.",
    "説明会の資料は三十部用意し、受付で配布する予定です。",
    "議事録の確認をお願いします。修正があれば赤字でご記入ください。",
    "Please confirm the room booking and the number of participants by Thursday noon.",
    "庁舎の空調点検に伴い、午後は一部の会議室が使用できません。",
]

_HELD_BLOCK = """\
株式会社サンプル商事
総務部 田中様

いつもお世話になっております。市民課の佐藤です。
給付金の口座登録について、市民の方から届いた申請内容を下記のとおり転送いたします。

-----Original Message-----
差出人: 市ウェブフォーム <webform@city.example.lg.jp>
送信日時: 2026年11月24日 9:12
宛先: 市民課 <shimin@city.example.lg.jp>
件名: 【申請フォーム】給付金口座登録

■申請者情報
氏名：鈴木 花子
フリガナ：スズキ ハナコ
生年月日：平成2年5月14日
住所：〒330-0062 埼玉県さいたま市浦和区仲町三丁目5番1号
電話番号：０９０−２２３４−５６７８
個人番号：３１４１ ５９２６ ５３５２

■振込先口座
銀行名：さいたま中央銀行
口座種別：普通
口座番号：7654321
"""


def envelope(kind: str, rcpts: int) -> list[str]:
    """The envelope recipients smtp-source uses for ``-r rcpts -t RCPT[kind]``."""
    base = RCPT[kind]
    return [base] + [f"{i}{base}" for i in range(2, rcpts + 1)]


def _wire_len(lines: list[str]) -> int:
    return sum(len(x.encode("iso2022_jp")) + 2 for x in lines)


def mail_lines(kind: str, size: int) -> list[str]:
    """The mail of ``kind`` as text lines (ISO-2022-JP body, 7 bit) of about ``size``
    bytes on the wire (CRLF line ends)."""
    if kind == "pass":
        to = f"{Header('職員各位', 'iso-2022-jp').encode()} <{RCPT['pass']}>"
    elif kind == "held":
        to = f"{Header('田中 総務部', 'iso-2022-jp').encode()} <{RCPT['held']}>"
    else:
        to = ",\r\n ".join(f"info@company{i:02d}.example" for i in range(1, 13))
    head = [
        f"From: {Header('佐藤 一也', 'iso-2022-jp').encode()} <{SENDER}>",
        *f"To: {to}".split("\r\n"),
        f"Subject: {Header('予算要求の取りまとめについて', 'iso-2022-jp').encode()}",
        "Date: Mon, 30 Nov 2026 10:00:00 +0900",
        f"Message-ID: <bench-{kind}-{size}@city.example.lg.jp>",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="iso-2022-jp"',
        "Content-Transfer-Encoding: 7bit",
        "",
    ]
    body = [*_HELD_BLOCK.splitlines(), ""] if kind == "held" else ["各位", ""]
    lines = head + body
    n = _wire_len(lines)
    i = 0
    while n < size:
        line = _FILLER[i % len(_FILLER)]
        i += 1
        lines.append(line)
        n += len(line.encode("iso2022_jp")) + 2
        if i % 6 == 0:
            lines.append("")
            n += 2
    return lines


def write_mail(kind: str, size: int, path: Path) -> Path:
    """Write the mail for ``smtp-source -F`` (LF line ends; smtp-source sends CRLF and
    dot-stuffs)."""
    text = "\n".join(mail_lines(kind, size)) + "\n"
    path.write_bytes(text.encode("iso2022_jp"))
    return path


def wire_bytes(kind: str, size: int) -> bytes:
    """The same mail as it goes over the wire after DATA: CRLF, dot-stuffed, terminated."""
    out = []
    for line in mail_lines(kind, size):
        b = line.encode("iso2022_jp")
        out.append(b"." + b if b.startswith(b".") else b)
    return b"\r\n".join(out) + b"\r\n.\r\n"


def check_action(mail: Path, kind: str, rcpts: int) -> str:
    """The action ``leakguard check`` (default policy) takes on ``mail`` with the benchmark's
    envelope."""
    cmd = [str(ROOT / ".venv" / "bin" / "leakguard"), "check", "--json",
           "--policy", str(ROOT / "policies" / "default.yaml"), "--sender", SENDER]  # fmt: skip
    for r in envelope(kind, rcpts):
        cmd += ["--rcpt", r]
    done = subprocess.run([*cmd, str(mail)], capture_output=True, text=True, check=False)
    try:
        return str(json.loads(done.stdout.splitlines()[0])["action"])
    except (IndexError, ValueError, KeyError):
        raise RuntimeError(f"leakguard check failed: {done.stderr[-800:]}") from None


# ---------------------------------------------------------------- load


def smtp_source(
    port: int,
    mail: Path,
    kind: str,
    messages: int,
    sessions: int,
    rcpts: int,
    reuse: bool = False,
    unique: bool = False,
) -> float:
    """Send ``messages`` copies of ``mail`` over ``sessions`` parallel sessions with Postfix's
    ``smtp-source``; returns the seconds it took. Fails unless every reply was positive.
    A new connection per mail, as in issue 11's figures, unless ``reuse`` (``-d``).
    ``unique`` (``-N``): every recipient address gets a sequence number no other mail has,
    so that no two mails have the same envelope; the relay's retry recognition (the same
    bytes, sender and recipients within minutes are one transaction sent again: no second
    hold, no second notice) would otherwise answer every held mail after the first from
    the first one's hold."""
    cmd = [SMTP_SOURCE, "-s", str(sessions), "-m", str(messages), "-F", str(mail),
           "-r", str(rcpts), "-f", SENDER, "-t", RCPT[kind]]  # fmt: skip
    if reuse:
        cmd.append("-d")
    if unique:
        cmd.append("-N")
    cmd.append(f"127.0.0.1:{port}")
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    took = time.perf_counter() - t0
    if done.returncode != 0 or done.stderr.strip():
        raise RuntimeError(f"smtp-source failed ({done.returncode}): {done.stderr[-500:]}")
    return took


async def _reply(reader: asyncio.StreamReader) -> bytes:
    """One SMTP reply (multi-line replies read to their last line); returns the last line."""
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("connection closed")
        if len(line) < 4 or line[3:4] != b"-":
            return line


async def _expect(reader: asyncio.StreamReader, code: bytes) -> None:
    line = await _reply(reader)
    if not line.startswith(code):
        raise RuntimeError(f"expected {code!r}, got {line!r}")


async def _paced(
    port: int, raw: bytes, rcpts: list[str], rate: float, messages: int, sessions: int
) -> tuple[list[float], float]:
    per_session = messages // sessions
    interval = sessions / rate  # each session sends every `interval` seconds
    lat: list[float] = []
    start = time.perf_counter() + 0.5

    async def session(k: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        await _expect(reader, b"220")
        writer.write(b"EHLO bench.example\r\n")
        await _expect(reader, b"250")
        mail = f"MAIL FROM:<{SENDER}>\r\n".encode()
        rcpt_lines = [f"RCPT TO:<{r}>\r\n".encode() for r in rcpts]
        for j in range(per_session):
            due = start + (k / sessions + j) * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            t0 = time.perf_counter()
            writer.write(mail)  # no pipelining, as smtp-source and most clients
            await _expect(reader, b"250")
            for line in rcpt_lines:
                writer.write(line)
                await _expect(reader, b"250")
            writer.write(b"DATA\r\n")
            await _expect(reader, b"354")
            # a Message-ID of its own: the same bytes again would be a retry to the relay
            writer.write(raw.replace(b"<bench-", b"<bench-%d-%d-" % (k, j), 1))
            await _expect(reader, b"250")
            lat.append(time.perf_counter() - t0)
        writer.write(b"QUIT\r\n")
        with contextlib.suppress(Exception):
            await _reply(reader)
        writer.close()

    await asyncio.gather(*(session(k) for k in range(sessions)))
    return lat, time.perf_counter() - start


def paced(
    port: int, kind: str, size: int, rcpts: int, rate: float, messages: int, sessions: int = 20
) -> dict[str, float]:
    """Send at ``rate`` msg/s in total over ``sessions`` connections; latency of MAIL FROM
    to the 250 after DATA, in ms (the first 5 % are warm-up and not counted)."""
    lat, took = asyncio.run(
        _paced(port, wire_bytes(kind, size), envelope(kind, rcpts), rate, messages, sessions)
    )
    ms = sorted(x * 1000 for x in lat[len(lat) // 20 :])

    def q(p: float) -> float:
        return round(ms[min(len(ms) - 1, int(p * len(ms)))], 2)

    return {
        "rate_asked": round(rate, 1),
        "rate_done": round(len(lat) / took, 1),
        "p50_ms": q(0.50),
        "p99_ms": q(0.99),
        "max_ms": round(ms[-1], 2),
    }
