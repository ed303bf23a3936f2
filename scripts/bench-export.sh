#!/usr/bin/env bash
# Benchmark `gitcord-snapshot export` against a bare `sqlite3 -readonly` read of the same rows.
#
# Usage:  scripts/bench-export.sh
#         BENCH_CONTRIBUTIONS=20000 scripts/bench-export.sh      # quick smoke run
#         GITCORD_SRC=~/src/Gitcord-GithubDiscordBot GITCORD_PYTHON=/tmp/gc/bin/python \
#             scripts/bench-export.sh                         # with Gitcord's own Python path
#
# What it does, in one run:
#   1. cargo build --release (skip with BENCH_BUILD=0; BENCH_BIN overrides the binary);
#   2. generates a Gitcord state.db (scripts/gen-bench-db.py) into target/bench/db-<hash>/,
#      keyed by a hash of the generator script and its arguments, reused when present;
#      plus a second one with a quarter of the contributions;
#   3. times (best wall of BENCH_REPS runs, highest peak RSS over the runs, /usr/bin/time %M):
#        (a0) sqlite3 -readonly: scan the contributions window without printing (lower bound)
#        (a)  sqlite3 -readonly: every column the exporter reads, of every row it reads
#             (contributions in the window, scores, identity_links, issue_requests,
#             notifications_sent), printed to /dev/null
#        (b)  sqlite3 -readonly: the SELECT DISTINCT over the window (Gitcord's own query)
#        (c)  gitcord-snapshot export on the full DB (fresh --out each run), default threads
#        (c1) the same on one thread (--read-threads 1): the alternative, side by side
#        (g)  only when GITCORD_SRC is set: Gitcord's own Python path on the full DB
#             (scripts/gitcord-export.py imports Gitcord's modules from GITCORD_SRC: its
#             config loader, SqliteStorage, _collect_snapshot_data and json.dumps writer),
#             and which of its seven files are byte-identical to ours
#        (a') and (d): the bare read and the exporter on the quarter-size DB
#   4. prints a Markdown table, the ratios, the machine and the command that produced them.
#
# Environment (defaults in brackets):
#   BENCH_CONTRIBUTIONS [1000000]  BENCH_USERS [20000]  BENCH_LINKS [20000]
#   BENCH_SCORE_ROWS [60000]  BENCH_ISSUE_REQUESTS [5000]  BENCH_NOTIFICATIONS [200000]
#   BENCH_ROLES [20000]  BENCH_DAYS [60]  BENCH_PERIOD_DAYS [30]
#   BENCH_AT [2025-01-31T00:00:00+00:00]  BENCH_SEED [1]  BENCH_REPS [3]
#   BENCH_BUILD [1]  BENCH_BIN [$CARGO_TARGET_DIR/release/gitcord-snapshot]
#   BENCH_DIR [$CARGO_TARGET_DIR/bench]  BENCH_QUARTER [1] (0 skips (a') and (d))
#   GITCORD_SRC [unset] a Gitcord checkout (has src/ghdcbot); adds row (g)
#   GITCORD_PYTHON [python3] a Python >= 3.11 with Gitcord's dependencies (pydantic>=2.5,
#     PyYAML>=6.0, python-dotenv, httpx); GITCORD_REPS [BENCH_REPS] runs of (g)
set -Eeuo pipefail
export LC_ALL=C
trap 'echo "bench-export: FAILED (exit $?) at line $LINENO: $BASH_COMMAND" >&2' ERR

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

