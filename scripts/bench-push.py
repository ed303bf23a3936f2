#!/usr/bin/env python3
"""Benchmark `gitcord-snapshot push` against plain `git add` + `git commit` + `git push`.

In one run, on the same machine and the same snapshot files:

  ours: `gitcord-snapshot push` (read state.db + render + commit + push) of N snapshots of a
        mid-size case (~0.5 MB per snapshot) into a local bare remote;
  git:  the same N snapshot directories, pre-rendered (not timed), each copied into a normal
        clone and published with `git add` + `git commit` + `git push` into another bare remote.

Reports per-push medians of the first and last 20 pushes for both, and the disk use of each
clone relative to its remote (`du -sk`).

Usage: scripts/bench-push.py [--snapshots 150] [--keep DIR]
"""

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GEN_ARGS = ["--contributions", "30000", "--users", "600", "--links", "600", "--score-rows", "1800",
            "--issue-requests", "150", "--notifications", "500", "--roles", "600", "--seed", "3"]
AT0 = 1738281600  # 2025-01-31T00:00:00Z
GIT_ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
           "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}


def run(cmd, **kw):
    subprocess.run(cmd, check=True, **kw)


def at(i):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(AT0 + 3600 * i))


def run_id(i):
    return f"{i:08x}-0000-4000-8000-00000000beef"


def du_kib(path):
    out = subprocess.run(["du", "-sk", str(path)], check=True, capture_output=True, text=True).stdout
    return int(out.split()[0])


def median_ms(xs):
    return statistics.median(xs) * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--snapshots", type=int, default=150)
    ap.add_argument("--keep", help="work in this directory and keep it")
    args = ap.parse_args()
    n = args.snapshots
    if n < 40:
        sys.exit("bench-push: --snapshots must be at least 40 (first and last 20)")

    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    print("bench-push: building release binary", file=sys.stderr)
    run(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
    binary = target / "release" / "gitcord-snapshot"

    key = hashlib.sha256((ROOT / "scripts/gen-bench-db.py").read_bytes() + " ".join(GEN_ARGS).encode()).hexdigest()[:16]
    data = target / "bench" / f"mid-{key}"
    if not (data / "done").exists():
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        run([sys.executable, str(ROOT / "scripts/gen-bench-db.py"), str(data / "state.db"), *GEN_ARGS,
             "--config-out", str(data / "config.yaml"), "--roles-out", str(data / "roles.json"), "-q"])
        (data / "done").write_text("")

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-push-"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        config = work / "config.yaml"
        config.write_text((data / "config.yaml").read_text())
        inputs = ["--config", str(config), "--state-db", str(data / "state.db"), "--roles-file", str(data / "roles.json")]

        # Pre-render the snapshots the git baseline will commit (not timed).
        rendered = work / "rendered"
        for i in range(n):
            run([binary, "-q", "export", *inputs, "--run-id", run_id(i), "--at", at(i), "--out", str(rendered)],
                stdout=subprocess.DEVNULL)
        names = sorted(p.name for p in (rendered / "snapshots").iterdir())
        size = sum(f.stat().st_size for f in (rendered / "snapshots" / names[0]).iterdir())

        # ours
        ours_remote = work / "ours-remote.git"
        run(["git", "init", "-q", "--bare", "-b", "main", str(ours_remote)], env=GIT_ENV)
        ours = []
        for i in range(n):
            t = time.perf_counter()
            run([binary, "-q", "push", *inputs, "--run-id", run_id(i), "--at", at(i),
                 "--clone-dir", str(work / "ours-clone"), "--remote", str(ours_remote)], stdout=subprocess.DEVNULL)
            ours.append(time.perf_counter() - t)

        # git add + commit + push of the same files
        git_remote = work / "git-remote.git"
        run(["git", "init", "-q", "--bare", "-b", "main", str(git_remote)], env=GIT_ENV)
        clone = work / "git-clone"
        run(["git", "clone", "-q", str(git_remote), str(clone)], env=GIT_ENV, stderr=subprocess.DEVNULL)
        run(["git", "-C", str(clone), "checkout", "-q", "-b", "main"], env=GIT_ENV)
        plain = []
        for name in names:
            shutil.copytree(rendered / "snapshots" / name, clone / "snapshots" / name)
            t = time.perf_counter()
            run(["git", "-C", str(clone), "add", f"snapshots/{name}"], env=GIT_ENV)
            run(["git", "-C", str(clone), "commit", "-q", "-m", f"Gitcord snapshot: {name}"], env=GIT_ENV)
            run(["git", "-C", str(clone), "push", "-q", "origin", "main"], env=GIT_ENV, stderr=subprocess.DEVNULL)
            plain.append(time.perf_counter() - t)

        # Both remotes must hold the same snapshot files.
        def files(remote):
            return subprocess.run(["git", "--git-dir", str(remote), "ls-tree", "-r", "main", "snapshots"],
                                  check=True, capture_output=True, text=True, env=GIT_ENV).stdout
        if files(ours_remote) != files(git_remote):
            sys.exit("bench-push: the two remotes differ")

        o_first, o_last = median_ms(ours[:20]), median_ms(ours[-20:])
        g_first, g_last = median_ms(plain[:20]), median_ms(plain[-20:])
        rows = [
            ("gitcord-snapshot push (export + commit + push)", o_first, o_last, median_ms(ours),
             du_kib(work / "ours-clone"), du_kib(ours_remote)),
            ("git add + commit + push (files pre-rendered)", g_first, g_last, median_ms(plain),
             du_kib(clone), du_kib(git_remote)),
        ]
        print(f"## gitcord-snapshot push benchmark\n")
        print(f"- {n} snapshots of {size / 1000:.0f} KB each into a local bare remote; {os.cpu_count()} CPUs; "
              f"{subprocess.run(['git', '--version'], capture_output=True, text=True).stdout.strip()}\n")
        print("| what | median first 20 (ms) | median last 20 (ms) | last/first | median all (ms) | clone KiB | remote KiB | clone/remote |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for what, first, last, allm, c, r in rows:
            print(f"| {what} | {first:.1f} | {last:.1f} | {last / first:.2f}x | {allm:.1f} | {c} | {r} | {c / r:.2f}x |")
        print(f"\nours / git (median of all pushes): {median_ms(ours) / median_ms(plain):.2f}x")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
