#!/usr/bin/env python3
"""Generate a large Gitcord ``state.db`` for benchmarking ``gitcord-snapshot``.

The schema is Gitcord's, statement for statement (copied from the conformance
databases, so ``sqlite3 DB .schema`` prints the same text), and every value is
written in the format Gitcord's own storage code writes:

* timestamps are ``datetime.isoformat()`` of aware UTC datetimes
  (``2024-12-31T23:59:59+00:00``, ``.ffffff`` only when microseconds != 0);
* ``payload_json`` is compact JSON (``{"pr_number":7,"difficulty_labels":["easy"]}``);
* ``identity_links``: verified 1/0, pending rows carry ``verification_code`` and
  ``expires_at``, unlinked rows carry ``unlinked_at``;
  ``github_user_normalized`` is the lower-cased login;
* ``issue_requests`` statuses pending/approved/cancelled/rejected;
* ``notifications_sent.channel_id`` is sometimes NULL.

The file is a plain rollback-journal database (``journal_mode=delete``), like
Gitcord's. Bulk loading runs with ``journal_mode=OFF`` / ``synchronous=OFF`` in
one transaction; the journal mode is switched back before closing and no
``-journal``/``-wal`` file is left behind.

Output is deterministic for a given ``--seed`` and set of arguments.
A matching Gitcord config YAML and Discord roles JSON are written as well.

Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import time
from pathlib import Path
import uuid
from datetime import datetime, timedelta, timezone

UTC = timezone.utc

# Gitcord's schema: the same file `restore` creates databases from.
SCHEMA_SQL = Path(__file__).resolve().parent.parent / "src" / "maintenance" / "gitcord_schema.sql"

ORG = "my-org"
BATCH = 50_000

# (event_type, cumulative weight)
EVENT_TYPES = (
    ("comment", 0.28),
    ("pr_reviewed", 0.46),
    ("pr_opened", 0.62),
    ("pr_merged", 0.80),
    ("issue_opened", 0.92),
    ("issue_closed", 1.00),
)

# difficulty_labels payloads for pr_merged rows, as compact JSON fragments
# (None = no difficulty_labels key at all). Cumulative weights.
# Matches against the config's difficulty_weights ("Easy", "medium", "HARD")
# are case-insensitive; "unknown"/"bug" never match; 1 is a non-string label.
DIFFICULTY = (
    ('["easy"]', 0.18),
    ('["medium"]', 0.32),
    ('["hard"]', 0.40),
    ('["Easy"]', 0.44),
    ('["MEDIUM"]', 0.48),
    ('["Hard","easy"]', 0.53),
    ('["medium","good first issue"]', 0.58),
    ('["unknown"]', 0.65),
    ('["bug"]', 0.68),
    ("[1,\"hard\"]", 0.70),
    ("[]", 0.75),
    (None, 1.00),
)

REVIEW_STATES = ("APPROVED", "CHANGES_REQUESTED", "COMMENTED")

ROLE_NAMES = (
    "Contributor", "Mentor", "Maintainer", "Bot", "Reviewer", "Core Team", "Rôle spécial",
)


def iso(dt: datetime) -> str:
    """Python's isoformat() of an aware UTC datetime (what Gitcord stores)."""
    return dt.isoformat()


def parse_at(text: str) -> datetime:
    s = text.strip()
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        raise SystemExit(f"--at must carry a UTC offset: {text!r}")
    return dt.astimezone(UTC)


def make_users(rng: random.Random, n: int) -> list[str]:
    users = []
    for i in range(n):
        r = rng.random()
        if r < 0.03:
            users.append(f"Octo-Dev-{i:05d}")  # mixed case: normalized differs
        elif r < 0.035:
            users.append(f"zoë-{i:05d}")  # non-ASCII login
        else:
            users.append(f"user-{i:05d}")
    return users


def make_repos(n: int = 40) -> list[str]:
    repos = [f"repo-{i:02d}" for i in range(n - 2)]
    repos += ["gitcord", "répo-ünïcode"]
    return repos


def discord_id(i: int) -> str:
    # 18-digit snowflake-looking ids, spread like the conformance data.
    return str(100000000000000000 + i * 7919)