CONTRIB=${BENCH_CONTRIBUTIONS:-1000000}
USERS=${BENCH_USERS:-20000}
LINKS=${BENCH_LINKS:-20000}
SCORE_ROWS=${BENCH_SCORE_ROWS:-60000}
ISSUE_REQUESTS=${BENCH_ISSUE_REQUESTS:-5000}
NOTIFICATIONS=${BENCH_NOTIFICATIONS:-200000}
ROLES=${BENCH_ROLES:-20000}
DAYS=${BENCH_DAYS:-60}
PERIOD_DAYS=${BENCH_PERIOD_DAYS:-30}
AT=${BENCH_AT:-2025-01-31T00:00:00+00:00}
SEED=${BENCH_SEED:-1}
REPS=${BENCH_REPS:-3}
BUILD=${BENCH_BUILD:-1}
QUARTER=${BENCH_QUARTER:-1}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BENCH_BIN:-$TARGET_DIR/release/gitcord-snapshot}
BENCH_DIR=${BENCH_DIR:-$TARGET_DIR/bench}
GITCORD_SRC=${GITCORD_SRC:-}
GITCORD_PYTHON=${GITCORD_PYTHON:-python3}
GITCORD_REPS=${GITCORD_REPS:-$REPS}
RUN_ID=00000000-0000-4000-8000-000000000001
GEN=$ROOT/scripts/gen-bench-db.py
TIME=/usr/bin/time

die() { echo "bench-export: ERROR: $*" >&2; exit 1; }
note() { echo "bench-export: $*" >&2; }

for tool in python3 sqlite3 sha256sum awk; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -x $TIME ]] || die "$TIME (GNU time) not found; apt-get install time"
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPS must be a positive integer"
[[ $CONTRIB =~ ^[0-9]+$ ]] || die "BENCH_CONTRIBUTIONS must be a non-negative integer"
[[ -n ${EPOCHREALTIME:-} ]] || die "bash >= 5 needed (EPOCHREALTIME)"
[[ $GITCORD_REPS =~ ^[1-9][0-9]*$ ]] || die "GITCORD_REPS must be a positive integer"
if [[ -n $GITCORD_SRC ]]; then
    [[ -f $GITCORD_SRC/src/ghdcbot/engine/snapshots.py ]] \
        || die "GITCORD_SRC=$GITCORD_SRC is not a Gitcord checkout (no src/ghdcbot/engine/snapshots.py)"
    "$GITCORD_PYTHON" -c 'import pydantic, yaml, dotenv, httpx' 2>/dev/null \
        || die "$GITCORD_PYTHON lacks Gitcord's dependencies (pydantic, PyYAML, python-dotenv, httpx); set GITCORD_PYTHON"
fi

# The command line that reproduces this run, printed beside the figures.
COMMAND=
for v in CARGO_TARGET_DIR BENCH_CONTRIBUTIONS BENCH_USERS BENCH_LINKS BENCH_SCORE_ROWS \
    BENCH_ISSUE_REQUESTS BENCH_NOTIFICATIONS BENCH_ROLES BENCH_DAYS BENCH_PERIOD_DAYS BENCH_AT \
    BENCH_SEED BENCH_REPS BENCH_BUILD BENCH_BIN BENCH_DIR BENCH_QUARTER GITCORD_SRC \
    GITCORD_PYTHON GITCORD_REPS; do
    if [[ -n ${!v+x} ]]; then COMMAND+="$v=${!v} "; fi
done
COMMAND+="scripts/bench-export.sh"

# The window the exporter reads, written with Gitcord's time rule (isoformat of aware UTC).
read -r AT_ISO START_ISO < <(python3 - "$AT" "$PERIOD_DAYS" <<'PY'
import sys
from datetime import datetime, timedelta, timezone
s = sys.argv[1].strip()
if s[-1:] in "Zz":
    s = s[:-1] + "+00:00"
at = datetime.fromisoformat(s)
if at.tzinfo is None:
    sys.exit("BENCH_AT needs a UTC offset")
at = at.astimezone(timezone.utc)
print(at.isoformat(), (at - timedelta(days=int(sys.argv[2]))).isoformat())
PY
)

# ---------------------------------------------------------------------------------------------
# 1. build
if [[ $BUILD != 0 ]]; then
    note "cargo build --release (may wait for the build directory lock)"
    cargo build --release || die "cargo build --release failed"
fi
[[ -x $BIN ]] || die "exporter binary $BIN not found (build it, or set BENCH_BIN)"

