#!/usr/bin/env python3
"""Packing the clone at a large organisation, before and after, side by side in one run.

Pushes the 1M-contribution database of scripts/gen-bench-db.py (generated once into
DIR/db/) RUNS times in a row with each binary, interleaved (run i of the baseline, then run i
of the build under test), each into its own fresh clone and local bare remote, with
`snapshots.backup` at its default (true). Every run's CPU (user + system, from wait4) and wall
time are measured; the runs that pack the clone's loose objects (log: `packed N loose
objects`) and those that merge packs (log: `merging N packs`) are reported apart, with the
CPU of the packing and of the merge alone where the binary logs them (`packing: ... in X s of
CPU`, `merged into ... in X s of CPU`). With --gitcord-runs, before each round the database
(a fresh copy of the generated one) changes as one Gitcord run changes it (what
tests/it/backup.rs's bench does: 1,000 new contributions, a new score period, 50
notifications, a few issue requests and identity links, the cursor), so that snapshots differ
and each run's backup adds a pack; without it, every run reads the same database. At the end: each clone's pack bytes, pack count,
loose objects, and `git count-objects -v`. It asserts nothing about time; it fails if a run
fails or `git fsck --full` refuses a clone.

    cargo build --release
    scripts/bench-pack.py --baseline <previous build's binary>
    scripts/bench-pack.py --baseline OLD --runs 40 --contributions 1000000 --dir target/bench/pack
    scripts/bench-pack.py --baseline OLD --gitcord-runs
"""

import argparse
import datetime
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time


def run(cmd, cwd):
    """Runs cmd; returns (exit code, stderr, cpu seconds, wall seconds)."""
    start = time.monotonic()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - start
    return p.returncode, err, usage.ru_utime + usage.ru_stime, wall


def gitcord_run(db, round_):
    """What one Gitcord run does to the database (tests/it/backup.rs, gitcord_run)."""
    now = (datetime.datetime(2025, 1, 31, tzinfo=datetime.timezone.utc)
           + datetime.timedelta(hours=round_)).isoformat()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO contributions (github_user, event_type, repo, created_at, payload_json) "
        "SELECT github_user, event_type, repo, ?1, payload_json FROM contributions "
        "ORDER BY id DESC LIMIT 1000", (now,))
    conn.execute(
        "INSERT INTO scores (github_user, period_start, period_end, points, updated_at) "
        "SELECT github_user, period_start, ?1, points + 1, ?1 FROM scores "
        "WHERE period_end = (SELECT max(period_end) FROM scores)", (now,))
    conn.execute(
        "INSERT OR REPLACE INTO notifications_sent "
        "(dedupe_key, event_type, github_user, discord_user_id, repo, target, channel_id, sent_at) "
        "SELECT 'bench:' || ?2 || ':' || rowid, event_type, github_user, discord_user_id, repo, "
        "target, channel_id, ?1 FROM notifications_sent ORDER BY rowid LIMIT 50", (now, round_))
    conn.execute(
        "UPDATE issue_requests SET status = 'approved' WHERE rowid IN "
        "(SELECT rowid FROM issue_requests WHERE status = 'pending' ORDER BY rowid LIMIT 3)")
    conn.execute(
        "UPDATE identity_links SET verified = 1, verified_at = ?1, verification_code = NULL, "
        "expires_at = NULL WHERE rowid IN "
        "(SELECT rowid FROM identity_links WHERE verified = 0 ORDER BY rowid LIMIT 3)", (now,))
    conn.execute(
        "INSERT INTO cursors (source, cursor) VALUES ('github', ?1) "
        "ON CONFLICT(source) DO UPDATE SET cursor = excluded.cursor", (now,))
    conn.execute("COMMIT")
    conn.close()


