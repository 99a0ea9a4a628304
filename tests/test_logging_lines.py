"""Several worker processes log to one stderr: every event stays one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import sys
from leakguard.logging import configure_logging, get_logger
configure_logging(json=True)
log = get_logger()
for i in range(2000):
    log.info("reloaded", worker=int(sys.argv[1]), i=i, policy="/etc/leakguard/policy.yaml")
"""


def test_concurrent_processes_never_share_a_line(tmp_path: Path) -> None:
    """print() wrote an event and its newline in two writes: two workers logging at the
    same moment gave ``{...}{...}`` on one line, which no log reader can parse (seen in the
    SIGHUP test of ``serve --workers 2``)."""
    out = tmp_path / "log"
    with out.open("wb") as f:
        procs = [
            subprocess.Popen([sys.executable, "-c", _CHILD, str(n)], stderr=f) for n in range(4)
        ]
        for p in procs:
            assert p.wait(timeout=60) == 0
    lines = out.read_bytes().decode().splitlines()
    assert len(lines) == 8000
    events = [json.loads(line) for line in lines]  # raises on a merged line
    assert {e["worker"] for e in events} == {0, 1, 2, 3}
