#!/usr/bin/env bash
# citus: overage distributed on a Citus coordinator and two workers on
# loopback (test/citus/run.sh, README "Scaling out"): distribute(), the
# holder and metering models and the holder isolation specs through the
# coordinator, row-level security, a worker killed during close_month.
#
# Runs inside pg_virtualenv, as root or not; the cluster is its own (ports
# 55433-55435, a temporary directory, nodes run as postgres when root),
# stopped at the end whatever happens.  Citus: the one installed in
# PG_CONFIG's PostgreSQL when $(pg_config --pkglibdir)/citus.so exists,
# else built from the vendored tarball first (test/citus/build-citus.sh,
# about 15 minutes).  The extension is the one the test command installed.
set -euo pipefail
cd "$(dirname "$0")/../.."

export PG_CONFIG=${PG_CONFIG:-$(command -v pg_config)}
export PATH="$("$PG_CONFIG" --bindir):$PATH"
if [ ! -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ]; then
	bash test/citus/build-citus.sh
fi
CITUS_PORT=${CITUS_PORT:-55433} CITUS_NO_INSTALL=${CITUS_NO_INSTALL:-1} exec bash test/citus/run.sh