# ---------------------------------------------------------------------------------------------
# 2. data: generate_db N -> prints the folder holding state.db, config.yaml, roles.json
generate_db() {
    local n=$1 args key dir
    args=(--contributions "$n" --users "$USERS" --links "$LINKS" --score-rows "$SCORE_ROWS"
          --issue-requests "$ISSUE_REQUESTS" --notifications "$NOTIFICATIONS" --roles "$ROLES"
          --days "$DAYS" --period-days "$PERIOD_DAYS" --at "$AT" --seed "$SEED")
    key=$({ sha256sum <"$GEN"; printf '%s\n' "${args[@]}"; } | sha256sum | cut -c1-16)
    dir=$BENCH_DIR/db-$key
    if [[ -f $dir/.complete && -f $dir/state.db ]]; then
        note "reusing $dir ($n contributions)"
    else
        rm -rf "$dir"
        mkdir -p "$dir"
        note "generating $n contributions into $dir"
        local t0=$EPOCHREALTIME
        python3 "$GEN" "$dir/state.db" "${args[@]}" \
            --config-out "$dir/config.yaml" --roles-out "$dir/roles.json" >&2 \
            || die "generator failed"
        local t1=$EPOCHREALTIME
        printf '%s\n' "${args[@]}" >"$dir/args"
        awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", b - a }' >"$dir/gen-seconds"
        touch "$dir/.complete"
    fi
    printf '%s\n' "$dir"
}

mkdir -p "$BENCH_DIR"
FULL=$(generate_db "$CONTRIB")
if [[ $QUARTER != 0 ]]; then
    QDIR=$(generate_db $((CONTRIB / 4)))
fi

