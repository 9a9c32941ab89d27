#!/usr/bin/env bash
# The month close on a Citus cluster (coordinator + two workers, one
# machine) against one node, side by side; by hand, never by CI:
#
#   PATH=/opt/pg-citus/usr/lib/postgresql/15/bin:$PATH bash test/bench/citus_close.sh [calls]
#
# calls: default 1,000,000.  Starts a cluster of its own with
# test/citus/cluster.sh (port BENCH_PORT, default 55436, and the two after
# it), stopped at the end whatever happens.  The same month is loaded into
# two databases of the coordinator's server: bench_single (overage alone:
# one node) and bench_cluster (overage distributed over the two workers,
# 32 shards), 2,000 customers with a licence each, calls spread over the
# month.  Times, each in its database: the load (one INSERT ... SELECT),
# preview_month, VACUUM ANALYZE of usage, preview_month again and
# close_month.  Both databases' lines are compared: the
# close must write the same lines.  The machine's cores are shared by the
# three servers of the cluster, so this measures the overhead of the
# distribution more than its gain.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
CALLS=${1:-1000000}
export CITUS_PORT=${BENCH_PORT:-55436}
DIR=$(mktemp -d /tmp/overage-citus-bench.XXXX)
chmod 755 "$DIR"
trap '"$top/test/citus/cluster.sh" stop "$DIR"; rm -rf "$DIR"' EXIT
trap 'exit 1' INT TERM HUP

make -s -C "$top" PG_CONFIG="$(command -v pg_config)" >/dev/null
make -s -C "$top" PG_CONFIG="$(command -v pg_config)" install >/dev/null
CITUS_DB=bench_cluster "$top/test/citus/cluster.sh" start "$DIR" >/dev/null
. "$DIR/env"
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -d postgres -c "CREATE DATABASE bench_single"

# ms DB SQL: the statement's wall time in milliseconds
ms() {
	local db=$1 sql=$2 t0 t1
	t0=$(date +%s%N)
	q -d "$db" -c "SET timezone = 'UTC'" -c "$sql" >/dev/null
	t1=$(date +%s%N)
	echo $(( (t1 - t0) / 1000000 ))
}

setup="
SET client_min_messages = warning;
INSERT INTO overage.service VALUES ('CALL', 'Calling', 'Minute', 0.015, 'USD');
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES ('E5', '1', 'E5', 'IncludeOverage');
INSERT INTO overage.sku_service VALUES ('E5', '1', 'CALL', 120);
INSERT INTO overage.partner VALUES ('P1', 'Contoso'), ('P2', 'Fabrikam');
INSERT INTO overage.customer SELECT 'C' || i, 'Customer ' || i, 'US' FROM generate_series(1, 2000) i;
SELECT count(overage.purchase(CASE WHEN i % 2 = 0 THEN 'P1' ELSE 'P2' END, 'C' || i, 'E5', '1',
							  1 + i % 3, '2026-09-20 00:00+00'))
  FROM generate_series(1, 2000) i;"
load="INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
SELECT 'C' || (1 + i % 2000), 'CALL', 'u' || (i % 50),
	   '2026-10-01 00:00+00'::timestamptz + (i::double precision / $CALLS) * interval '30 days',
	   30 + (i::bigint * 7919) % 1800
  FROM generate_series(1, $CALLS) i"

q -d bench_single -c "CREATE EXTENSION overage" -c "$setup" >/dev/null
q -d bench_cluster -c "CREATE EXTENSION overage" >/dev/null
q -d bench_cluster -c "SELECT overage.distribute(32)" >/dev/null
q -d bench_cluster -c "$setup" >/dev/null

printf '%-28s %14s %14s\n' "$CALLS calls, 2,000 customers" "one node (ms)" "cluster (ms)"
# preview right after the load (the shards' statistics and visibility maps
# not made yet: the planner of each shard's month scan is blind), then
# after VACUUM ANALYZE of usage (on the cluster: of every shard), as
# autovacuum has done by the end of a month loaded day by day
for step in load preview vacuum preview2 close; do
	case $step in
	load) sql=$load ;;
	preview|preview2) sql="SELECT count(*) FROM overage.preview_month('2026-10-01')" ;;
	vacuum) sql="VACUUM ANALYZE overage.usage" ;;
	close) sql="SELECT overage.close_month('2026-10-01')" ;;
	esac
	a=$(ms bench_single "$sql")
	b=$(ms bench_cluster "$sql")
	case $step in
	preview) label="preview (right after load)" ;;
	vacuum) label="VACUUM ANALYZE usage" ;;
	preview2) label="preview (after VACUUM)" ;;
	*) label=$step ;;
	esac
	printf '%-28s %14s %14s\n' "$label" "$a" "$b"
done

# the same lines on both
lines="SELECT md5(string_agg(format('%s %s %s %s %s %s', customer_id, service_id, partner_id,
		overage_seconds, amount, currency), ',' ORDER BY customer_id, service_id, partner_id, overage_seconds))
	   FROM overage.charge"
a=$(q -d bench_single -c "$lines"); b=$(q -d bench_cluster -c "$lines")
n=$(q -d bench_single -c "SELECT count(*) FROM overage.charge")
if [ "$a" = "$b" ]; then echo "charge lines: $n, identical"; else echo "charge lines DIFFER"; exit 1; fi
