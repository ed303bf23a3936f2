#!/usr/bin/env python3
"""Read the newest snapshot of a Gitcord data repository through its latest.json.

Every snapshot commit of gitcord-snapshot also writes ``latest.json`` at the
repository root (see ../schemas/latest.schema.json and ../schemas/README.md).
It names the newest snapshot directory and gives the size and SHA-256 of each
of its seven files, so a reader needs no directory listing, which GitHub caps
at 1,000 entries.

Usage:
    read_latest.py [--latest-file NAME] [--json] [--timeout SECONDS] SOURCE

SOURCE is either
  * a base URL under which the repository's files are served, e.g.
    https://raw.githubusercontent.com/OWNER/REPO/BRANCH (or a commit id in
    place of BRANCH, for a fixed point in history), or
  * a local directory holding latest.json and snapshots/<name>/...: a
    checkout of the data repository, or any directory laid out like its tip.
    (gitcord-snapshot's own clone keeps only the newest snapshot checked out
    and may lack latest.json; use a normal checkout instead.)

The script reads latest.json, refuses a schema_version whose major is not 1,
fetches the seven files under snapshot_dir, and checks for each file its byte
count and SHA-256 against latest.json, its own schema_version, and that its
generated_at, org and run_id are those of latest.json (and that snapshot_dir's
name agrees with generated_at and run_id). Then it prints a summary: the
snapshot, its time and organisation, the number of snapshots on the branch and
the rows in each file. --json prints that summary as one JSON object instead.

Exit status:
  0  every check passed;
  1  a check failed: one line per problem on stderr (with --json, stdout
     still gets the summary, with "ok": false and the same "problems").
     A file that latest.json lists but the source answers "not found" for
     (HTTP 404/410, or no such local file) is such a problem;
  2  usage error, or latest.json could not be read, or any other I/O or
     network error (timeouts, refused connections, HTTP errors other than
     404/410): one line naming the URL or path; nothing is printed on stdout.

Standard library only; Python 3.9 or newer.
"""

import argparse
import hashlib
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable, Dict, List, Optional, Tuple

PROG = "read_latest.py"
USER_AGENT = "gitcord-snapshot-read-latest/1.0 (+https://github.com/AOSSIE-Org/Gitcord-GithubDiscordBot)"
KNOWN_MAJOR = "1"
# The seven files of a snapshot, and the label each one's rows get in the summary
# (meta.json has no rows).
ROW_FILES = [
    ("contributors", "contributors.json"),
    ("identities", "identities.json"),
    ("scores", "scores.json"),
    ("roles", "roles.json"),
    ("issue_requests", "issue_requests.json"),
    ("notifications", "notifications.json"),
]
FILE_NAMES = sorted(["meta.json"] + [f for _, f in ROW_FILES])
SNAPSHOT_DIR = re.compile(r"^snapshots/([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}-[0-9]{2}-[0-9]{2})-([0-9a-f]{8})$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
HEADER_KEYS = ("generated_at", "org", "run_id")


class SourceError(Exception):
    """Could not read from the source (exit 2). The message names the URL or path."""


class NotFound(Exception):
    """The source answered that the file does not exist."""

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"{where}: {why}")
        self.where = where
        self.why = why


Reader = Callable[[str], Tuple[bytes, str]]


def url_reader(base: str, timeout: float) -> Reader:
    base = base.rstrip("/")

    def read(relpath: str) -> Tuple[bytes, str]:
        url = base + "/" + urllib.parse.quote(relpath)
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.read(), url
        except urllib.error.HTTPError as e:
            if e.code in (404, 410):
                raise NotFound(url, f"HTTP {e.code} {e.reason}") from None
            raise SourceError(f"{url}: HTTP {e.code} {e.reason}") from None
        except urllib.error.URLError as e:
            raise SourceError(f"{url}: {e.reason}") from None
        except (OSError, ValueError) as e:  # timeouts, resets, malformed URLs
            raise SourceError(f"{url}: {e}") from None

    return read


