#!/usr/bin/env bash
# Installs what building and testing overage needs on a Debian machine, as
# root, with apt-get: the PostgreSQL 15 server, its server headers and PGXS
# (postgresql-server-dev-15, which also ships pg_regress and
# pg_isolation_regress), a C compiler and make, and python3 for the
# model-based test.  Does nothing when everything is there already.
set -euo pipefail

PGV=15
need=()
[ -x /usr/lib/postgresql/$PGV/bin/postgres ] || need+=(postgresql-$PGV)
[ -x /usr/lib/postgresql/$PGV/bin/pg_config ] || need+=(postgresql-server-dev-$PGV)
[ -f /usr/share/postgresql/$PGV/extension/pg_stat_statements.control ] || need+=(postgresql-contrib)
command -v pg_virtualenv >/dev/null || need+=(postgresql-common)
command -v gcc >/dev/null || need+=(gcc)
command -v make >/dev/null || need+=(make)
command -v python3 >/dev/null || need+=(python3)

if [ ${#need[@]} -gt 0 ]; then
	echo "install-deps: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
