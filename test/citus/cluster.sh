#!/usr/bin/env bash
# test/citus/cluster.sh start|stop|status DIR -- a Citus coordinator and two
# workers on this machine, for the scale-out tests
#
#   cluster.sh start DIR   initdb DIR/coord, DIR/w1, DIR/w2 (unless they exist),
#                          shared_preload_libraries = 'citus', listen on
#                          127.0.0.1 and a unix socket in DIR, start them as
#                          postgres, create the database $CITUS_DB (default
#                          citus_test) with CREATE EXTENSION citus on all
#                          three, register the coordinator and the workers;
#                          writes DIR/env (PGHOST PGPORT PGUSER PGDATABASE of
#                          the coordinator, W1PORT, W2PORT) to source
#   cluster.sh stop DIR    stops all three (-m immediate), whatever state they
#                          are in; never fails.  Call it from a trap.
#   cluster.sh status DIR  pg_ctl status of each node
#
# Uses the PostgreSQL binaries on PATH (pg_ctl, initdb, psql): put the bin
# directory of the installation holding Citus first, e.g.
#   PATH=/opt/pg-citus/usr/lib/postgresql/15/bin:$PATH
# Ports: $CITUS_PORT (default 55430) for the coordinator, +1 and +2 for the
# workers.  Run as root (the nodes run as postgres) or as the user owning DIR.
set -euo pipefail

cmd=${1:?usage: cluster.sh start|stop|status DIR}
DIR=${2:?usage: cluster.sh start|stop|status DIR}
BASE=${CITUS_PORT:-55430}
DB=${CITUS_DB:-citus_test}
NODES="coord w1 w2"

port_of() { case $1 in coord) echo $BASE ;; w1) echo $((BASE + 1)) ;; w2) echo $((BASE + 2)) ;; esac; }

# run a command as the owner of the servers: postgres when we are root
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		# keep PATH: the binaries of a private installation come first
		su postgres -s /bin/bash -c "PATH='$PATH'; $(printf '%q ' "$@")"
	else
		"$@"
	fi
}

stop_all() {
	local n
	for n in $NODES; do
		if [ -f "$DIR/$n/postmaster.pid" ]; then
			as_pg pg_ctl -D "$DIR/$n" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
		fi
	done
	# a postmaster that pg_ctl could not stop (pid file gone, say): by its pid
	for n in $NODES; do
		if [ -f "$DIR/$n/postmaster.pid" ]; then
			pid=$(head -1 "$DIR/$n/postmaster.pid" 2>/dev/null || true)
			if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
				kill -QUIT "$pid" 2>/dev/null || true
			fi
		fi
	done
	return 0
}

psql_on() {	# psql_on PORT DB SQL...
	local port=$1 db=$2; shift 2
	as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$port" -U postgres -d "$db" "$@"
}

case $cmd in
stop)
	stop_all
	exit 0
	;;
status)
	for n in $NODES; do
		echo "$n (port $(port_of $n)): $(as_pg pg_ctl -D "$DIR/$n" status 2>&1 | head -1)"
	done
	exit 0
	;;
start) ;;
*) echo "usage: cluster.sh start|stop|status DIR" >&2; exit 2 ;;
esac

command -v pg_ctl >/dev/null || { echo "cluster.sh: pg_ctl not on PATH" >&2; exit 1; }
libdir=$(pg_config --pkglibdir 2>/dev/null || true)
if [ -n "$libdir" ] && [ ! -f "$libdir/citus.so" ]; then
	echo "cluster.sh: no citus.so in $libdir (run test/citus/build-citus.sh with PG_CONFIG=$(command -v pg_config))" >&2
	exit 1
fi

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
# unix socket paths are limited to 107 bytes
[ ${#DIR} -le 80 ] || { echo "cluster.sh: DIR too long for a unix socket path: $DIR" >&2; exit 1; }
[ "$(id -u)" = 0 ] && chown postgres: "$DIR"
chmod 755 "$DIR"

# a failed start leaves nothing running
trap 'rc=$?; if [ $rc -ne 0 ]; then echo "cluster.sh: start failed; stopping" >&2; stop_all; fi' EXIT

for n in $NODES; do
	port=$(port_of $n)
	if [ ! -f "$DIR/$n/PG_VERSION" ]; then
		as_pg initdb -A trust -U postgres -E UTF8 --locale=C -D "$DIR/$n" >"$DIR/$n.initdb.log" 2>&1 \
			|| { cat "$DIR/$n.initdb.log" >&2; exit 1; }
		cat >> "$DIR/$n/postgresql.conf" <<CONF

# test/citus/cluster.sh
shared_preload_libraries = 'citus'
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
max_prepared_transactions = 100
shared_buffers = 64MB
log_min_messages = warning
log_line_prefix = '%m [%p] $n '
citus.shard_replication_factor = 1
CONF
	fi
	if ! as_pg pg_ctl -D "$DIR/$n" status >/dev/null 2>&1; then
		as_pg pg_ctl -D "$DIR/$n" -l "$DIR/$n.log" -w -t 60 start >/dev/null \
			|| { tail -20 "$DIR/$n.log" >&2; exit 1; }
	fi
done

for n in $NODES; do
	port=$(port_of $n)
	if [ -z "$(psql_on $port postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
		psql_on $port postgres -c "CREATE DATABASE $DB"
	fi
	psql_on $port "$DB" -c "CREATE EXTENSION IF NOT EXISTS citus"
done

# the nodes reach each other over TCP on 127.0.0.1 (trust, as initdb -A trust)
psql_on $BASE "$DB" -o /dev/null <<SQL
SELECT citus_set_coordinator_host('127.0.0.1', $BASE);
SELECT citus_add_node('127.0.0.1', $((BASE + 1)))
 WHERE NOT EXISTS (SELECT 1 FROM pg_dist_node WHERE nodeport = $((BASE + 1)));
SELECT citus_add_node('127.0.0.1', $((BASE + 2)))
 WHERE NOT EXISTS (SELECT 1 FROM pg_dist_node WHERE nodeport = $((BASE + 2)));
SQL

cat > "$DIR/env" <<ENV
PGHOST=$DIR
PGPORT=$BASE
PGUSER=postgres
PGDATABASE=$DB
W1PORT=$((BASE + 1))
W2PORT=$((BASE + 2))
export PGHOST PGPORT PGUSER PGDATABASE
ENV
chmod 644 "$DIR/env"
echo "cluster.sh: coordinator 127.0.0.1:$BASE, workers :$((BASE + 1)) :$((BASE + 2)); database $DB; source $DIR/env"
psql_on $BASE "$DB" -c "SELECT nodeid, nodename, nodeport, groupid, noderole, shouldhaveshards FROM pg_dist_node ORDER BY nodeid"
