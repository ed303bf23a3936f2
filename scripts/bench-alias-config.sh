#!/usr/bin/env bash
# The "billion laughs" config of issue 21 (nine levels of ten aliases, ~1.2 KB, in a key
# Gitcord ignores), read three ways in one run, each under /usr/bin/time -v:
#   * gitcord-snapshot export (refuses it: exit 78 naming the key);
#   * PyYAML's yaml.safe_load alone (shares aliased nodes, so it is fast);
#   * Gitcord's own ghdcbot.config.loader.load_config (its ${VAR} walk copies every alias),
#     stopped after TIMEOUT seconds (default 30) and under a LIMIT_MB address-space limit
#     (default 4096), whichever comes first.
#
#   GITCORD_SRC=/work/gitcord-src PYTHON=/work/venv-gitcord/bin/python scripts/bench-alias-config.sh
#
# BIN defaults to target/debug/gitcord-snapshot under CARGO_TARGET_DIR (built if missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
: "${GITCORD_SRC:?set GITCORD_SRC to a Gitcord checkout}"
python=${PYTHON:-python3}
timeout_s=${TIMEOUT:-30}
limit_mb=${LIMIT_MB:-4096}
target=${CARGO_TARGET_DIR:-target}
bin=${BIN:-$target/debug/gitcord-snapshot}
if [[ -z ${BIN:-} ]]; then cargo build --locked --quiet; fi
bin=$(realpath "$bin")
case=fixtures/conformance/basic
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cp "$case/config.yaml" "$work/config.yaml"
{
    printf 'x-a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for i in 1 2 3 4 5 6 7 8 9; do
        p=$((i - 1))
        printf 'x-a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n' \
            "$i" "$i" $p $p $p $p $p $p $p $p $p $p
    done
} >"$work/laughs.yaml"
cat "$work/laughs.yaml" >>"$work/config.yaml"
echo "alias part: $(wc -c <"$work/laughs.yaml") bytes; whole config: $(wc -c <"$work/config.yaml") bytes"

# $1: label; the rest: the command. Prints exit code, wall seconds, max RSS.
measure() {
    local label=$1
    shift
    local code=0
    /usr/bin/time -v -o "$work/time.txt" "$@" >"$work/out.txt" 2>"$work/err.txt" || code=$?
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
    printf '%-34s exit %-3s wall %-9s max RSS %8s KiB  %s\n' "$label" "$code" "$wall" "$rss" \
        "$(tail -n 1 "$work/err.txt" | cut -c1-150)"
}

measure "gitcord-snapshot export" \
    "$bin" export --config "$work/config.yaml" --state-db "$case/state.db" \
    --roles-file "$case/roles.json" --out "$work/out"
measure "PyYAML safe_load" \
    "$python" -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); print(len(d))' \
    "$work/config.yaml"
# Gitcord's loader under a watchdog: peak RSS read from /proc (VmHWM) just before the kill,
# since a killed process's own rusage is not reported through `timeout`.
"$python" - "$work/config.yaml" "$GITCORD_SRC" "$timeout_s" "$limit_mb" <<'PY'
import os, resource, signal, subprocess, sys, time
config, src, timeout_s, limit_mb = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
code = f"""
import sys
sys.path.insert(0, {src + '/src'!r})
from ghdcbot.config import loader
loader.load_dotenv = lambda *a, **k: False
loader.load_config({config!r})
print("loaded")
"""
def limit():
    resource.setrlimit(resource.RLIMIT_AS, (limit_mb << 20, limit_mb << 20))
start = time.monotonic()
p = subprocess.Popen([sys.executable, "-c", code], preexec_fn=limit,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
hwm = 0
while p.poll() is None and time.monotonic() - start < timeout_s:
    try:
        for line in open(f"/proc/{p.pid}/status"):
            if line.startswith("VmHWM:"):
                hwm = max(hwm, int(line.split()[1]))
    except OSError:
        pass
    time.sleep(0.05)
killed = p.poll() is None
if killed:
    p.send_signal(signal.SIGKILL)
out, err = p.communicate()
wall = time.monotonic() - start
last = (err.decode(errors="replace").strip().splitlines() or [""])[-1][:150]
state = f"killed after {timeout_s:.0f} s" if killed else f"exit {p.returncode}"
print(f"{'Gitcord load_config':<34} {state}  wall {wall:.2f} s  peak RSS {hwm} KiB "
      f"(limit {limit_mb} MB)  {last}")
PY
"$python" -c 'import yaml, sys; print("python", sys.version.split()[0], "PyYAML", yaml.__version__)'