def clone_figures(git_dir):
    pack_dir = os.path.join(git_dir, "objects", "pack")
    packs = [f for f in os.listdir(pack_dir) if f.endswith(".pack")]
    pack_bytes = sum(os.path.getsize(os.path.join(pack_dir, f)) for f in packs)
    loose = 0
    for d in os.listdir(os.path.join(git_dir, "objects")):
        if len(d) == 2:
            loose += len(os.listdir(os.path.join(git_dir, "objects", d)))
    return pack_bytes, len(packs), loose


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", required=True, help="the previous build's binary")
    p.add_argument("--binary", default="target/release/gitcord-snapshot")
    p.add_argument("--runs", type=int, default=40)
    p.add_argument("--contributions", type=int, default=1_000_000)
    p.add_argument("--dir", default="target/bench/pack")
    p.add_argument("--gitcord-runs", action="store_true",
                   help="change the database between rounds as a Gitcord run does")
    args = p.parse_args()
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    os.chdir(root)
    print(f"command: {' '.join(sys.argv)}", flush=True)
    bench = os.path.abspath(args.dir)
    db_dir = os.path.join(bench, f"db-{args.contributions}")
    db = os.path.join(db_dir, "state.db")
    if not os.path.exists(db):
        subprocess.run([sys.executable, "scripts/gen-bench-db.py", db,
                        "--contributions", str(args.contributions), "-q"], check=True)
    if args.gitcord_runs:
        work = os.path.join(bench, "db-work")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        for f in ("state.db", "config.yaml", "roles.json"):
            shutil.copy(os.path.join(db_dir, f), work)
        config = os.path.join(work, "config.yaml")
        with open(config, encoding="utf-8") as f:
            text = re.sub(r'(?m)^(\s*data_dir:).*$', lambda m: f'{m.group(1)} "{work}"', f.read())
        with open(config, "w", encoding="utf-8") as f:
            f.write(text)
        db_dir, db = work, os.path.join(work, "state.db")
    sides = {"before": os.path.abspath(args.baseline), "after": os.path.abspath(args.binary)}
    for side in sides:
        d = os.path.join(bench, side)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        subprocess.run(["git", "init", "-q", "--bare", os.path.join(d, "remote.git")], check=True)
    results = {side: [] for side in sides}
    for i in range(args.runs):
        at = f"2025-02-05T{i // 60:02}:{i % 60:02}:00Z"
        if args.gitcord_runs and i > 0:
            gitcord_run(db, i)
        for side, binary in sides.items():
            d = os.path.join(bench, side)
            cmd = [binary, "-v", "push", "--config", os.path.join(db_dir, "config.yaml"),
                   "--roles-file", os.path.join(db_dir, "roles.json"),
                   "--clone-dir", os.path.join(d, "clone"),
                   "--remote", os.path.join(d, "remote.git"), "--at", at]
            code, err, cpu, wall = run(cmd, db_dir)
            if code != 0:
                sys.exit(f"{side} run {i} exited {code}:\n{err}")
            packed = re.search(r"packed (\d+) loose objects", err)
            merging = re.search(r"merging (\d+) packs", err)
            pack_cpu = re.search(r"packing: .* in ([\d.]+) s of CPU", err)
            merge_cpu = re.search(r"merged into .* in ([\d.]+) s of CPU", err)
            r = {
                "run": i, "cpu": cpu, "wall": wall,
                "packed": int(packed.group(1)) if packed else 0,
                "merged": int(merging.group(1)) if merging else 0,
                "pack_cpu": float(pack_cpu.group(1)) if pack_cpu else None,
                "merge_cpu": float(merge_cpu.group(1)) if merge_cpu else None,
            }
            results[side].append(r)
            note = ""
            if r["packed"]:
                note += f"  packed {r['packed']} loose objects"
                if r["pack_cpu"] is not None:
                    note += f" ({r['pack_cpu']:.2f} s CPU)"
            if r["merged"]:
                note += f"  merged {r['merged']} packs"
                if r["merge_cpu"] is not None:
                    note += f" ({r['merge_cpu']:.2f} s CPU)"
            print(f"run {i:3} {side:6} cpu {cpu:6.2f} s  wall {wall:6.2f} s{note}", flush=True)
    print()
    print(f"{args.runs} runs each, {args.contributions} contributions, backup on (the default), "
          + ("the database changed before each round as by a Gitcord run" if args.gitcord_runs
             else "the same database every run"))
    for side in sides:
        rs = results[side]
        git_dir = os.path.join(bench, side, "clone", ".git")
        fsck = subprocess.run(["git", "--git-dir", git_dir, "fsck", "--full", "--no-dangling"],
                              capture_output=True, text=True)
        if fsck.returncode != 0:
            sys.exit(f"{side}: git fsck --full refuses the clone: {fsck.stderr}")
        packing = [r for r in rs if r["packed"]]
        others = [r["cpu"] for r in rs if not r["packed"] and r["run"] > 0]
        pack_bytes, npacks, loose = clone_figures(git_dir)
        print(f"{side}: {sides[side]}")
        print(f"  runs that packed: {len(packing)}; their CPU (whole run): "
              + ", ".join(f"{r['cpu']:.2f} s" for r in packing)
              + "; wall: " + ", ".join(f"{r['wall']:.2f} s" for r in packing))
        alone = [r["pack_cpu"] for r in packing if r["pack_cpu"] is not None]
        if alone:
            print("  packing alone (CPU): " + ", ".join(f"{c:.2f} s" for c in alone))
        merges = [r for r in rs if r["merged"]]
        print(f"  runs that merged packs: {len(merges)}"
              + ("; merge alone (CPU): " + ", ".join(f"{r['merge_cpu']:.2f} s" for r in merges
                                                      if r["merge_cpu"] is not None)
                 if any(r["merge_cpu"] is not None for r in merges) else ""))
        if others:
            print(f"  other runs: median CPU {statistics.median(others):.2f} s, "
                  f"max {max(others):.2f} s")
        print(f"  clone after {args.runs} runs: {pack_bytes} bytes in {npacks} packs, "
              f"{loose} loose objects; git fsck --full: ok")


if __name__ == "__main__":
    main()