# ---------------------------------------------------------------------------------------------
# 3. timing
SCRATCH=$(mktemp -d "$BENCH_DIR/run.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT

# timed OUTFILE ERRFILE CMD...: one run; sets RUN_WALL (s) and RUN_RSS (KiB); returns CMD's status
timed() {
    local out=$1 err=$2 t0 t1 rc=0
    shift 2
    t0=$EPOCHREALTIME
    "$TIME" -f '%M' -o "$SCRATCH/rss" "$@" >"$out" 2>"$err" || rc=$?
    t1=$EPOCHREALTIME
    RUN_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    RUN_RSS=$(tail -n 1 "$SCRATCH/rss")
    [[ $RUN_RSS =~ ^[0-9]+$ ]] || RUN_RSS=0
    return "$rc"
}

ROWS=()  # "label|wall|rss_kib|baseline_key"
declare -A BEST_WALL=()
declare -A PEAK_RSS=()

# record KEY LABEL BASE: fold the REPS runs kept in W_LIST/R_LIST into a table row
record() {
    local key=$1 label=$2 base=$3 w r best=999999 peak=0
    for w in "${W_LIST[@]}"; do
        best=$(awk -v a="$w" -v b="$best" 'BEGIN { print (a < b) ? a : b }')
    done
    for r in "${R_LIST[@]}"; do
        if (( r > peak )); then peak=$r; fi
    done
    BEST_WALL[$key]=$best
    PEAK_RSS[$key]=$peak
    ROWS+=("$label|$best|$peak|$base|$key")
    note "$label: best ${best}s, peak RSS $((peak / 1024)) MiB (runs: ${W_LIST[*]})"
}

# bench_sql KEY LABEL BASE DB SQL: sqlite3 -readonly, output to /dev/null
bench_sql() {
    local key=$1 label=$2 base=$3 db=$4 sql=$5 i
    W_LIST=(); R_LIST=()
    for ((i = 0; i < REPS; i++)); do
        timed /dev/null "$SCRATCH/err" sqlite3 -readonly -batch "$db" "$sql" \
            || { cat "$SCRATCH/err" >&2; die "sqlite3 failed for $label"; }
        if [[ -s $SCRATCH/err ]]; then cat "$SCRATCH/err" >&2; die "sqlite3 wrote errors for $label"; fi
        W_LIST+=("$RUN_WALL"); R_LIST+=("$RUN_RSS")
    done
    record "$key" "$label" "$base"
}

# bench_export KEY LABEL BASE DIR [THREADS]: the exporter, fresh --out per run, output checked;
# THREADS sets --read-threads (default: the exporter's own)
bench_export() {
    local key=$1 label=$2 base=$3 dir=$4 threads=${5:-} i out snap n
    local extra=()
    if [[ -n $threads ]]; then extra=(--read-threads "$threads"); fi
    W_LIST=(); R_LIST=()
    for ((i = 0; i < REPS; i++)); do
        out=$(mktemp -d "$SCRATCH/out.XXXXXX")
        if ! timed "$SCRATCH/export.out" "$SCRATCH/export.err" \
            "$BIN" export --config "$dir/config.yaml" --state-db "$dir/state.db" \
            --roles-file "$dir/roles.json" --run-id "$RUN_ID" --at "$AT_ISO" --out "$out" \
            ${extra[@]+"${extra[@]}"}; then
            echo "----- exporter stdout -----" >&2; tail -n 20 "$SCRATCH/export.out" >&2
            echo "----- exporter stderr -----" >&2; tail -n 40 "$SCRATCH/export.err" >&2
            die "EXPORTER FAILED ($label): $BIN export ... --out $out"
        fi
        snap=$(find "$out/snapshots" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -n 1 || true)
        [[ -n $snap ]] || die "exporter exited 0 but wrote no snapshot directory under $out/snapshots"
        n=$(find "$snap" -maxdepth 1 -name '*.json' | wc -l)
        (( n == 7 )) || die "exporter wrote $n JSON files into $snap, expected 7"
        if (( i == 0 )); then
            check_contributors "$dir/state.db" "$snap/contributors.json"
            rm -rf "$SCRATCH/kept-$key"
            mv "$snap" "$SCRATCH/kept-$key"
        fi
        rm -rf "$out"
        W_LIST+=("$RUN_WALL"); R_LIST+=("$RUN_RSS")
    done
    record "$key" "$label" "$base"
}

# bench_gitcord KEY LABEL BASE DIR: Gitcord's own Python path (scripts/gitcord-export.py)
bench_gitcord() {
    local key=$1 label=$2 base=$3 dir=$4 i out snap
    W_LIST=(); R_LIST=()
    for ((i = 0; i < GITCORD_REPS; i++)); do
        out=$(mktemp -d "$SCRATCH/out.XXXXXX")
        if ! timed "$SCRATCH/gitcord.out" "$SCRATCH/gitcord.err" \
            "$GITCORD_PYTHON" "$ROOT/scripts/gitcord-export.py" --gitcord "$GITCORD_SRC" \
            --config "$dir/config.yaml" --state-db "$dir/state.db" \
            --roles-file "$dir/roles.json" --run-id "$RUN_ID" --at "$AT_ISO" --out "$out"; then
            tail -n 40 "$SCRATCH/gitcord.err" >&2
            die "GITCORD'S PYTHON PATH FAILED ($label)"
        fi
        snap=$(find "$out/snapshots" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -n 1 || true)
        [[ -n $snap ]] || die "Gitcord's path wrote no snapshot directory under $out/snapshots"
        if (( i == 0 )); then rm -rf "$SCRATCH/kept-$key"; mv "$snap" "$SCRATCH/kept-$key"; fi
        rm -rf "$out"
        W_LIST+=("$RUN_WALL"); R_LIST+=("$RUN_RSS")
    done
    record "$key" "$label" "$base"
}

# Cheap plausibility check of the exporter's output (not a conformance test): one
# contributors.json row per distinct user with a contribution in the window.
check_contributors() {
    local db=$1 file=$2 want got
    want=$(sqlite3 -readonly "$db" "SELECT COUNT(DISTINCT github_user) FROM contributions \
        WHERE created_at >= '$START_ISO' AND created_at <= '$AT_ISO'")
    got=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1], encoding="utf-8"))["data"]))' "$file") \
        || die "cannot read $file"
    if [[ $want != "$got" ]]; then
        note "WARNING: $file has $got rows, expected $want distinct users in the window"
    fi
}

