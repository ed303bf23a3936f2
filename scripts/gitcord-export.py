#!/usr/bin/env python3
"""Writes one snapshot with Gitcord's own Python path, for scripts/bench-export.sh.

Nothing of Gitcord is copied here: its modules are imported at run time from a Gitcord checkout
(--gitcord, or $GITCORD_SRC), and each step is Gitcord's own code:

* the config: ``ghdcbot.config.loader.load_config`` (``load_dotenv`` disabled: hermetic);
* the database: ``ghdcbot.adapters.storage.sqlite.SqliteStorage`` on the directory that holds
  ``state.db`` (its ``list_verified_identity_mappings`` through the orchestrator's
  ``_resolve_identity_mappings``, ``get_scores``, ``list_contribution_summaries`` with the
  config's weights and difficulty weights, ``list_pending_issue_requests``,
  ``list_recent_notifications``);
* the files: ``ghdcbot.engine.snapshots._collect_snapshot_data`` and
  ``_write_file_to_github`` (``json.dumps(indent=2, sort_keys=True, ensure_ascii=False)``)
  with a writer whose ``write_file`` writes under --out instead of calling GitHub's API.

The only glue of ours: ``--at`` and ``--run-id`` replace ``datetime.now()`` and ``uuid4()``
so the result can be compared with ``gitcord-snapshot export``; ``period_start`` is
``at - scoring.period_days``, as Gitcord's orchestrator computes it; the scores are the rows
of ``get_scores()`` with the latest ``period_end``, by points descending then login (Gitcord
computes them in memory during ``run-once``; this is the conformance rule for reading them
back, fixtures/conformance/README.md); roles come from --roles-file (what Gitcord's Discord
reader returns).

Prints the snapshot directory it wrote. Needs Python >= 3.11 with Gitcord's dependencies
for these modules (pydantic>=2.5, PyYAML>=6.0, python-dotenv, httpx), e.g.
    python3 -m venv /tmp/gc && /tmp/gc/bin/pip install 'pydantic>=2.5' 'PyYAML>=6.0' python-dotenv httpx
    GITCORD_PYTHON=/tmp/gc/bin/python GITCORD_SRC=~/src/Gitcord-GithubDiscordBot scripts/bench-export.sh
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path


def parse_at(text: str) -> datetime:
    s = text.strip()
    if s[-1:] in ("Z", "z"):
        s = s[:-1] + "+00:00"
    at = datetime.fromisoformat(s)
    if at.tzinfo is None:
        raise SystemExit("--at needs a UTC offset")
    return at.astimezone(timezone.utc)


class LocalWriter:
    """Stands in for Gitcord's GitHub writer: ``write_file`` writes the text it is given."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write_file(self, owner, repo, file_path, content, message, branch=None) -> bool:
        path = self.root / file_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8"))
        return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gitcord", type=Path, default=os.environ.get("GITCORD_SRC"),
                    help="Gitcord source checkout (has src/ghdcbot); default $GITCORD_SRC")
    ap.add_argument("--config", required=True)
    ap.add_argument("--state-db", required=True, type=Path, help="a file named state.db")
    ap.add_argument("--roles-file", required=True, type=Path)
    ap.add_argument("--run-id", required=True)
    ap.add_argument("--at", required=True)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    if args.gitcord is None:
        ap.error("--gitcord or GITCORD_SRC is required")
    src = Path(args.gitcord) / "src"
    if not (src / "ghdcbot/engine/snapshots.py").is_file():
        ap.error(f"{args.gitcord} is not a Gitcord checkout (no src/ghdcbot/engine/snapshots.py)")
    if args.state_db.name != "state.db":
        ap.error("Gitcord's storage opens <data_dir>/state.db: --state-db must be named state.db")
    sys.path.insert(0, str(src))

    from ghdcbot.adapters.storage.sqlite import SqliteStorage
    from ghdcbot.config import loader
    from ghdcbot.engine import snapshots
    from ghdcbot.engine.orchestrator import _resolve_identity_mappings

    loader.load_dotenv = lambda *a, **k: False  # hermetic: never read a .env file
    config = loader.load_config(args.config)
    storage = SqliteStorage(str(args.state_db.parent))

    at = parse_at(args.at)
    period_end = at
    period_start = at - timedelta(days=config.scoring.period_days)

    identity_mappings = _resolve_identity_mappings(storage, config.identity_mappings)
    all_scores = storage.get_scores()
    latest = max((s.period_end for s in all_scores), default=None)
    scores = sorted((s for s in all_scores if s.period_end == latest),
                    key=lambda s: (-s.points, s.github_user))
    member_roles = json.loads(args.roles_file.read_text(encoding="utf-8"))
    summaries = storage.list_contribution_summaries(
        period_start,
        period_end,
        config.scoring.weights,
        difficulty_weights=getattr(config.scoring, "difficulty_weights", None),
    )
    data = snapshots._collect_snapshot_data(
        storage=storage,
        config=config,
        identity_mappings=identity_mappings,
        scores=scores,
        member_roles=member_roles,
        period_start=period_start,
        period_end=period_end,
        contribution_summaries=summaries,
        run_id=args.run_id,
        generated_at=at,
    )
    stamp = at.strftime("%Y-%m-%dT%H-%M-%S")
    snapshot_dir = f"snapshots/{stamp}-{args.run_id[:8]}"
    owner, repo = snapshots._parse_repo_path(config.snapshots.repo_path)
    writer = LocalWriter(args.out)
    message = f"Gitcord snapshot: {stamp} (run: {args.run_id[:8]})"
    for filename, content in data.items():
        ok = snapshots._write_file_to_github(
            writer, owner, repo, f"{snapshot_dir}/{filename}", content, message,
            branch=config.snapshots.branch,
        )
        if not ok:
            raise SystemExit(f"Gitcord's writer failed for {filename}")
    print(args.out / snapshot_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
