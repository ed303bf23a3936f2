#!/usr/bin/env python3
"""Writes fixtures/backup/: a sequence of Gitcord databases (v1..v4) changed the way the bot
changes them, with their audit logs and `sqlite3 .dump`s, for the backup tests.

Nothing of Gitcord is copied: ``ghdcbot.adapters.storage.sqlite.SqliteStorage`` is imported at
run time from a Gitcord checkout ($GITCORD_SRC, or --gitcord), and every change but one is one
of its own methods:

* v1: ``init_schema``; 600 contributions (``record_contributions``: three rowid ranges);
  scores of one period (``upsert_scores``); the cursor (``set_cursor``); four identity claims
  (``create_identity_claim``, one already expired), two verified (``mark_identity_verified``);
  three issue requests (``insert_issue_request``); five notifications
  (``mark_notification_sent``); three audit events (``append_audit_event``).
* v2 (inserts and updates): 40 more contributions; the same period's scores upserted with new
  points and a new period added; an issue request resolved (``update_issue_request_status``);
  a notification replaced (``INSERT OR REPLACE`` of an existing dedupe key); a claim verified;
  the cursor moved; two audit events.
* v3 (deletes): a new claim on the GitHub login whose claim expired (Gitcord DELETEs the
  expired row), a verified identity unlinked (``unlink_identity``), a new pending claim.
* v4: an old contribution changed in place. Gitcord never does this; it is done with plain
  SQL to prove the backup never assumes the table is append-only.

Each step's database is copied to fixtures/backup/vN.db, its audit log to
vN.audit_events.jsonl and its dump (``sqlite3 vN.db .dump``) to vN.dump.

    GITCORD_SRC=/work/gitcord-src PYTHONPATH=/work/gitcord-src/src \\
        /work/venv-gitcord/bin/python scripts/gen-backup-fixtures.py
"""
from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gitcord", default=os.environ.get("GITCORD_SRC"))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "fixtures/backup"))
    args = ap.parse_args()
    if not args.gitcord:
        print("set GITCORD_SRC or pass --gitcord", file=sys.stderr)
        return 2
    sys.path.insert(0, str(Path(args.gitcord) / "src"))
    from ghdcbot.adapters.storage.sqlite import SqliteStorage
    from ghdcbot.core.models import ContributionEvent, Score

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gitcord-backup-fixtures-"))
    s = SqliteStorage(str(work))
    s.init_schema()
    # Inside the 30-day window of the snapshots the tests take (2024-01-31T12:00 + n hours),
    # so contributors.json is not empty.
    base = datetime(2024, 1, 2, tzinfo=timezone.utc)

    def contributions(start: int, n: int) -> int:
        events = [
            ContributionEvent(
                github_user=f"user-{i % 7}",
                event_type=["pr_merged", "pr_opened", "issue_opened", "comment"][i % 4],
                repo=f"org/repo-{i % 3}",
                created_at=base + timedelta(hours=i),
                payload={"number": i, "title": f"change {i} \u00e9", "labels": ["easy"] if i % 5 == 0 else []},
            )
            for i in range(start, start + n)
        ]
        return s.record_contributions(events)

    def scores(period_end: datetime, bump: int) -> None:
        start = period_end - timedelta(days=30)
        s.upsert_scores([Score(f"user-{u}", start, period_end, 10 * u + bump) for u in range(7)])

    def notify(key: str, n: int) -> None:
        event = ContributionEvent(f"user-{n % 7}", "pr_merged", "org/repo-0", base, {"pr_number": n})
        s.mark_notification_sent(key, event, f"2000{n}", "300" if n % 2 else None)

    def audit(what: str) -> None:
        s.append_audit_event({"actor_type": "system", "actor_id": "fixture", "event_type": what, "context": {}})

    def save(version: str) -> None:
        db = out / f"{version}.db"
        db.unlink(missing_ok=True)
        src = sqlite3.connect(work / "state.db")
        dst = sqlite3.connect(db)
        src.backup(dst)
        dst.close()
        src.close()
        shutil.copyfile(work / "audit_events.jsonl", out / f"{version}.audit_events.jsonl")
        dump = subprocess.run(["sqlite3", str(db), ".dump"], check=True, capture_output=True).stdout
        (out / f"{version}.dump").write_bytes(dump)

    now = datetime.now(timezone.utc)
    # v1
    contributions(0, 600)
    scores(base + timedelta(days=30), 0)
    s.set_cursor("github", base + timedelta(days=25))
    for d, g, minutes in [("1001", "Alice", 30), ("1002", "bob", 30), ("1003", "carol", 30), ("1004", "dave", -5)]:
        s.create_identity_claim(d, g, f"CODE{d}", now + timedelta(minutes=minutes))
    s.mark_identity_verified("1001", "Alice")
    s.mark_identity_verified("1002", "bob")
    for i in range(3):
        s.insert_issue_request(f"req-{i}", f"100{i + 1}", f"user-{i}", "org", "repo-0", 10 + i, f"https://github.com/org/repo-0/issues/{10 + i}")
    for n in range(5):
        notify(f"org/repo-0:pr:{n}", n)
    for what in ["bot_started", "run_finished", "identity_claim_created"]:
        audit(what)
    save("v1")
    # v2: inserts and updates
    contributions(600, 40)
    scores(base + timedelta(days=30), 1)
    scores(base + timedelta(days=31), 2)
    s.update_issue_request_status("req-0", "approved")
    notify("org/repo-0:pr:1", 99)
    s.mark_identity_verified("1003", "carol")
    s.set_cursor("github", base + timedelta(days=26))
    audit("run_finished")
    audit("issue_request_approved")
    save("v2")
    # v3: deletes (an expired claim replaced) and an unlink
    s.create_identity_claim("1005", "dave", "CODE1005", now + timedelta(minutes=30))
    s.unlink_identity("1001", cooldown_hours=0)
    s.create_identity_claim("1006", "erin", "CODE1006", now + timedelta(minutes=30))
    audit("identity_unlinked")
    save("v3")
    # v4: an old contribution changed in place (plain SQL: Gitcord never does this)
    conn = sqlite3.connect(work / "state.db")
    conn.execute("UPDATE contributions SET payload_json = '{\"number\":3,\"edited\":true}' WHERE id = 3")
    conn.commit()
    conn.close()
    save("v4")
    shutil.rmtree(work)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
