"""``leakguard replay`` (issue 9): sources, the diff's aggregation, and the command end to end."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from leakguard.officer.replay import ItemResult, ReplaySettings, return_path, run_replay
from leakguard.officer.replay_report import Aggregator, render_text
from leakguard.officer.replay_sources import (
    FileSlice,
    FilesSource,
    MboxSource,
    Outcome,
    ReplayItem,
    index_mbox,
    open_source,
)

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples"
POLICY = ROOT / "policies" / "default.yaml"

MAILDIR_MAILS = [
    "bulk-to-12-companies-ja.eml",  # bcc under both
    "mixed-organizations-en.eml",  # hold -> pass (mixed-organizations now audit)
    "mailing-list-ja.eml",
    "internal-only-many-ja.eml",
    "forward-third-party-gmail-en.eml",
    "lookalike-homoglyph-en.eml",
]
MBOX_MAILS = [
    "freemail-parents-to-ja.eml",  # hold -> bcc (six groups: bulk-external now at 5)
    "one-organization-several-people-ja.eml",
    "reply-all-existing-thread-en.eml",
]
STRANGER = "temp.staff@city.example.lg.jp"  # a sender not in the directory


# --------------------------------------------------------------------------- fixtures


def new_policy(tmp: Path) -> Path:
    """The default policy with bulk-external at 5 groups and mixed-organizations in audit."""
    text = POLICY.read_text(encoding="utf-8")
    bulk = "when: {visible_external_groups: {gte: 10}}"
    assert text.count(bulk) == 1
    text = text.replace(bulk, "when: {visible_external_groups: {gte: 5}}")
    mixed = "    action: hold\n    offer_bcc: true\n"
    assert text.count(mixed) == 1
    text = text.replace(mixed, "    action: hold\n    mode: audit\n    offer_bcc: true\n")
    text = text.replace(
        "organization: organization.yaml", f"organization: {POLICY.parent}/organization.yaml"
    )
    text = text.split("\ntests:")[0] + "\n"  # its sample mails are relative to policies/
    out = tmp / "new.yaml"
    out.write_text(text, encoding="utf-8")
    return out


def make_maildir(tmp: Path) -> Path:
    md = tmp / "Sent"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    for i, name in enumerate(MAILDIR_MAILS):
        sub = "new" if i == 0 else "cur"
        (md / sub / f"17000000{i:02d}.{name}:2,S").write_bytes((EX / name).read_bytes())
    (md / "cur" / "1700000098.broken:2,S").write_bytes(b"\x00\x01\x02 PK\x03\x04 garbage\xff" * 20)
    (md / "cur" / "1700000099.empty:2,S").write_bytes(b"")
    # an unfinished delivery is not replayed
    (md / "tmp" / "1700000100.partial").write_bytes((EX / MAILDIR_MAILS[1]).read_bytes())
    return md


def make_mbox(tmp: Path) -> Path:
    parts = []
    for name in MBOX_MAILS:
        raw = (EX / name).read_bytes().replace(b"\r\n", b"\n")
        raw = raw.replace(b"\nFrom ", b"\n>From ")  # mboxrd quoting (none in these mails)
        parts.append(
            b"From sender@example Mon Nov  2 09:00:00 2026\n" + raw.rstrip(b"\n") + b"\n\n"
        )
    # the mixed-organisations mail again, from someone the directory does not know, with a
    # Return-Path (the envelope sender) and a body line that mboxrd quotes
    raw = (EX / "mixed-organizations-en.eml").read_bytes().replace(b"\r\n", b"\n")
    raw = raw.replace(b"emily.clark@city.example.lg.jp", b"someone@city.example.lg.jp")
    raw = f"Return-Path: <{STRANGER}>\n".encode() + raw.rstrip(b"\n") + b"\n\nFrom the office\n"
    parts.append(
        b"From x Mon Nov  2 09:00:00 2026\n" + raw.replace(b"\nFrom ", b"\n>From ") + b"\n"
    )
    mbox = tmp / "sent.mbox"
    mbox.write_bytes(b"".join(parts))
    return mbox


def replay(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = {**os.environ, "LEAKGUARD_LANG": "en", "LEAKGUARD_CONFIG": ""}
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "leakguard", "replay", *args],
        capture_output=True,
        text=True,
        env=e,
        timeout=120,
        cwd=ROOT,
    )


# --------------------------------------------------------------------------- sources


def test_mbox_index_and_unquote(tmp_path: Path) -> None:
    mbox = tmp_path / "m.mbox"
    one = (
        b"From a@x Mon Nov  2 09:00:00 2026\nSubject: one\n\nbody\n>From the start\n"
        b"From here, not a separator\n\n"
    )
    two = b"From b@x Mon Nov  2 09:01:00 2026\r\nSubject: two\r\n\r\n>>From quoted twice\r\n"
    mbox.write_bytes(one + two)
    offsets, lengths = index_mbox(mbox)
    assert list(offsets) == [0, len(one)] and list(lengths) == [len(one), len(two)]
    items = list(MboxSource(mbox).items())
    first = items[0].locator.read()
    assert first.startswith(b"Subject: one\n") and b"\nFrom the start\n" in first
    assert b"From here, not a separator" in first
    assert items[1].locator.read() == b"Subject: two\r\n\r\n>From quoted twice\r\n"
    assert isinstance(open_source(mbox), MboxSource)


def test_maildir_lists_cur_and_new_not_tmp(tmp_path: Path) -> None:
    md = make_maildir(tmp_path)
    src = open_source(md)
    assert isinstance(src, FilesSource)
    refs = [i.ref for i in src.items()]
    assert src.count() == len(refs) == len(MAILDIR_MAILS) + 2
    assert all(r.startswith(("cur/", "new/")) for r in refs)
    assert not any("partial" in r for r in refs)


def test_return_path() -> None:
    assert return_path(b"Return-Path: <a@b.example>\nFrom: c@d\n\n") == "a@b.example"
    assert return_path(b"Return-Path: <>\nFrom: c@d\n\n") is None
    assert return_path(b"From: c@d\n\nReturn-Path: <x@y>\n") is None  # in the body


# --------------------------------------------------------------------------- aggregation


def _r(
    seq: int, old: Outcome, new: Outcome, sender: str = "a@x", dept: str = "総務課"
) -> ItemResult:
    return ItemResult(seq, f"m{seq}", sender, dept, old, new, subject=f"s{seq}")


def test_aggregation_counts_and_examples_do_not_depend_on_order() -> None:
    hold = Outcome("hold", ("mixed",))
    audit = Outcome("pass", (), ("mixed",))
    bcc = Outcome("bcc", ("bulk",), ("mixed",))
    same = Outcome("pass")
    results = [
        _r(0, hold, audit),
        _r(1, hold, bcc, sender="b@x"),
        _r(2, same, same, dept="(unknown)"),
        _r(3, hold, audit, sender="b@x", dept="(unknown)"),
        _r(4, hold, audit, sender="b@x"),
        _r(5, hold, audit),
        ItemResult(6, "broken", error="not_mail"),
    ]
    reports = []
    for order in (results, list(reversed(results))):
        agg = Aggregator(examples=2, top=1)
        for r in order:
            agg.add(r)
        reports.append(agg.report())
    rep = reports[0]
    assert rep == reports[1]
    assert rep["totals"] == {
        "mails": 7,
        "decided": 6,
        "changed": 5,
        "action_changed": 5,
        "errors": 1,
        "no_baseline": 0,
    }
    assert rep["transitions"] == {"hold->bcc": 1, "hold->pass": 4}
    assert rep["actions"] == {"old": {"pass": 1, "hold": 5}, "new": {"pass": 5, "bcc": 1}}
    assert rep["rules"]["mixed"]["enforce"] == {"newly": 0, "no_longer": 5}
    assert rep["rules"]["mixed"]["audit"] == {"newly": 5, "no_longer": 0}
    assert rep["rules"]["bulk"]["enforce"] == {"newly": 1, "no_longer": 0}
    assert [e["file"] for e in rep["rules"]["mixed"]["examples"]] == ["m0", "m1"]
    assert list(rep["departments"]) == ["総務課", "(unknown)"]
    assert rep["departments"]["総務課"] == {
        "mails": 4,
        "changed": 4,
        "transitions": {"hold->bcc": 1, "hold->pass": 3},
    }
    assert rep["departments"]["(unknown)"]["changed"] == 1
    assert rep["senders"] == [
        {
            "sender": "b@x",
            "department": "総務課",
            "mails": 3,
            "changed": 3,
            "transitions": {"hold->bcc": 1, "hold->pass": 2},
        }
    ]
    assert rep["errors"] == [{"file": "broken", "error": "not_mail", "detail": ""}]


def test_rule_change_without_action_change() -> None:
    agg = Aggregator()
    agg.add(_r(0, Outcome("hold", ("a",)), Outcome("hold", ("a", "b"))))
    rep = agg.report()
    assert rep["totals"]["changed"] == 1 and rep["totals"]["action_changed"] == 0
    assert rep["transitions"] == {}
    assert rep["rules"] == {
        "b": {
            "enforce": {"newly": 1, "no_longer": 0},
            "audit": {"newly": 0, "no_longer": 0},
            "examples": [
                {
                    "file": "m0",
                    "sender": "a@x",
                    "subject": "s0",
                    "old": {"action": "hold", "rules": ["a"], "audit_rules": []},
                    "new": {"action": "hold", "rules": ["a", "b"], "audit_rules": []},
                    "changes": ["enforce.newly"],
                }
            ],
        }
    }


def test_text_report_in_both_languages() -> None:
    import io

    agg = Aggregator()
    agg.add(_r(0, Outcome("hold", ("mixed",)), Outcome("pass", (), ("mixed",)), dept="(unknown)"))
    agg.add(ItemResult(1, "cur/x", error="timeout", detail="60 s"))
    for lang, words in (
        ("en", ["hold->pass: 1", "mixed: enforce +0/-1, audit +1/-0", "(unknown)", "not decided"]),
        ("ja", ["hold->pass: 1", "実施 +0/-1、監査 +1/-0", "(不明)", "制限時間内に判定できません"]),
    ):
        out = io.StringIO()
        render_text(agg.report(), lang, out)
        for w in words:
            assert w in out.getvalue(), (lang, w, out.getvalue())


# --------------------------------------------------------------------------- end to end

EXPECTED_RULES = {
    "bulk-external": {
        "enforce": {"newly": 1, "no_longer": 0},
        "audit": {"newly": 0, "no_longer": 0},
    },
    "mixed-organizations": {
        "enforce": {"newly": 0, "no_longer": 3},
        "audit": {"newly": 3, "no_longer": 0},
    },
}


def test_e2e_replay_maildir_and_mbox_gives_the_expected_diff(tmp_path: Path) -> None:
    md, mbox, policy = make_maildir(tmp_path), make_mbox(tmp_path), new_policy(tmp_path)
    changed = tmp_path / "changed.jsonl"
    p = replay(
        "--policy", str(policy), "--baseline", str(POLICY), "-j", "2", "--json",
        "--changed", str(changed), str(md), str(mbox),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    n = len(MAILDIR_MAILS) + 2 + len(MBOX_MAILS) + 1
    assert rep["totals"] == {
        "mails": n,
        "decided": n - 2,
        "changed": 3,
        "action_changed": 3,
        "errors": 2,
        "no_baseline": 0,
    }
    assert rep["transitions"] == {"hold->bcc": 1, "hold->pass": 2}
    assert {k: {m: v[m] for m in ("enforce", "audit")} for k, v in rep["rules"].items()} == (
        EXPECTED_RULES
    )
    [bulk] = rep["rules"]["bulk-external"]["examples"]
    assert bulk["file"].startswith("sent.mbox@") and bulk["changes"] == ["enforce.newly"]
    assert bulk["old"] == {"action": "hold", "rules": ["mixed-organizations"], "audit_rules": []}
    assert bulk["new"] == {
        "action": "bcc",
        "rules": ["bulk-external"],
        "audit_rules": ["mixed-organizations"],
    }
    mixed = rep["rules"]["mixed-organizations"]["examples"]
    assert [e["file"] for e in mixed] == [
        "cur/1700000001.mixed-organizations-en.eml:2,S",
        bulk["file"],
        mixed[2]["file"],
    ]
    assert mixed[2]["file"].startswith("sent.mbox@") and mixed[2]["sender"] == STRANGER
    assert mixed[0]["new"] == {
        "action": "pass",
        "rules": [],
        "audit_rules": ["mixed-organizations"],
    }
    assert mixed[0]["changes"] == ["enforce.no_longer", "audit.newly"]
    assert rep["departments"]["子育て支援課"]["transitions"] == {"hold->bcc": 1}
    assert rep["departments"]["国際交流課"]["transitions"] == {"hold->pass": 1}
    assert rep["departments"]["(unknown)"] == {
        "mails": 1,
        "changed": 1,
        "transitions": {"hold->pass": 1},
    }
    assert list(rep["departments"])[-1] == "(unknown)"
    assert [(s["sender"], s["department"], s["changed"]) for s in rep["senders"]] == [
        ("emily.clark@city.example.lg.jp", "国際交流課", 1),
        (STRANGER, "(unknown)", 1),
        ("yuki.ono@city.example.lg.jp", "子育て支援課", 1),
    ]
    assert sorted((e["file"], e["error"]) for e in rep["errors"]) == [
        ("cur/1700000098.broken:2,S", "not_mail"),
        ("cur/1700000099.empty:2,S", "empty"),
    ]
    lines = [json.loads(x) for x in changed.read_text(encoding="utf-8").splitlines()]
    assert sorted(x["file"] for x in lines) == sorted(e["file"] for e in mixed)
    # no TTY: no bar, one final line with the count and the rate
    assert "\r" not in p.stderr
    assert f"replayed {n} mails in" in p.stderr and "mails/s, 2 processes" in p.stderr


def test_e2e_one_process_same_diff_and_fail_on_change(tmp_path: Path) -> None:
    mbox, policy = make_mbox(tmp_path), new_policy(tmp_path)
    p = replay("--policy", str(policy), "--baseline", str(POLICY), "-j", "1", "--json", str(mbox))
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["totals"]["mails"] == 4
    assert rep["transitions"] == {"hold->bcc": 1, "hold->pass": 1}
    gate = replay("--policy", str(policy), "--baseline", str(POLICY), "-j", "1",
                  "--fail-on-change", "--no-progress", str(mbox))  # fmt: skip
    assert gate.returncode == 3, gate.stderr
    assert "hold->bcc: 1" in gate.stdout and "bulk-external" in gate.stdout
    same = replay("--policy", str(POLICY), "--baseline", str(POLICY), "-j", "1",
                  "--fail-on-change", str(EX / "mixed-organizations-en.eml"))  # fmt: skip
    assert same.returncode == 0, same.stderr


def test_e2e_japanese_output_and_bad_policy(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules: [{id: x, when: {nope: 1}, action: hold}]\n", "utf-8")
    p = replay("--policy", str(bad), str(EX / "mailing-list-ja.eml"), env={"LEAKGUARD_LANG": "ja"})
    assert (
        p.returncode == 2
        and "新しいのポリシー" not in p.stderr
        and "ポリシーが不正です" in p.stderr
    )
    p = replay("--policy", str(new_policy(tmp_path)), "--baseline", str(POLICY), "-j", "1",
               str(EX / "mixed-organizations-en.eml"), env={"LEAKGUARD_LANG": "ja"})  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "動作の変化" in p.stdout and "hold->pass: 1" in p.stdout and "国際交流課" in p.stdout
    assert "1 通を" in p.stderr


def test_progress_bar_on_a_tty(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        p = subprocess.run(
            [sys.executable, "-m", "leakguard", "replay", "--policy", str(POLICY), "--baseline",
             str(POLICY), "-j", "1", str(make_mbox(tmp_path))],
            stdout=subprocess.PIPE, stderr=slave, text=True, timeout=120, cwd=ROOT,
            env={**os.environ, "LEAKGUARD_LANG": "en", "LEAKGUARD_CONFIG": ""},
        )  # fmt: skip
        os.close(slave)
        slave = -1
        err = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert p.returncode == 0
    text = err.decode("utf-8", "replace")
    assert "replay: 100%" in text and "4/4" in text, text
    assert "replayed 4 mails" not in text  # the bar said it


# --------------------------------------------------------------------------- a worker that dies


class _DieLocator:
    """Kills the worker process that reads it (a crashing parser, the OOM killer)."""

    def read(self) -> bytes:
        os._exit(1)


def test_a_dying_worker_costs_only_its_mail(tmp_path: Path) -> None:
    class Source:
        name = "test"

        def count(self) -> int:
            return 5

        def items(self):  # type: ignore[no-untyped-def]
            for i in range(5):
                if i == 2:
                    yield ReplayItem("die", _DieLocator())
                else:
                    yield ReplayItem(f"ok{i}", FileSlice(str(EX / "mailing-list-ja.eml")))

    results: list[ItemResult] = []
    settings = ReplaySettings(policy=str(POLICY), baseline=str(POLICY))
    run_replay([Source()], settings, results.append, jobs=2, chunk=2)
    by_ref = {r.ref: r for r in results}
    assert len(results) == 5
    assert by_ref["die"].error == "worker_died"
    assert all(by_ref[f"ok{i}"].new == Outcome("pass") for i in (0, 1, 3, 4))


def test_a_mail_over_its_time_budget_is_an_error(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import time

    import leakguard.officer.replay as rp

    real = rp._decide

    def slow(w, seq, item, raw):  # type: ignore[no-untyped-def]
        if item.ref == "slow":
            time.sleep(5)
        return real(w, seq, item, raw)

    monkeypatch.setattr(rp, "_decide", slow)

    class Source:
        name = "test"

        def count(self) -> int:
            return 2

        def items(self):  # type: ignore[no-untyped-def]
            for ref in ("slow", "fast"):
                yield ReplayItem(ref, FileSlice(str(EX / "mailing-list-ja.eml")))

    results: list[ItemResult] = []
    settings = ReplaySettings(policy=str(POLICY), baseline=str(POLICY), timeout=0.3)
    start = time.monotonic()
    run_replay([Source()], settings, results.append, jobs=1)
    assert time.monotonic() - start < 4
    by_ref = {r.ref: r for r in results}
    assert by_ref["slow"].error == "timeout" and by_ref["slow"].detail == "0.3 s"
    assert by_ref["fast"].error == "" and by_ref["fast"].new == Outcome("pass")


def test_detectors_run_once_only_when_the_organisation_is_the_same(tmp_path: Path) -> None:
    from leakguard.officer.replay import load_worker

    policy = new_policy(tmp_path)  # same organisation file, other rules
    w = load_worker(ReplaySettings(policy=str(policy), baseline=str(POLICY)))
    assert w.same_org
    org = tmp_path / "org.yaml"
    org.write_text("internal_domains: [city.example.lg.jp]\n", encoding="utf-8")
    w = load_worker(ReplaySettings(policy=str(policy), baseline=str(POLICY), org=str(org)))
    assert not w.same_org
    w = load_worker(
        ReplaySettings(
            policy=str(policy), baseline=str(POLICY), org=str(org), baseline_org=str(org)
        )
    )
    assert w.same_org


def test_workers_that_cannot_start_stop_the_run(tmp_path: Path) -> None:
    from leakguard.officer.replay import WorkersFailing

    class Source:
        name = "test"

        def count(self) -> int:
            return 3

        def items(self):  # type: ignore[no-untyped-def]
            for i in range(3):
                yield ReplayItem(f"m{i}", FileSlice(str(EX / "mailing-list-ja.eml")))

    results: list[ItemResult] = []
    missing = str(tmp_path / "gone.yaml")  # the workers cannot load it
    with pytest.raises(WorkersFailing):
        run_replay(
            [Source()], ReplaySettings(policy=missing, baseline=None), results.append, jobs=2
        )
    assert len(results) <= 3


def test_text_report_escapes_terminal_controls_from_hostile_mail() -> None:
    import io

    evil = "\x1b]0;owned\x07\x1b[2J\u202egpj.exe\x9b31m"
    agg = Aggregator()
    r = ItemResult(
        0,
        "cur/" + evil,
        "a" + evil + "@x",
        evil,
        Outcome("hold", ("mixed",)),
        Outcome("pass"),
        subject=evil,
    )
    agg.add(r)
    agg.add(ItemResult(1, "new/" + evil, error="timeout", detail=evil))
    for lang in ("ja", "en"):
        out = io.StringIO()
        render_text(agg.report(), lang, out)
        text = out.getvalue()
        assert "\\x1b]0;owned" in text  # shown, escaped
        assert not any(c in text for c in "\x1b\x07\x9b\u202e"), repr(text)
