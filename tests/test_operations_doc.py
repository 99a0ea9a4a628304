"""docs/operations.md documents every audit event the code writes, with every field."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_METHODS = {"info", "warning", "error", "debug", "exception", "critical", "_log", "_warn"}


def events_in_code() -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for f in (ROOT / "leakguard").rglob("*.py"):
        for n in ast.walk(ast.parse(f.read_text("utf-8"))):
            if not (
                isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and n.func.attr in _METHODS
                and n.args
                and isinstance(n.args[0], ast.Constant)
                and isinstance(n.args[0].value, str)
            ):
                continue
            name = n.args[0].value
            if not name.replace(".", "").replace("_", "").isalnum():
                continue  # a stdlib logger's sentence, not an event
            out[name] |= {k.arg for k in n.keywords if k.arg}
    return out


def test_the_scan_finds_the_audit_events() -> None:
    found = events_in_code()
    assert {"message", "hold.resolved", "delivered", "reload_failed"} <= set(found)
    assert {"auth_user", "trusted_client", "sender"} <= found["message"]


def test_every_event_and_field_is_documented() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text("utf-8")
    rows = {
        line.split("|")[1].strip().strip("`"): line
        for line in doc.splitlines()
        if line.startswith("| `")
    }
    for event, fields in sorted(events_in_code().items()):
        assert event in rows, f"docs/operations.md does not document the event {event!r}"
        for field in sorted(fields):
            assert f"`{field}`" in rows[event], f"{event}: field {field!r} undocumented"
