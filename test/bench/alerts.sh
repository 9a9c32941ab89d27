#!/usr/bin/env bash
# Alert latency with the background worker (SPEC 1.2 "Budgets and alerts";
# issue: p99 under 2 s with overage.rate_interval = 1), run by hand, never
# by CI:
#
#   bash test/bench/alerts.sh [crossings]     default 200
#
# Builds and installs the extension (under the test command's lock), starts
# a throwaway cluster with the library preloaded, the worker at a 1 s
# interval and track_commit_timestamp on, and then, one customer at a
# time, commits a call that takes the customer from an unused pool of 10
# minutes to 11 minutes: it reaches 80 % and 100 % of the pool, so the
# worker's next pass raises two pool alerts.  A second session meanwhile
# loads statements of 1000 calls of other customers, so the passes have
# work.  The latency of an alert is the commit time of the worker's
# transaction that stored it (when its NOTIFY is delivered) less the commit
# time of the crossing call, both from pg_xact_commit_timestamp.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=/usr/lib/postgresql/15/bin:$PATH
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
if [ "${1:-}" != --inside ]; then
	exec 9>/tmp/overage-tests.lock
	flock 9
	make -s PG_CONFIG="$PG_CONFIG" >/dev/null
	make -s PG_CONFIG="$PG_CONFIG" install >/dev/null
	D=$(mktemp -d /tmp/overage-alerts.XXXXXX); trap 'rm -rf "$D"' EXIT
	cp test/bench/alerts.sh "$D/"; chmod -R a+rX "$D"
	pg_virtualenv -v 15 -o shared_preload_libraries=overage -o overage.rate_interval=1 \
		-o overage.database=alertbench -o track_commit_timestamp=on \
		bash "$D/alerts.sh" --inside "${1:-200}"
	exit
fi
N=${2:-200}
psql() { command psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
psql -d postgres -c "CREATE DATABASE alertbench"
export PGDATABASE=alertbench
psql <<SQL
SET client_min_messages = warning;
CREATE EXTENSION overage;
INSERT INTO overage.service (service_id, name, unit_price) VALUES ('CALL', 'Calling', 0.60);
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES ('E5', '1', 'E5', 'IncludeOverage');
INSERT INTO overage.sku_service VALUES ('E5', '1', 'CALL', 10);
INSERT INTO overage.partner VALUES ('P1', 'Partner one');
INSERT INTO overage.customer SELECT 'A' || i, 'Alerted ' || i, 'US' FROM generate_series(1, $N) i;
INSERT INTO overage.customer SELECT 'L' || i, 'Loaded ' || i, 'US' FROM generate_series(1, 2000) i;
SELECT count(overage.purchase('P1', c.customer_id, 'E5', '1', 1, date_trunc('month', now()) - interval '1 month'))
  FROM overage.customer c;
SQL
for i in $(seq 1 30); do
	[ "$(psql -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'overage rating worker' AND datname = 'alertbench'")" = 1 ] && break
	sleep 1
done
echo "worker: $(psql -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'overage rating worker'") running, interval $(psql -c 'SHOW overage.rate_interval')"
# the month before this one, at its 2nd day: open, never in the future
month=$(psql -c "SELECT (date_trunc('month', now()) - interval '1 month')::date")

# background load: statements of 1000 calls of the L customers, until told to stop
touch /tmp/alerts-load.$$
( k=0; while [ -e /tmp/alerts-load.$$ ]; do
	psql -c "INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
			 SELECT 'L' || (1 + (g * 7 + $k) % 2000), 'CALL', 'bg', '$month'::timestamptz + interval '1 day' + (g + $k * 1000) * interval '1 second', 30
			   FROM generate_series(1, 1000) g"
	k=$((k + 1))
  done ) &
bg=$!

for i in $(seq 1 "$N"); do
	[ $((i % 25)) = 0 ] && echo "after $i crossings: $(psql -c "SELECT query FROM pg_stat_activity WHERE backend_type = 'overage rating worker'")"
	psql -c "INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
			 VALUES ('A$i', 'CALL', 'u', '$month'::timestamptz + interval '1 day', 660)"
	sleep 0.$(( RANDOM % 10 ))$(( RANDOM % 10 ))
done
for i in $(seq 1 30); do
	[ "$(psql -c "SELECT count(*) FROM overage.alert WHERE customer_id LIKE 'A%'")" -ge $((2 * N)) ] && break
	sleep 1
done
rm -f /tmp/alerts-load.$$; wait $bg
psql <<SQL
\pset format aligned
\pset tuples_only off
SELECT count(*) AS alerts, count(DISTINCT (a.customer_id, a.threshold)) AS distinct_alerts,
	   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY lat)::numeric, 3) AS p50_s,
	   round(percentile_cont(0.99) WITHIN GROUP (ORDER BY lat)::numeric, 3) AS p99_s,
	   round(max(lat)::numeric, 3) AS max_s
  FROM (SELECT a.customer_id, a.threshold,
			   extract(epoch FROM pg_xact_commit_timestamp(a.xmin) - pg_xact_commit_timestamp(u.xmin)) AS lat
		  FROM overage.alert a JOIN overage.usage u ON u.customer_id = a.customer_id
		 WHERE a.customer_id LIKE 'A%') a;
SELECT count(*) AS background_calls FROM overage.usage WHERE user_id = 'bg';
SELECT sum(calls) AS calls, sum(rated_calls) AS rated FROM overage.rating_status();
SQL
echo "expected: $((2 * N)) alerts ($N crossings of 80 % and 100 %), each once"