def gen_contributions(rng, conn, args, at, users, repos, period_start):
    """Insert args.contributions rows; returns (rows, duplicates)."""
    span_us = args.days * 86_400 * 1_000_000
    nusers = len(users)
    nrepos = len(repos)
    td = timedelta
    rand = rng.random
    randrange = rng.randrange
    ev = EVENT_TYPES
    diff = DIFFICULTY
    states = REVIEW_STATES
    sql = ("INSERT INTO contributions (github_user, event_type, repo, created_at, "
           "payload_json) VALUES (?, ?, ?, ?, ?)")
    total = args.contributions
    dup_rate = args.dup_rate

    # A few rows exactly on the period bounds (inclusive text comparison) and
    # one microsecond before the start (outside the window).
    specials = []
    for k in range(min(3, max(0, total // 10_000))):
        u = users[k % nusers]
        specials.append((u, "pr_merged", repos[0], iso(at),
                         f'{{"pr_number":{900000 + k},"difficulty_labels":["hard"]}}'))
        specials.append((u, "comment", repos[1], iso(period_start),
                         f'{{"issue_number":{900000 + k}}}'))
        specials.append((u, "pr_opened", repos[2], iso(period_start - td(microseconds=1)),
                         f'{{"pr_number":{900000 + k}}}'))

    written = 0
    dups = 0
    batch: list[tuple] = []
    while written < total:
        batch.clear()
        n = min(BATCH, total - written)
        if written == 0:
            batch.extend(specials[:n])
        for _ in range(n - len(batch)):
            if batch and rand() < dup_rate:
                # exact duplicate of an earlier row (same 5 columns)
                batch.append(batch[randrange(len(batch))])
                dups += 1
                continue
            # skewed activity: low user indices are the busy ones
            u = users[int(nusers * rand() ** 2)]
            r = rand()
            for et, w in ev:
                if r < w:
                    break
            repo = repos[int(nrepos * rand() ** 1.5)]
            off = randrange(1, span_us + 1)
            if rand() < 0.6:
                off -= off % 1_000_000  # whole seconds: no ".ffffff"
            created = iso(at - td(microseconds=off))
            num = randrange(1, 20_000)
            if et == "pr_merged":
                r = rand()
                for labels, w in diff:
                    if r < w:
                        break
                if labels is None:
                    payload = f'{{"pr_number":{num}}}'
                else:
                    payload = f'{{"pr_number":{num},"difficulty_labels":{labels}}}'
            elif et == "pr_opened":
                payload = f'{{"pr_number":{num}}}'
            elif et == "pr_reviewed":
                payload = f'{{"pr_number":{num},"state":"{states[randrange(3)]}"}}'
            else:
                if rand() < 0.002:
                    # a payload with escapes and non-ASCII (ensure_ascii JSON)
                    payload = json.dumps(
                        {"issue_number": num,
                         "title": 'quote" back\\slash\nnew\ttab é漢字 \u2028'},
                        separators=(",", ":"))
                else:
                    payload = f'{{"issue_number":{num}}}'
            batch.append((u, et, repo, created, payload))
        conn.executemany(sql, batch)
        written += len(batch)
    return written, dups


def gen_scores(rng, conn, args, at, users):
    period = timedelta(days=args.period_days)
    ends = [
        at,
        at - timedelta(days=1),
        at - timedelta(days=7, seconds=-1, microseconds=-250_000),
    ]
    per = -(-args.score_rows // len(ends))
    per = min(per, len(users))
    rows = []
    left = args.score_rows
    # grouped by user (like Gitcord's upserts in the conformance data)
    for i in range(per):
        u = users[i]
        for end in ends:
            if left <= 0:
                break
            start = end - period
            points = rng.randrange(-3, 400) if rng.random() < 0.9 else 0
            updated = end + timedelta(microseconds=rng.randrange(1, 5_000_000))
            rows.append((u, iso(start), iso(end), points, iso(updated)))
            left -= 1
    conn.executemany("INSERT INTO scores (github_user, period_start, period_end, points, "
                     "updated_at) VALUES (?, ?, ?, ?, ?)", rows)
    return len(rows), [iso(e) for e in ends]


def gen_links(rng, conn, args, at, users):
    """identity_links: ~65% verified, ~17% pending, ~18% unlinked."""
    n = args.links
    ndiscord = max(1, n * 19 // 20)  # ~5% of discord users have two links
    nusers = len(users)
    seen = set()
    rows = []
    i = 0
    attempts = 0
    while len(rows) < n and attempts < n * 4:
        attempts += 1
        did = discord_id(i % ndiscord)
        gh = users[(i * 7 + (i // ndiscord) * 13) % nusers]
        i += 1
        key = (did, gh.lower())
        if key in seen:
            continue
        seen.add(key)
        created = at - timedelta(microseconds=rng.randrange(1, args.days * 86_400 * 10**6))
        r = rng.random()
        if r < 0.65:
            verified_at = created + timedelta(microseconds=rng.randrange(500, 3_000_000))
            rows.append((did, gh, 1, None, None, iso(created), iso(verified_at), None,
                         gh.lower()))
        elif r < 0.82:
            code = "%08X" % rng.getrandbits(32)
            expires = created + timedelta(minutes=30)
            rows.append((did, gh, 0, code, iso(expires), iso(created), None, None,
                         gh.lower()))
        else:
            verified_at = created + timedelta(microseconds=rng.randrange(500, 3_000_000))
            unlinked = verified_at + timedelta(microseconds=rng.randrange(1, 86_400 * 10**6))
            rows.append((did, gh, 0, None, None, iso(created), iso(verified_at),
                         iso(unlinked), gh.lower()))
    conn.executemany("INSERT INTO identity_links (discord_user_id, github_user, verified, "
                     "verification_code, expires_at, created_at, verified_at, unlinked_at, "
                     "github_user_normalized) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows), ndiscord


def gen_issue_requests(rng, conn, args, at, users, repos, ndiscord):
    rows = []
    span_s = args.days * 86_400
    prev_created = None
    for i in range(args.issue_requests):
        rid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        did = discord_id(rng.randrange(max(1, ndiscord)))
        gh = users[rng.randrange(len(users))]
        repo = repos[rng.randrange(len(repos))]
        num = rng.randrange(1, 5_000)
        if prev_created is not None and rng.random() < 0.05:
            created = prev_created  # ties: ordering falls back to request_id
        else:
            dt = at - timedelta(seconds=rng.randrange(1, span_s))
            if rng.random() < 0.3:
                dt += timedelta(microseconds=rng.randrange(1, 1_000_000))
            created = iso(dt)
        prev_created = created
        r = rng.random()
        status = ("pending" if r < 0.5 else "approved" if r < 0.75
                  else "cancelled" if r < 0.9 else "rejected")
        rows.append((rid, did, gh, ORG, repo, num,
                     f"https://github.com/{ORG}/{repo}/issues/{num}", created, status))
    conn.executemany("INSERT INTO issue_requests (request_id, discord_user_id, github_user, "
                     "owner, repo, issue_number, issue_url, created_at, status) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def gen_notifications(rng, conn, args, at, users, repos, ndiscord):
    sql = ("INSERT INTO notifications_sent (dedupe_key, event_type, github_user, "
           "discord_user_id, repo, target, channel_id, sent_at) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
    span_s = args.days * 86_400
    rand = rng.random
    randrange = rng.randrange
    nusers = len(users)
    nrepos = len(repos)
    channel = "555555555555555555"
    batch = []
    written = 0
    prev_sent = None
    for i in range(args.notifications):
        et = "pr_merged" if rand() < 0.6 else "issue_assigned"
        gh = users[randrange(nusers)]
        repo = repos[randrange(nrepos)]
        target = str(i + 1)
        key = f"{et}:{ORG}/{repo}:{target}:{gh}"
        if prev_sent is not None and rand() < 0.05:
            sent = prev_sent  # ties: ordering falls back to dedupe_key
        else:
            sent = iso(at - timedelta(seconds=randrange(1, span_s)))
        prev_sent = sent
        batch.append((key, et, gh, discord_id(randrange(max(1, ndiscord))), repo, target,
                      channel if rand() < 1 / 3 else None, sent))
        if len(batch) >= BATCH:
            conn.executemany(sql, batch)
            written += len(batch)
            batch = []
    if batch:
        conn.executemany(sql, batch)
        written += len(batch)
    return written


def write_roles(rng, path, nroles, ndiscord):
    roles = {}
    i = 0
    while len(roles) < nroles:
        # mostly linked discord users, some that never linked
        if i < ndiscord and rng.random() < 0.9:
            did = discord_id(i)
        else:
            did = discord_id(ndiscord + 1000 + i)
        i += 1
        k = rng.choice((0, 1, 1, 1, 2, 2, 3))
        names = rng.sample(ROLE_NAMES, k)  # unsorted, as Discord returns them
        if names and rng.random() < 0.02:
            names.append(names[0])  # rare duplicate (the exporter keeps duplicates)
        roles[did] = names
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(roles, f, indent=2, ensure_ascii=False)
    os.replace(tmp, path)
    return len(roles)


def write_config(path, data_dir, period_days):
    # Modelled on the conformance "difficulty" case: a complete Gitcord config.
    text = f"""runtime:
  mode: "dry-run"
  log_level: "INFO"
  data_dir: {json.dumps(data_dir, ensure_ascii=False)}
  github_adapter: "ghdcbot.adapters.github.rest:GitHubRestAdapter"
  discord_adapter: "ghdcbot.adapters.discord.api:DiscordApiAdapter"
  storage_adapter: "ghdcbot.adapters.storage.sqlite:SqliteStorage"
github:
  org: "{ORG}"
  token: "ghp_benchmark_not_a_real_token"
  api_base: "https://api.github.com"
  permissions:
    read: true
    write: true
discord:
  guild_id: "000000000000000000"
  token: "discord_benchmark_not_a_real_token"
scoring:
  period_days: {period_days}
  weights:
    pr_merged: 3
  difficulty_weights:
    "Easy": 2
    "medium": 5
    "HARD": 10
role_mappings:
  - discord_role: "Contributor"
    min_score: 10
  - discord_role: "Maintainer"
    min_score: 200
identity_mappings:
  - github_user: "legacy-user"
    discord_user_id: "999999999999999999"
snapshots:
  enabled: true
  repo_path: "{ORG}/gitcord-data"
  branch: "main"
"""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("output", help="path of the state.db to write (replaced if present)")
    p.add_argument("--contributions", type=int, default=1_000_000)
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--links", type=int, default=20_000, help="identity_links rows")
    p.add_argument("--score-rows", type=int, default=60_000, help="scores rows, over 3 periods")
    p.add_argument("--issue-requests", type=int, default=5_000)
    p.add_argument("--notifications", type=int, default=200_000)
    p.add_argument("--roles", type=int, default=20_000, help="discord ids in the roles JSON")
    p.add_argument("--days", type=int, default=60,
                   help="contributions are spread uniformly over this many days before --at")
    p.add_argument("--period-days", type=int, default=30,
                   help="scoring.period_days written to the config (and score periods)")
    p.add_argument("--at", default="2025-01-31T00:00:00+00:00",
                   help="the snapshot instant (RFC 3339)")
    p.add_argument("--dup-rate", type=float, default=0.01,
                   help="fraction of contribution rows that exactly duplicate another")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--config-out", help="config YAML path (default: DIR/config.yaml)")
    p.add_argument("--roles-out", help="roles JSON path (default: DIR/roles.json)")
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)

    if args.users < 1 or args.days < 1 or args.period_days < 1:
        p.error("--users, --days and --period-days must be >= 1")
    if args.period_days > args.days:
        p.error("--period-days must not exceed --days")

    t0 = time.monotonic()
    at = parse_at(args.at)
    period_start = at - timedelta(days=args.period_days)
    out = os.path.abspath(args.output)
    out_dir = os.path.dirname(out)
    os.makedirs(out_dir, exist_ok=True)
    config_out = os.path.abspath(args.config_out or os.path.join(out_dir, "config.yaml"))
    roles_out = os.path.abspath(args.roles_out or os.path.join(out_dir, "roles.json"))

    # Build into a temp file, then rename: a half-written DB is never left at `out`.
    tmp = out + ".tmp"
    for f in (tmp, tmp + "-journal", tmp + "-wal", tmp + "-shm"):
        if os.path.exists(f):
            os.remove(f)

    rng = random.Random(args.seed)
    users = make_users(rng, args.users)
    repos = make_repos()

    conn = sqlite3.connect(tmp, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")  # 256 MiB while loading
    conn.executescript(SCHEMA_SQL.read_text(encoding="utf-8"))
    conn.execute("BEGIN")
    ncontrib, ndups = gen_contributions(rng, conn, args, at, users, repos, period_start)
    t_contrib = time.monotonic()
    nscores, ends = gen_scores(rng, conn, args, at, users)
    nlinks, ndiscord = gen_links(rng, conn, args, at, users)
    nreq = gen_issue_requests(rng, conn, args, at, users, repos, ndiscord)
    nnotif = gen_notifications(rng, conn, args, at, users, repos, ndiscord)
    conn.executemany("INSERT INTO cursors (source, cursor) VALUES (?, ?)", [
        (f"github:{ORG}:events", iso(at - timedelta(minutes=5))),
        (f"github:{ORG}:issues", iso(at - timedelta(minutes=5, microseconds=123456))),
    ])
    conn.execute("COMMIT")
    # Back to Gitcord's mode: a normal rollback-journal database.
    mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    conn.execute("PRAGMA synchronous=FULL")
    conn.close()
    if mode.lower() != "delete":
        raise SystemExit(f"could not switch journal_mode back to delete (got {mode})")
    for f in (tmp + "-journal", tmp + "-wal", tmp + "-shm"):
        if os.path.exists(f):
            raise SystemExit(f"leftover {f}")
    for f in (out, out + "-journal", out + "-wal", out + "-shm"):
        if os.path.exists(f):
            os.remove(f)
    os.replace(tmp, out)

    write_config(config_out, out_dir, args.period_days)
    nroles = write_roles(rng, roles_out, args.roles, ndiscord)
    t1 = time.monotonic()

    if not args.quiet:
        size = os.path.getsize(out)
        print(f"wrote {out} ({size / 2**20:.1f} MiB) in {t1 - t0:.1f}s "
              f"(contributions {t_contrib - t0:.1f}s)", file=sys.stderr)
        print(f"  contributions {ncontrib} (exact duplicates {ndups}), scores {nscores} "
              f"(period_end {', '.join(ends)}), identity_links {nlinks}, "
              f"issue_requests {nreq}, notifications_sent {nnotif}, roles {nroles}",
              file=sys.stderr)
        print(f"  period window [{iso(period_start)}, {iso(at)}]", file=sys.stderr)
        print(f"  config {config_out}\n  roles  {roles_out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