WINDOW="created_at >= '$START_ISO' AND created_at <= '$AT_ISO'"
SQL_SCAN="SELECT count(*), sum(length(id) + length(github_user) + length(event_type) + length(repo)
  + length(created_at) + length(payload_json)) FROM contributions WHERE $WINDOW;"
SQL_BARE="SELECT id, github_user, event_type, repo, created_at, payload_json FROM contributions WHERE $WINDOW;
SELECT github_user, period_start, period_end, points, updated_at FROM scores;
SELECT discord_user_id, github_user, verified, verification_code, expires_at, created_at, verified_at, unlinked_at, github_user_normalized FROM identity_links;
SELECT request_id, discord_user_id, github_user, owner, repo, issue_number, issue_url, created_at, status FROM issue_requests;
SELECT dedupe_key, event_type, github_user, discord_user_id, repo, target, channel_id, sent_at FROM notifications_sent;"
SQL_DISTINCT="SELECT DISTINCT github_user, event_type, repo, created_at, payload_json FROM contributions WHERE $WINDOW;"

count() { sqlite3 -readonly "$1" "$2"; }
FULL_DB=$FULL/state.db
N_WIN=$(count "$FULL_DB" "SELECT count(*) FROM contributions WHERE $WINDOW")
N_DIST=$(count "$FULL_DB" "SELECT count(*) FROM (SELECT DISTINCT github_user, event_type, repo, created_at, payload_json FROM contributions WHERE $WINDOW)")
note "window [$START_ISO, $AT_ISO]: $N_WIN contribution rows, $N_DIST distinct"

