#!/usr/bin/env python3
"""Differential oracle for gitcord-snapshot's config reader.

Runs Gitcord's own config loader (imported at run time from a Gitcord checkout given with
--gitcord; nothing of Gitcord is copied here) on every fixtures/config-compat/cases/*.yaml and
writes fixtures/config-compat/expected.json: for each case either the values of every config
field gitcord-snapshot uses, or {"error": ...} when Gitcord refuses the file.

Keys gitcord-snapshot adds that Gitcord does not know (discord.api_base, snapshots.clone_dir, ...)
are read the same way: PyYAML's safe_load, Gitcord's ${VAR} expansion, then pydantic's lax
coercion for the type gitcord-snapshot gives them (see EXTENSION_* below).

Environment: each case runs with an EMPTY environment plus the `# env: NAME=value` lines found
in the case file (a line of its own, anywhere, usually at the top). python-dotenv's
load_dotenv() (called by Gitcord's loader) is disabled so that no .env file leaks in.

Needs: Python >= 3.11 with Gitcord's config dependencies (pydantic>=2.5, PyYAML>=6.0,
python-dotenv>=1.0), e.g.
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install 'pydantic>=2.5' 'PyYAML>=6.0' python-dotenv
    /tmp/venv/bin/python scripts/config-oracle.py --gitcord ~/src/Gitcord-GithubDiscordBot
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
ENV_LINE = re.compile(r"^\ufeff*# env: ([A-Za-z_][A-Za-z0-9_]*)=(.*?)\r?$", re.MULTILINE)


def case_env(path: Path) -> dict[str, str]:
    text = path.read_bytes().decode("utf-8", errors="replace")
    return {m.group(1): m.group(2) for m in ENV_LINE.finditer(text)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gitcord", required=True, type=Path, help="Gitcord source checkout (has src/ghdcbot)")
    ap.add_argument("--gitcord-rev", help="Gitcord commit, recorded in the output (default: git rev-parse)")
    ap.add_argument("--cases", type=Path, default=ROOT / "fixtures/config-compat/cases")
    ap.add_argument("--out", type=Path, default=ROOT / "fixtures/config-compat/expected.json")
    args = ap.parse_args()

    src = args.gitcord / "src"
    if not (src / "ghdcbot/config/loader.py").is_file():
        ap.error(f"{args.gitcord} is not a Gitcord checkout (no src/ghdcbot/config/loader.py)")
    sys.path.insert(0, str(src))

    import pydantic
    import yaml
    from pydantic import BaseModel, ValidationError

    from ghdcbot.config import loader  # Gitcord's real loader
    from ghdcbot.core.errors import ConfigError

    loader.load_dotenv = lambda *a, **k: False  # hermetic: never read a .env file

    # gitcord-snapshot's own keys, typed as gitcord-snapshot uses them; pydantic's defaults
    # (lax mode, extra keys ignored) as in Gitcord's models.
    class ExtensionDiscord(BaseModel):
        api_base: Optional[str] = None

    class ExtensionSnapshots(BaseModel):
        remote_url: Optional[str] = None
        clone_dir: Optional[str] = None
        token: Optional[str] = None
        ca_file: Optional[str] = None
        author_name: Optional[str] = None
        author_email: Optional[str] = None
        roles_file: Optional[str] = None
        metrics_file: Optional[str] = None
        writer: Optional[str] = None
        skip_unchanged: bool = False
        roles_required: bool = True

    def describe_validation(exc: ValidationError, prefix: str = "") -> dict[str, Any]:
        errs = exc.errors()
        locs = [prefix + ".".join(str(p) for p in e["loc"]) for e in errs]
        first = errs[0]
        return {
            "error": f"{locs[0]}: {first['type']}",
            "loc": locs[0],
            "all": [f"{loc}: {e['type']}" for loc, e in zip(locs, errs)],
        }

    def run_case(path: Path) -> dict[str, Any]:
        try:
            cfg = loader.load_config(str(path))
        except ConfigError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                return {"stage": "validation", **describe_validation(cause)}
            if isinstance(cause, yaml.YAMLError):
                problem = getattr(cause, "problem", None) or str(cause).splitlines()[0]
                return {"stage": "yaml", "error": f"yaml: {type(cause).__name__}: {problem}"}
            msg = str(exc)
            if msg.startswith("Missing required environment variable"):
                return {"stage": "env", "error": msg}
            return {"stage": "load", "error": msg}
        except UnicodeDecodeError as exc:  # Gitcord does not catch this one
            return {"stage": "read", "error": f"UnicodeDecodeError (uncaught by Gitcord): {exc.reason}"}

        # Gitcord accepted the file. Read our own keys from the same parse + expansion.
        raw = loader._expand_env_vars(yaml.safe_load(path.read_text(encoding="utf-8")))
        try:
            dext = ExtensionDiscord.model_validate(raw["discord"])
        except ValidationError as exc:
            return {"stage": "extension", "gitcord_accepts": True, **describe_validation(exc, "discord.")}
        raw_snap = raw.get("snapshots")
        try:
            sext = ExtensionSnapshots.model_validate(raw_snap if raw_snap is not None else {})
        except ValidationError as exc:
            return {"stage": "extension", "gitcord_accepts": True, **describe_validation(exc, "snapshots.")}

        snap = cfg.snapshots
        dw = cfg.scoring.difficulty_weights
        return {
            "github.org": cfg.github.org,
            "github.token": cfg.github.token,
            "runtime.data_dir": cfg.runtime.data_dir,
            "scoring.period_days": cfg.scoring.period_days,
            "scoring.weights": dict(cfg.scoring.weights),
            "scoring.weights.pr_merged": cfg.scoring.weights.get("pr_merged"),
            # file order kept (a JSON object would lose it in some readers)
            "scoring.difficulty_weights": None if dw is None else [[k, v] for k, v in dw.items()],
            "identity_mappings": [[m.github_user, m.discord_user_id] for m in cfg.identity_mappings],
            "discord.guild_id": cfg.discord.guild_id,
            "discord.token": cfg.discord.token,
            "discord.api_base": dext.api_base,
            "snapshots.present": snap is not None,
            "snapshots.enabled": snap.enabled if snap else False,
            "snapshots.repo_path": snap.repo_path if snap else None,
            "snapshots.branch": snap.branch if snap else None,
            **{f"snapshots.{k}": v for k, v in sext.model_dump().items()},
        }

    results: dict[str, Any] = {}
    saved = dict(os.environ)
    for path in sorted(args.cases.glob("*.yaml")):
        env = case_env(path)
        os.environ.clear()
        os.environ.update(env)
        try:
            results[path.stem] = run_case(path)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    rev = args.gitcord_rev
    if not rev:
        try:
            rev = subprocess.run(["git", "-C", str(args.gitcord), "rev-parse", "HEAD"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            rev = "unknown"
    out = {
        "_meta": {
            "generator": "scripts/config-oracle.py",
            "gitcord_commit": rev,
            "python": sys.version.split()[0],
            "pyyaml": yaml.__version__,
            "pydantic": pydantic.VERSION,
            "cases": len(results),
        },
        "cases": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    n_err = sum(1 for r in results.values() if "error" in r)
    print(f"{len(results)} cases ({n_err} refused) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