def dir_reader(root: str) -> Reader:
    def read(relpath: str) -> Tuple[bytes, str]:
        path = os.path.join(root, *relpath.split("/"))
        try:
            with open(path, "rb") as f:
                return f.read(), path
        except FileNotFoundError:
            raise NotFound(path, "no such file") from None
        except OSError as e:
            raise SourceError(f"{path}: {e.strerror or e}") from None

    return read


def major_of(version: object) -> Optional[str]:
    if not isinstance(version, str) or not re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", version):
        return None
    return version.split(".")[0]


def check_latest(latest: object, where: str) -> List[str]:
    """Problems with latest.json itself; empty when the snapshot can be fetched and checked."""
    if not isinstance(latest, dict):
        return [f"{where}: not a JSON object"]
    version = latest.get("schema_version")
    if major_of(version) != KNOWN_MAJOR:
        return [f"{where}: schema_version {json.dumps(version)} is not a known version (1.x)"]
    problems = []
    # Keys this reader does not know are allowed: a later 1.x may add some.
    for key in HEADER_KEYS:
        if not isinstance(latest.get(key), str):
            problems.append(f"{where}: {key} is missing or not a string")
    snapshots = latest.get("snapshots")
    if not isinstance(snapshots, int) or isinstance(snapshots, bool) or snapshots < 1:
        problems.append(f"{where}: snapshots is {json.dumps(snapshots)}, not an integer >= 1")
    snapshot_dir = latest.get("snapshot_dir")
    match = SNAPSHOT_DIR.match(snapshot_dir) if isinstance(snapshot_dir, str) else None
    if match is None:
        problems.append(f"{where}: snapshot_dir {json.dumps(snapshot_dir)} is not snapshots/<YYYY-MM-DDTHH-MM-SS>-<8 hex>")
    else:
        stamp, run8 = match.groups()
        generated_at, run_id = latest.get("generated_at"), latest.get("run_id")
        if isinstance(generated_at, str) and generated_at[:19].replace(":", "-") != stamp:
            problems.append(f"{where}: snapshot_dir {snapshot_dir} does not match generated_at {generated_at}")
        if isinstance(run_id, str) and run_id[:8] != run8:
            problems.append(f"{where}: snapshot_dir {snapshot_dir} does not match run_id {run_id}")
    files = latest.get("files")
    if not isinstance(files, dict):
        problems.append(f"{where}: files is missing or not an object")
        return problems
    for name in FILE_NAMES:
        entry = files.get(name)
        if not isinstance(entry, dict):
            problems.append(f"{where}: files has no entry for {name}")
            continue
        size, digest = entry.get("bytes"), entry.get("sha256")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            problems.append(f"{where}: files.{name}.bytes is {json.dumps(size)}, not an integer >= 0")
        if not isinstance(digest, str) or not SHA256.match(digest):
            problems.append(f"{where}: files.{name}.sha256 is not 64 lower-case hex digits")
    return problems


def check_file(name: str, raw: bytes, where: str, expected: dict, latest: dict) -> Tuple[List[str], Optional[int], Optional[str]]:
    """Problems with one snapshot file; also its row count (None for meta.json) and schema_version."""
    problems = []
    if len(raw) != expected.get("bytes"):
        problems.append(f"{where}: {len(raw)} bytes, latest.json says {expected.get('bytes')}")
    digest = hashlib.sha256(raw).hexdigest()
    if digest != expected.get("sha256"):
        problems.append(f"{where}: sha256 {digest}, latest.json says {expected.get('sha256')}")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        problems.append(f"{where}: not UTF-8 JSON ({e})")
        return problems, None, None
    if not isinstance(doc, dict):
        problems.append(f"{where}: not a JSON object")
        return problems, None, None
    version = doc.get("schema_version")
    if major_of(version) != KNOWN_MAJOR:
        problems.append(f"{where}: schema_version {json.dumps(version)} is not a known version (1.x)")
    for key in HEADER_KEYS:
        if doc.get(key) != latest.get(key):
            problems.append(f"{where}: {key} {json.dumps(doc.get(key), ensure_ascii=False)}, latest.json says {json.dumps(latest.get(key), ensure_ascii=False)}")
    rows = None
    if name != "meta.json":
        data = doc.get("data")
        if isinstance(data, list):
            rows = len(data)
        else:
            problems.append(f"{where}: data is missing or not an array")
    return problems, rows, version if isinstance(version, str) else None


