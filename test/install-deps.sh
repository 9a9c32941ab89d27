#!/usr/bin/env bash
# Installs what building, testing and the demo need on a Debian machine, as
# root, with apt-get.  It tests for each thing the commands use, not for a
# package name that might be half there (postgresql-client-15 alone ships
# pg_config, but not the server headers):
#
#   the PostgreSQL 15 server           postgresql-15
#   server headers and PGXS, which     postgresql-server-dev-15, at the
#     ship pg_regress and              server's own version when Debian
#     pg_isolation_regress             still serves it
#   pg_virtualenv                      postgresql-common
#   plpgsql_check (test command)       postgresql-15-plpgsql-check
#   a C compiler, make, flock          gcc, make, util-linux
#   python3 (model tests)              python3
#
# Does nothing when everything is there already.  Usage:
#   bash test/install-deps.sh           what the test command needs
#   bash test/install-deps.sh --demo    what the demo needs (no plpgsql_check)
set -euo pipefail

PGV=15
BIN=/usr/lib/postgresql/$PGV/bin
want_check=yes
[ "${1:-}" = --demo ] && want_check=no

need=()
[ -x $BIN/postgres ] || need+=(postgresql-$PGV)
command -v pg_virtualenv >/dev/null || need+=(postgresql-common)
command -v gcc >/dev/null || need+=(gcc)
command -v make >/dev/null || need+=(make)
command -v flock >/dev/null || need+=(util-linux)
command -v python3 >/dev/null || need+=(python3)

# The build needs postgres.h where pg_config says the server headers are, and
# the PGXS makefile pg_config names; the tests need pg_regress and
# pg_isolation_regress beside it.
devel_ok() {
	[ -x $BIN/pg_config ] || return 1
	local inc pgxs
	inc=$($BIN/pg_config --includedir-server) || return 1
	pgxs=$($BIN/pg_config --pgxs) || return 1
	[ -f "$inc/postgres.h" ] && [ -f "$pgxs" ] &&
		[ -x "$(dirname "$pgxs")/../test/regress/pg_regress" ] &&
		[ -x "$(dirname "$pgxs")/../test/isolation/pg_isolation_regress" ]
}
devel_ok || need+=(postgresql-server-dev-$PGV)

if [ $want_check = yes ] &&
   [ ! -f /usr/share/postgresql/$PGV/extension/plpgsql_check.control ]; then
	need+=(postgresql-$PGV-plpgsql-check)
fi

[ ${#need[@]} -eq 0 ] && exit 0

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${need[*]}"
apt-get update -qq

# Headers of the very version of the installed server where Debian still
# serves it (a newer minor's headers may declare what the older server does
# not export); otherwise the newest, with the server brought to it.
pkgs=()
server=$(dpkg-query -W -f='${Version}' postgresql-$PGV 2>/dev/null || true)
for p in "${need[@]}"; do
	if [ "$p" = postgresql-server-dev-$PGV ] && [ -n "$server" ]; then
		if apt-cache madison postgresql-server-dev-$PGV | grep -qF "| $server |"; then
			p="postgresql-server-dev-$PGV=$server"
		else
			pkgs+=(postgresql-$PGV)
		fi
	fi
	pkgs+=("$p")
done
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null

devel_ok || { echo "install-deps: PostgreSQL $PGV server headers or PGXS still missing" >&2; exit 1; }
