#!/usr/bin/env bash
# What fsync costs a push (issue 9, item 5). The product always turns on libgit2's
# GIT_OPT_ENABLE_FSYNC_GITDIR; there is no knob to turn it off. For the comparison this runs
# the same pushes twice, as shipped and under eatmydata (apt package `eatmydata`), whose
# LD_PRELOAD makes fsync/fdatasync no-ops, and reports per run:
#   * the fsync + fdatasync calls (strace -c -f, a separate pass so tracing does not skew times);
#   * the wall time, median and mean.
#
#   scripts/bench-fsync.sh [RUNS]        (default 30; needs strace and eatmydata)
#
# Two modes: `commit` (push --no-push: only the clone is written) and `push` (into a local
# bare remote, which our own process writes too, so its files are fsynced as well).
# BIN defaults to target/release/gitcord-snapshot under CARGO_TARGET_DIR (built if missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-30}
target=${CARGO_TARGET_DIR:-target}
bin=${BIN:-$target/release/gitcord-snapshot}
if [[ -z ${BIN:-} ]]; then cargo build --locked --release --quiet; fi
for tool in strace eatmydata; do
    command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install $tool)" >&2; exit 1; }
done
bin=$(realpath "$bin")
case=fixtures/conformance/basic
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One series of $runs pushes into a fresh clone (and a fresh bare remote in `push` mode).
# $1: mode, $2: label, $3...: command prefix (empty, eatmydata, strace ...).
series() {
    local mode=$1 label=$2
    shift 2
    local dir=$work/$mode-$label-$RANDOM
    mkdir -p "$dir"
    cp "$case/config.yaml" "$case/state.db" "$case/roles.json" "$dir/"
    local extra=(--no-push)
    if [[ $mode == push ]]; then
        git init -q --bare "$dir/remote.git"
        extra=(--remote "$dir/remote.git")
    fi
    local n
    for ((n = 1; n <= runs; n++)); do
        local t0 t1
        t0=$(date +%s%N)
        (cd "$dir" && "$@" "$bin" -q push --config config.yaml --roles-file roles.json \
            --clone-dir clone --run-id "$(printf '%08x-0000-4000-8000-000000000000' "$n")" \
            --at "$(date -u -d "@$((1706702400 + n * 3600))" +%Y-%m-%dT%H:%M:%S+00:00)" \
            "${extra[@]}" >/dev/null)
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000))
    done
}

stats() { # microseconds on stdin -> "median X ms, mean Y ms"
    sort -n | awk '{a[NR]=$1; s+=$1} END {printf "median %.1f ms, mean %.1f ms", a[int((NR+1)/2)]/1000, s/NR/1000}'
}

count_fsyncs() { # $1 mode, $2 label, $3... prefix: total fsync+fdatasync calls over the series
    local mode=$1 label=$2
    shift 2
    local dir=$work/trace-$mode-$label
    mkdir -p "$dir"
    # Each run traced into its own file; strace -c's table has calls in column 4.
    wrapper=$dir/wrap.sh
    cat >"$wrapper" <<WRAP
#!/usr/bin/env bash
exec strace -f -qq -c -o "$dir/run-\$\$-\$RANDOM" -e trace=fsync,fdatasync $* "\$@"
WRAP
    chmod +x "$wrapper"
    series "$mode" "$label" "$wrapper" >/dev/null
    cat "$dir"/run-* | awk '$NF == "fsync" || $NF == "fdatasync" {c += $4} END {print c + 0}'
}

echo "fsync cost of gitcord-snapshot push: $runs runs per series, $(nproc) CPU(s), $(df -T "$work" | awk 'NR==2 {print $2}') at $work"
for mode in commit push; do
    on=$(count_fsyncs "$mode" on)
    off=$(count_fsyncs "$mode" off eatmydata)
    t_on=$(series "$mode" on | stats)
    t_off=$(series "$mode" off eatmydata | stats)
    printf '%-7s as shipped (fsync): %s per run; fsync+fdatasync calls per run: %s\n' \
        "$mode" "$t_on" "$(awk -v c="$on" -v r="$runs" 'BEGIN {printf "%.1f", c / r}')"
    printf '%-7s eatmydata (no-op):  %s per run; fsync+fdatasync calls reaching the disk: %s\n' \
        "$mode" "$t_off" "$(awk -v c="$off" -v r="$runs" 'BEGIN {printf "%.1f", c / r}')"
done
