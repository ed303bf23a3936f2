#!/bin/sh
# The backup benchmark (issue 18) over the real TLS test server, in one run on the 1M-row
# database of scripts/gen-bench-db.py (generated once into target/bench/backup-db-N/):
#   1. the first push, which backs up every row, and the same push with snapshots.backup: false;
#   2. an incremental push after what one Gitcord run does (1,000 new contributions, a new score
#      row per scored user, 50 notifications, issue requests and links changed, the cursor moved),
#      with the bytes pushed and the remote's growth beside the yardstick (the changed rows as
#      `sqlite3 .dump` INSERT statements, gzip -6);
#   3. a push where nothing changed;
#   4. restore --snapshot latest from a fresh `git clone --bare`, verify --prove-restore latest,
#      and verify of every backup.
# See tests/it/backup.rs (bench_backup); BENCH_PERF_DIR=<dir> records each push with perf. Needs what the integration tests need
# (scripts/install-test-deps.sh) and python3. It asserts nothing about time.
#
#   scripts/bench-backup.sh
#   BENCH_CONTRIBUTIONS=100000 scripts/bench-backup.sh      # a quicker run
set -eu
cd "$(dirname "$0")/.."
echo "command: BENCH_CONTRIBUTIONS=${BENCH_CONTRIBUTIONS:-1000000} $0" >&2
exec cargo test --release --locked --test it backup::bench_backup -- --ignored --nocapture --test-threads=1
