#!/bin/sh
# The push benchmark over the real TLS test server (nginx + fcgiwrap + git http-backend with
# basic auth, tests/it/support/git_server.rs): synthetic histories of 10, 1,000 and 8,760
# hourly snapshots built with `git fast-import`, then our `push` against git's
# add + commit + pull --rebase + push, interleaved in one run. See tests/it/bench.rs. After the
# table it prints bytes sent per push beside git's at each size and our CPU per run at the
# largest size against the smallest (issue 19's targets: <= 1.5x each).
#
#   scripts/bench-push-https.sh                   # all three sizes, 7 runs each
#   BENCH_SIZES=10,8760 BENCH_RUNS=9 scripts/bench-push-https.sh
#
# Needs what the integration tests need (scripts/install-test-deps.sh). Prints a table; it
# asserts nothing about time, and CI never runs it (the test is #[ignore]d).
set -eu
cd "$(dirname "$0")/.."
exec cargo test --release --locked --test it bench:: -- --ignored --nocapture --test-threads=1
