"""A real Postfix for the tests: its own config, queue and data directories, loopback ports.

Started with ``postfix -c DIR start`` as root (the Debian package's ``mail_owner`` postfix
and ``setgid_group`` postdrop), stopped with ``postfix -c DIR stop`` at the end; the master
process is then checked to be gone (and killed if it is not), so no daemon stays behind.
The snippets under ``deploy/postfix/`` are appended as they are, with the ports replaced:
the tests check the recipes the documentation gives.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SNIPPETS = ROOT / "deploy" / "postfix"
POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"


def why_postfix_cannot_run() -> str | None:
    """The reason this machine cannot run a private Postfix, or None when it can."""
    if not Path(POSTFIX).exists():
        return "Postfix is not installed (Debian package 'postfix'; .ci/run installs it)"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root (its master drops to mail_owner)"
    try:
        import pwd

        pwd.getpwnam("postfix")
    except KeyError:
        return "the 'postfix' user is missing (the Debian package creates it)"
    return None


# Postfix's daemons, without chroot (the queue is under /tmp) and with logging to a file.
_MASTER_CF = """\
{smtpd_listen} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.leakguard.test
mydomain = leakguard.test
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtp_dns_support_level = disabled
maillog_file = {maillog}
maillog_file_prefixes = /tmp, /var
biff = no
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
"""


class Postfix:
    """One private Postfix instance; ``port`` is its public smtpd on 127.0.0.1."""

    def __init__(self, port: int, *, relayhost: str | None = None) -> None:
        # not under pytest's 0700 tmp dir: Postfix's daemons must reach the queue
        self.base = Path(tempfile.mkdtemp(prefix="lg-postfix-", dir="/tmp"))
        self.base.chmod(0o755)
        self.conf = self.base / "etc"
        self.queue = self.base / "spool"
        self.data = self.base / "lib"
        self.maillog = self.base / "maillog"
        for d in (self.conf, self.queue, self.data):
            d.mkdir(mode=0o755)
        shutil.chown(self.data, "postfix", "postfix")
        self.port = port
        main = _MAIN_CF.format(queue=self.queue, data=self.data, maillog=self.maillog)
        if relayhost:
            main += f"relayhost = {relayhost}\n"
        (self.conf / "main.cf").write_text(main, "ascii")
        (self.conf / "master.cf").write_text(
            _MASTER_CF.format(smtpd_listen=f"127.0.0.1:{port}"), "ascii"
        )
        self.master_pid: int | None = None

    def add_snippet(self, name: str, replace: dict[str, str]) -> str:
        """Append ``deploy/postfix/<name>`` (``*-main.cf`` or ``*-master.cf``), ports replaced."""
        text = (SNIPPETS / name).read_text("utf-8")
        for old, new in replace.items():
            assert old in text, f"{old!r} not in {name}: the recipe changed"
            text = text.replace(old, new)
        target = self.conf / ("master.cf" if name.endswith("master.cf") else "main.cf")
        with target.open("a", encoding="utf-8") as f:
            f.write("\n" + text)
        return text

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [POSTFIX, "-c", str(self.conf), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self) -> Postfix:
        check = self._run("check")  # creates the queue's subdirectories with their owners
        if check.returncode != 0:
            raise RuntimeError(f"postfix check failed:\n{check.stdout}{check.stderr}")
        started = self._run("start")
        if started.returncode != 0:
            raise RuntimeError(f"postfix start failed:\n{started.stdout}{started.stderr}")
        pid_file = self.queue / "pid" / "master.pid"
        end = time.monotonic() + 20
        while time.monotonic() < end:
            with contextlib.suppress(OSError, ValueError):
                self.master_pid = int(pid_file.read_text().strip())
                break
            time.sleep(0.1)
        return self

    def log(self) -> str:
        return self.maillog.read_text("utf-8", "replace") if self.maillog.exists() else ""

    def wait_log(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = rx.search(self.log())
            if m:
                return m
            time.sleep(0.2)
        raise AssertionError(f"{pattern!r} not in the Postfix log:\n{self.log()[-4000:]}")

    def queue_ids(self) -> list[str]:
        """Queue ids still in Postfix's queue (deferred, active, incoming, hold)."""
        ids = []
        for sub in ("incoming", "active", "deferred", "hold"):
            d = self.queue / sub
            if d.is_dir():
                ids += [p.name for p in d.rglob("*") if p.is_file()]
        return ids

    def stop(self) -> None:
        self._run("stop", timeout=30)
        pid = self.master_pid
        if pid is not None:
            end = time.monotonic() + 15
            while time.monotonic() < end and _alive(pid):
                time.sleep(0.1)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)  # master leads its children's group
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> Postfix:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is gone for our purposes
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
