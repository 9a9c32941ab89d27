#!/usr/bin/env bash
# Benchmark of the metering half, run by hand (never by CI):
#
#   bash test/bench/run.sh [calls]        default 1000000
#
# Builds and installs the extension (under the same machine-wide lock as
# test/run-tests.sh, held for the whole run so no other checkout swaps the
# build under us), starts a throwaway PostgreSQL 15 cluster with
# pg_virtualenv and runs test/bench/bench.sh in it.  Prints ratios measured
# side by side in one run on the same rows, and exits non-zero when the
# extension and the plain-SQL formulation disagree on any line.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=/usr/lib/postgresql/15/bin:$PATH
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}

exec 9>/tmp/overage-tests.lock
flock 9
make -s PG_CONFIG="$PG_CONFIG" >/dev/null
make -s PG_CONFIG="$PG_CONFIG" install >/dev/null
# the cluster's user reads the scripts from a copy: the checkout's modes
# stay as they are
BENCH=$(mktemp -d /tmp/overage-bench.XXXXXX)
trap 'rm -rf "$BENCH"' EXIT
cp -R test/bench/. "$BENCH"
chmod -R a+rX "$BENCH"
pg_virtualenv -v 15 bash "$BENCH/bench.sh" "${1:-1000000}"
