#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds with
# warnings as errors, installs the extension, starts a throwaway PostgreSQL
# 15 cluster with pg_virtualenv and runs every suite against it:
#
#   pg_regress            sql/*.sql against expected/*.out
#   pg_isolation_regress  test/isolation/specs/*.spec
#   scripts               test/scripts/*.sh (each exits 0 on success)
#
# Ends with the line "N passed, N failed" and exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash test/install-deps.sh
export PATH=/usr/lib/postgresql/15/bin:$PATH
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}

# Installing into the server's directories is global to the machine: take a
# lock so that two checkouts testing at once do not swap each other's build.
exec 9>/tmp/overage-tests.lock
flock 9

make -s clean >/dev/null
make -s PG_CONFIG="$PG_CONFIG" COPT=-Werror
make -s PG_CONFIG="$PG_CONFIG" install >/dev/null

# pg_virtualenv runs as root; the cluster belongs to postgres.  Let it
# write results into the tree.
chmod -R a+rwX . 2>/dev/null || true
pg_virtualenv -v 15 bash test/run-suites.sh