def run(source: str, latest_file: str, timeout: float) -> dict:
    """Reads and checks everything; returns the summary. Raises SourceError for exit 2."""
    if re.match(r"^https?://", source, re.IGNORECASE):
        read = url_reader(source, timeout)
    elif os.path.isdir(source):
        read = dir_reader(source)
    else:
        raise SourceError(f"{source}: not an http(s) URL or a directory")

    try:
        raw, where = read(latest_file)
    except NotFound as e:
        raise SourceError(str(e)) from None
    summary: dict = {"ok": False, "source": source, "latest_file": latest_file, "latest": where}
    try:
        latest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        summary["problems"] = [f"{where}: not UTF-8 JSON ({e})"]
        return summary
    problems = check_latest(latest, where)
    if problems:
        summary["problems"] = problems
        return summary

    summary.update({key: latest[key] for key in ("snapshot_dir", "generated_at", "org", "run_id", "schema_version", "snapshots")})
    rows: Dict[str, Optional[int]] = {}
    versions = {}
    total = 0
    files_read = 0
    for name in FILE_NAMES:
        try:
            raw, where = read(latest["snapshot_dir"] + "/" + name)
        except NotFound as e:
            problems.append(f"{e.where}: listed in latest.json, but not found ({e.why})")
            continue
        total += len(raw)
        files_read += 1
        file_problems, count, version = check_file(name, raw, where, latest["files"][name], latest)
        problems.extend(file_problems)
        versions[name] = version
        if name != "meta.json":
            rows[name[: -len(".json")]] = count
    by_version: Dict[str, List[str]] = {}
    for name, version in sorted(versions.items()):
        if version is not None:
            by_version.setdefault(version, []).append(name)
    if len(by_version) > 1:
        problems.append("schema_version differs between the snapshot's files: " + "; ".join(f"{v} in {', '.join(names)}" for v, names in sorted(by_version.items())))
    summary["rows"] = {label: rows.get(label) for label, _ in ROW_FILES}
    summary["bytes"] = total
    summary["files_read"] = files_read
    summary["problems"] = problems
    summary["ok"] = not problems
    return summary


def print_text(summary: dict) -> None:
    if "snapshot_dir" not in summary:
        return
    rows = summary["rows"]
    print(f"snapshot:      {summary['snapshot_dir']}")
    print(f"generated_at:  {summary['generated_at']}")
    print(f"org:           {summary['org']}")
    print(f"run_id:        {summary['run_id']}")
    print(f"snapshots:     {summary['snapshots']} on the branch")
    print("rows:          " + ", ".join(f"{label} {'?' if rows[label] is None else rows[label]}" for label, _ in ROW_FILES))
    verdict = "all checks passed" if summary["ok"] else f"{len(summary['problems'])} problem(s)"
    print(f"checked:       {summary['files_read']} of {len(FILE_NAMES)} files, {summary['bytes']} bytes: {verdict}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Fetch and check the newest snapshot of a Gitcord data repository through latest.json.",
    )
    parser.add_argument("source", metavar="SOURCE", help="base URL (e.g. https://raw.githubusercontent.com/OWNER/REPO/BRANCH) or local directory")
    parser.add_argument("--latest-file", default="latest.json", metavar="NAME", help="the pointer file's name at the repository root (snapshots.latest_file; default latest.json)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="timeout of each URL request (default 30)")
    args = parser.parse_args(argv)  # exits 2 on a usage error
    parts = args.latest_file.split("/")
    if args.latest_file.startswith("/") or any(p in ("", ".", "..") for p in parts):
        print(f"{PROG}: --latest-file {args.latest_file}: must be a relative path inside the repository", file=sys.stderr)
        return 2
    if not args.timeout > 0:
        print(f"{PROG}: --timeout must be more than 0", file=sys.stderr)
        return 2

    try:
        summary = run(args.source, args.latest_file, args.timeout)
    except SourceError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        print_text(summary)
    for problem in summary["problems"]:
        print(f"{PROG}: {problem}", file=sys.stderr)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
