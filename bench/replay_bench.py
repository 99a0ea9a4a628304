"""Replay throughput: ``leakguard replay`` over a synthetic maildir of sent mail.

Generates ``--mails`` (default 100,000) realistic small mails into a temporary maildir (the
senders of ``policies/directory.csv``; ordinary internal and external mail, replies with
quoted threads, forwards that carry a third party's address, mail to many companies, mail
with a My Number or a bank account, a few with a small CSV attachment), writes a new policy
(``bulk-external`` at 5 instead of 10 groups, ``mixed-organizations`` switched to audit) and
times ``leakguard replay --json --no-progress -j N`` for each ``-j`` asked.

    .venv/bin/python bench/replay_bench.py                 # 100,000 mails, -j 2 and -j 1
    .venv/bin/python bench/replay_bench.py --mails 2000 --jobs 1 2
    .venv/bin/python bench/replay_bench.py --profile       # cProfile of -j 1 on 2,000 mails
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "policies" / "default.yaml"

COMPANIES = [f"company{i:02d}.example" for i in range(1, 40)]
PARTNERS = ["sample-shoji.co.jp", "minami-school.ed.jp", "mirai-kensetsu.co.jp"]
FREEMAIL = ["gmail.com", "yahoo.co.jp", "docomo.ne.jp"]
SURNAMES = ["山本", "中村", "小林", "加藤", "吉田", "山田", "佐々木", "松本", "井上", "木村"]
BODIES = [
    "いつもお世話になっております。\n先日の打ち合わせの件、資料を確認いたしました。\n"
    "来週中にご回答いたしますので、よろしくお願いいたします。",
    "お疲れさまです。\n会議室の予約を変更しました。\n14時からは第二会議室です。",
    "ご担当者様\n\n見積書の件でご連絡いたしました。\n内容をご確認のうえ、ご返信をお願いします。",
    "Hello,\n\nPlease find the schedule for next week below.\nMonday: site visit\n"
    "Tuesday: review meeting\n\nBest regards",
    "各位\n\n来月の定例会は第三木曜日に開催します。\n議題があれば事前にお知らせください。",
]


def _people() -> list[tuple[str, str]]:
    with (ROOT / "policies" / "directory.csv").open(encoding="utf-8") as f:
        return [(r["email"], r["name"]) for r in csv.DictReader(f)]


def _mail(i: int, rnd: random.Random, people: list[tuple[str, str]]) -> bytes:
    sender, name = rnd.choice(people)
    kind = rnd.random()
    to: list[str] = []
    cc: list[str] = []
    body = rnd.choice(BODIES)
    extra = ""
    attachment = ""
    subject = rnd.choice(["打ち合わせの件", "資料送付", "ご確認のお願い", "Schedule", "定例会"])
    if kind < 0.40:  # internal
        to = [rnd.choice(people)[0] for _ in range(rnd.randint(1, 3))]
    elif kind < 0.70:  # one outside party
        d = rnd.choice(COMPANIES + PARTNERS)
        to = [f"{rnd.choice(['info', 'tanaka', 'sales', 'k.ito'])}@{d}"]
        cc = [rnd.choice(people)[0]] if rnd.random() < 0.3 else []
    elif kind < 0.78:  # many companies visible
        n = rnd.randint(6, 14)
        to = [f"info@{d}" for d in rnd.sample(COMPANIES, n)]
        subject = "説明会のご案内"
    elif kind < 0.84:  # two or three companies visible
        to = [f"info@{d}" for d in rnd.sample(COMPANIES, rnd.randint(2, 3))]
    elif kind < 0.90:  # forward with a third party's address
        to = [f"tanaka@{rnd.choice(COMPANIES)}"]
        third = f"{rnd.choice(['yamada', 'kimura', 'ito'])}{i % 97}@{rnd.choice(FREEMAIL)}"
        extra = (
            "\n\n-------- Forwarded Message --------\n"
            f"From: {rnd.choice(SURNAMES)} <{third}>\nTo: {sender}\n"
            "Subject: 問い合わせ\n\n申請の件でお問い合わせします。\n"
        )
        subject = "Fwd: 問い合わせ"
    elif kind < 0.95:  # personal data
        to = [f"k.ito@{rnd.choice(COMPANIES)}"]
        if rnd.random() < 0.5:
            extra = "\n\n個人番号: 1234 5678 9018\n氏名: 山田 太郎\n"
        else:
            extra = "\n\n振込先: 三井住友銀行 本店営業部 普通 1234567\n口座名義: ヤマダ タロウ\n"
        subject = "申請書類の件"
    else:  # reply with a CSV attachment
        to = [f"sales@{rnd.choice(COMPANIES)}"]
        rows = "氏名,電話\n" + "\n".join(
            f"{rnd.choice(SURNAMES)},03-1234-{i % 10000:04d}" for _ in range(5)
        )
        attachment = base64.encodebytes(rows.encode("utf-8")).decode("ascii")
        subject = "名簿送付"
    headers = (
        f"Return-Path: <{sender}>\n"
        f"From: {name} <{sender}>\n"
        f"To: {', '.join(to)}\n"
        + (f"Cc: {', '.join(cc)}\n" if cc else "")
        + f"Subject: {subject}\n"
        f"Date: Mon, 2 Nov 2026 09:{i % 60:02d}:00 +0900\n"
        f"Message-ID: <bench-{i}@city.example.lg.jp>\nMIME-Version: 1.0\n"
    )
    text = f"{body}{extra}\n\n{name}\n"
    if not attachment:
        return (
            headers + "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        ).encode() + text.encode("utf-8")
    b = f"b{i}"
    return (
        headers
        + f'Content-Type: multipart/mixed; boundary="{b}"\n\n--{b}\n'
        + "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        + text
        + f'\n--{b}\nContent-Type: text/csv; name="list.csv"\n'
        + 'Content-Disposition: attachment; filename="list.csv"\n'
        + f"Content-Transfer-Encoding: base64\n\n{attachment}\n--{b}--\n"
    ).encode("utf-8")


def make_maildir(root: Path, n: int, seed: int = 9) -> Path:
    md = root / "Sent"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    people = _people()
    for i in range(n):
        (md / "cur" / f"{1700000000 + i}.{i}.bench:2,S").write_bytes(_mail(i, rnd, people))
    return md


def new_policy(root: Path) -> Path:
    text = POLICY.read_text(encoding="utf-8")
    text = text.replace(
        "when: {visible_external_groups: {gte: 10}}", "when: {visible_external_groups: {gte: 5}}"
    )
    text = text.replace(
        "    action: hold\n    offer_bcc: true\n",
        "    action: hold\n    mode: audit\n    offer_bcc: true\n",
        1,
    )
    text = text.replace(
        "organization: organization.yaml",
        f"organization: {ROOT / 'policies' / 'organization.yaml'}",
    )
    out = root / "new.yaml"
    out.write_text(text, encoding="utf-8")
    return out


def run(md: Path, policy: Path, jobs: int) -> tuple[float, dict[str, object]]:
    cmd = [sys.executable, "-m", "leakguard", "replay", "--json", "--no-progress"]
    cmd += ["-j", str(jobs), "--policy", str(policy), "--baseline", str(POLICY), str(md)]
    start = time.monotonic()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.monotonic() - start, json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mails", type=int, default=100_000)
    ap.add_argument("--jobs", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    ap.add_argument("--profile", action="store_true", help="cProfile -j 1 in this process")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        n = 2000 if args.profile and args.mails == 100_000 else args.mails
        t0 = time.monotonic()
        md = make_maildir(root, n)
        print(f"generated {n} mails in {time.monotonic() - t0:.1f} s ({md})", flush=True)
        policy = new_policy(root)
        if args.profile:
            return _profile(md, policy)
        for j in args.jobs:
            seconds, report = run(md, policy, j)
            totals = report["totals"]
            print(
                f"-j {j}: {n} mails in {seconds:.1f} s = {n / seconds:.0f} mails/s "
                f"(totals {json.dumps(totals)}; transitions {json.dumps(report['transitions'])})",
                flush=True,
            )
    return 0


def _profile(md: Path, policy: Path) -> int:
    import cProfile
    import pstats

    from leakguard.officer.replay import ReplaySettings, run_replay
    from leakguard.officer.replay_report import Aggregator
    from leakguard.officer.replay_sources import open_source

    agg = Aggregator()
    settings = ReplaySettings(policy=str(policy), baseline=str(POLICY))
    prof = cProfile.Profile()
    prof.enable()
    run_replay([open_source(md)], settings, agg.add, jobs=1)
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(35)
    print(json.dumps(agg.report()["totals"]))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LEAKGUARD_LANG", "en")
    sys.exit(main())