cat "$FULL_DB" >/dev/null  # warm the page cache so every measurement reads from memory
bench_sql a0 "(a0) sqlite3 scan of the window, no output" a "$FULL_DB" "$SQL_SCAN"
bench_sql a "(a) sqlite3 bare read, all rows to /dev/null" a "$FULL_DB" "$SQL_BARE"
bench_sql b "(b) sqlite3 SELECT DISTINCT window to /dev/null" a "$FULL_DB" "$SQL_DISTINCT"
bench_export c "(c) gitcord-snapshot export" a "$FULL"
bench_export c1 "(c1) gitcord-snapshot export --read-threads 1" a "$FULL" 1
if ! cmp -s <(cd "$SCRATCH/kept-c" && cat ./*.json) <(cd "$SCRATCH/kept-c1" && cat ./*.json); then
    die "the export on one thread wrote other bytes than on several"
fi
if [[ -n $GITCORD_SRC ]]; then
    bench_gitcord g "(g) Gitcord's Python path (GITCORD_SRC)" a "$FULL"
    # Byte-identical, or the same rows in another order (rows that tie on Gitcord's ORDER BY
    # come in whatever order SQLite returns them there; ours break ties as the conformance
    # rules say), or different.
    SAME=(); REORDERED=(); DIFFERENT=()
    for f in meta identities scores contributors roles issue_requests notifications; do
        if cmp -s "$SCRATCH/kept-c/$f.json" "$SCRATCH/kept-g/$f.json"; then
            SAME+=("$f.json")
        elif python3 - "$SCRATCH/kept-c/$f.json" "$SCRATCH/kept-g/$f.json" <<'PY'
import json, sys
a, b = (json.load(open(p, encoding="utf-8")) for p in sys.argv[1:3])
rows = lambda d: sorted(json.dumps(r, sort_keys=True) for r in d.pop("data", []))
sys.exit(0 if (rows(a), a) == (rows(b), b) else 1)
PY
        then
            REORDERED+=("$f.json")
        else
            DIFFERENT+=("$f.json")
        fi
    done
fi
if [[ $QUARTER != 0 ]]; then
    cat "$QDIR/state.db" >/dev/null
    bench_sql aq "(a') sqlite3 bare read, quarter DB" aq "$QDIR/state.db" "$SQL_BARE"
    bench_export d "(d) gitcord-snapshot export, quarter DB" aq "$QDIR"
fi

# ---------------------------------------------------------------------------------------------
# 4. report
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
size_mib() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f", b / 1048576 }'; }

echo
echo "## gitcord-snapshot export benchmark"
echo
echo "- machine: $(nproc) CPUs, $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/^MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
echo "- sqlite3 $(sqlite3 --version | cut -d' ' -f1); binary: $BIN"
echo "- full DB: $FULL_DB ($(size_mib "$FULL_DB") MiB, $CONTRIB contributions, generated in $(cat "$FULL/gen-seconds" 2>/dev/null || echo '?') s)"
echo "  window [$START_ISO, $AT_ISO]: $N_WIN rows, $N_DIST distinct"
if [[ $QUARTER != 0 ]]; then
    echo "- quarter DB: $QDIR/state.db ($(size_mib "$QDIR/state.db") MiB, $((CONTRIB / 4)) contributions)"
fi
if [[ -n $GITCORD_SRC ]]; then
    echo "- Gitcord: $GITCORD_SRC ($(git -C "$GITCORD_SRC" rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout')), $("$GITCORD_PYTHON" --version 2>&1), best of $GITCORD_REPS runs"
fi
echo "- best wall time of $REPS runs; peak RSS = highest of the runs (GNU time %M)"
echo "- command: $COMMAND"
echo
echo "| what | wall s | peak RSS MiB | ratio to (a0) scan | ratio to (a) bare read |"
echo "| --- | ---: | ---: | ---: | ---: |"
ratio() { awk -v w="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", w / b; else print "n/a" }'; }
for row in "${ROWS[@]}"; do
    IFS='|' read -r label wall rss base key <<<"$row"
    scan=n/a
    if [[ $base == a ]]; then scan=$(ratio "$wall" "${BEST_WALL[a0]}"); fi
    printf '| %s | %.3f | %s | %s | %s |\n' "$label" "$wall" "$(mib "$rss")" "$scan" \
        "$(ratio "$wall" "${BEST_WALL[$base]}")"
done
echo
awk -v c="${BEST_WALL[c]}" -v c1="${BEST_WALL[c1]}" -v n="$(nproc)" 'BEGIN {
    printf "Exporter on its default threads (%d CPUs) vs one thread: %.3f s vs %.3f s (%.2fx), same bytes.\n",
        n, c, c1, (c > 0 ? c1 / c : 0)
}'
if [[ -n $GITCORD_SRC ]]; then
    echo
    awk -v g="${BEST_WALL[g]}" -v c="${BEST_WALL[c]}" -v rg="${PEAK_RSS[g]}" -v rc="${PEAK_RSS[c]}" 'BEGIN {
        printf "Exporter vs Gitcord'"'"'s Python path: %.1fx faster (%.3f s vs %.3f s), peak RSS %.1f vs %.1f MiB.\n",
            (c > 0 ? g / c : 0), c, g, rc / 1024, rg / 1024
    }'
    echo "Compared with Gitcord's files: byte-identical: ${SAME[*]:-none}; same rows, ties in another order: ${REORDERED[*]:-none}; different: ${DIFFERENT[*]:-none}."
fi
if [[ $QUARTER != 0 ]]; then
    echo
    awk -v c="${PEAK_RSS[c]}" -v d="${PEAK_RSS[d]}" -v wc="${BEST_WALL[c]}" -v wd="${BEST_WALL[d]}" 'BEGIN {
        printf "Exporter, 4x the contributions: peak RSS %.1f -> %.1f MB (x%.2f), wall %.3f -> %.3f s (x%.2f).\n",
            d / 1024, c / 1024, (d > 0 ? c / d : 0), wd, wc, (wd > 0 ? wc / wd : 0)
    }'
fi
