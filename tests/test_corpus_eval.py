"""bench/evaluate_corpus.py: the helpers it relies on, and a quick run over corpus samples."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from leakguard.engine import Engine
from leakguard.policy import load_policy
from leakguard.policy.loader import load_organization

ROOT = Path(__file__).resolve().parents[1]


def _load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "evaluate_corpus", ROOT / "bench" / "evaluate_corpus.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["evaluate_corpus"] = mod
    spec.loader.exec_module(mod)
    return mod


ev = _load_bench()


@pytest.mark.parametrize(
    ("x_from", "name"),
    [
        ("John Q Public", "John Q Public"),
        ("John Q Public/HOU/ECT@ECT", "John Q Public"),
        ("Public, John </O=ENRON/OU=NA/CN=RECIPIENTS/CN=JPUBLIC>", "John Public"),
        ('"Public, John" <john.public@example.com>', "John Public"),
        ("john.public@example.com", ""),
        ("Public", ""),  # one word is not a person's full name
        ("=?utf-8?q?x?=", ""),
    ],
)
def test_clean_person_name(x_from: str, name: str) -> None:
    assert ev.clean_person_name(x_from) == name


def test_from_address_and_internal() -> None:
    raw = b"From: Someone <Some.One@Sub.Example.com>\nTo: a@b.example\n\nbody\n"
    assert ev.from_address(raw) == "some.one@sub.example.com"
    assert ev.from_address(b"Subject: none\n\nbody\n") == ""
    pats = ("example.com", "*.example.com")
    assert ev.is_internal("some.one@sub.example.com", pats)
    assert ev.is_internal("x@example.com", pats)
    assert not ev.is_internal("x@example.com.evil.test", pats)
    assert not ev.is_internal("no-domain", pats)


def test_generated_organization_loads(tmp_path: Path) -> None:
    mails = []
    for i, (frm, xfrom) in enumerate(
        [
            ("ann.lee@example.com", "Ann Lee"),
            ("ann.lee@example.com", "Lee, Ann"),
            ("ann.lee@example.com", "Ann Lee/HOU/ECT@ECT"),
            ("bob@outside.test", "Bob Outsider"),  # not internal: not in the directory
        ]
    ):
        p = tmp_path / f"m{i}"
        p.write_bytes(f"From: {frm}\nX-From: {xfrom}\nTo: x@y.test\n\nhi\n".encode())
        mails.append(p)
    pats = ("example.com", "*.example.com")
    directory = ev.build_directory(mails, pats)
    assert directory == {"ann.lee@example.com": "Ann Lee"}
    org_path = ev.write_organization(tmp_path / "out", pats, directory)
    org, files = load_organization(org_path)
    assert org.is_internal_domain("mail.example.com")
    assert not org.is_internal_domain("example.net")
    person = org.person("ann.lee@example.com")
    assert person is not None and person.name == "Ann Lee"
    assert len(files) == 2  # the organisation file and its directory


def test_forwarded_bounce_to_internal_help_desk_passes() -> None:
    bounce = (
        b"From: MAILER-DAEMON@mx.outside.test\r\nTo: kazuya.sato@city.example.lg.jp\r\n"
        b"Subject: Undelivered Mail\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nFailed: someone@partner.test, other@third.test\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: kazuya.sato@city.example.lg.jp\r\nTo: someone@partner.test\r\n"
        b"Cc: other@third.test\r\nSubject: hello\r\n\r\nbody\r\n--b--\r\n"
    )
    engine = Engine(load_policy(ROOT / "policies" / "default.yaml"))
    for fwd in (ev.forward_as_attachment, ev.forward_inline):
        d = engine.decide(fwd(bounce), envelope_from=ev.USER, rcpts=[ev.HELPDESK])
        assert d.verdict.action.value == "pass", d.verdict.rule_ids
    # the same forward to an outsider carries third parties: the wrapper really forwards
    d = engine.decide(
        ev.forward_as_attachment(bounce), envelope_from=ev.USER, rcpts=["desk@vendor.test"]
    )
    assert d.message.attached_messages
    assert d.verdict.facts.get("quoted_third_party_addresses", 0) >= 1


@pytest.mark.corpus
def test_sisimai_sample_parses_and_forward_passes(corpora_dir: Path) -> None:
    files = ev.bounce_files(corpora_dir)
    assert len(files) > 100
    sample = files[:: max(1, len(files) // 80)]
    engine = Engine(load_policy(ROOT / "policies" / "default.yaml"))
    res = ev.check_bounces(sample, engine, corpora_dir)
    assert res.parse_failures == []
    assert res.not_pass == []
    assert res.with_attached_message > 0


@pytest.mark.corpus
def test_enron_sample_runs_without_errors(corpora_dir: Path, tmp_path: Path) -> None:
    root = corpora_dir / "enron-subset"
    files = sorted(
        p for p in (root / "edgar427-team22introtoai" / "maildir").glob("*/inbox/*") if p.is_file()
    )[:300]
    pats = ev.INTERNAL
    org = ev.write_organization(tmp_path, pats, ev.build_directory(files, pats))
    ev._init_worker(str(ROOT / "policies" / "default.yaml"), str(org))
    seen = 0
    for f in files:
        sender = ev.from_address(f.read_bytes())
        if not ev.is_internal(sender, pats):
            continue
        res = ev._decide((str(f), str(f.relative_to(root)), sender))
        assert "error" not in res, res.get("error")
        assert res["action"] in {"pass", "bcc", "delay", "hold", "reject"}
        seen += 1
    assert seen > 20
