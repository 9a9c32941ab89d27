#!/usr/bin/env bash
# crash_rate: kill -9 in the middle of rate_pending() (SPEC 1.2 "Live
# rating": the rated state and the alerts are all or nothing, and each
# alert is raised exactly once "also under ... crashes").
#
# (a) In the throwaway cluster (pg_virtualenv / pgpriv): a month of
#     CRASH_RATE_CALLS calls (default 1,000,000: 2,000 customers, 500 calls
#     each), 100 budgets.  preview_month is recorded, and a copy of the
#     database is made (CREATE DATABASE ... TEMPLATE) before any rating.
#     A clean rate_pending() in the copy is timed (under a second here);
#     rate_pending() is started in a backend and that backend killed with
#     kill -9 halfway through (after half the clean run's time).  After
#     crash recovery: no rated state (rated_group, rated_line empty), every usage_pending row still there,
#     usage_month untouched, no alert, verify() passes.  Then rate_pending()
#     succeeds, rates every call, preview_month equals the recorded lines,
#     and the alerts equal those a clean run raises in the copy (every
#     column but alert_id and raised_at), each once -- and, by hand: each
#     customer's pool crosses 80 % and 100 % (500 calls of 30..929 s,
#     about 4,000 minutes, against pools of 120 to 360), and each budget
#     (5.00 USD, thresholds 50 and 100) both: 2,000 + 2,000 + 100 + 100.
#     A further rate_pending() rates nothing and raises nothing.
# (b) The same month in a cluster of its own with
#     shared_preload_libraries = 'overage' (as worker.sh): loaded with
#     overage.rate_interval = 0, then turned to 1 by a reload; the worker
#     is killed with kill -9 halfway through its pass (as long as the clean
#     run took), after rate_interval was set back to 0 by a reload while
#     the pass ran (the postmaster takes it at once, the worker only
#     between passes), so that the worker the postmaster starts again
#     after the crash idles.  After recovery: nothing half-written (as in
#     (a)), verify() passes.  Then rate_interval = 1 again: within 60 s the
#     new worker has rated every call (rating_status), preview_month equals
#     the lines recorded before, and the alerts equal the clean run's of
#     (a), each once.
#
# Prints what it checked; exits non-zero on the first failure.  Removes its
# databases, and stops and removes its cluster, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/../.."

DB=overage_crash_rate
REF=overage_crash_rate_ref
CALLS=${CRASH_RATE_CALLS:-1000000}
WORK=$(mktemp -d)
chmod 777 "$WORK"
BINDIR=$(dirname "$(command -v initdb)")
WPORT=$((PGPORT + 3))
WHOST=$WORK/socket
LOG=$WORK/server.log
BG=

as_owner() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cleanup() {
	if [ -n "$BG" ]; then kill "$BG" 2>/dev/null || true; wait "$BG" 2>/dev/null || true; fi
	if [ -f "$WORK/data/postmaster.pid" ]; then
		as_owner "$BINDIR/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
	fi
	rm -rf "$WORK"
	dropdb --if-exists "$DB" >/dev/null 2>&1 || true
	dropdb --if-exists "$REF" >/dev/null 2>&1 || true
}
trap cleanup EXIT

fail() {
	if [ -f "$LOG" ]; then
		echo "--- the last lines of the worker cluster's log:" >&2
		tail -30 "$LOG" >&2
	fi
	echo "crash_rate: FAILED: $*" >&2
	exit 1
}

# q DB ARGS...: a query against the throwaway cluster
q() { local d=$1; shift; psql -X -q -At -v ON_ERROR_STOP=1 -d "$d" "$@"; }
# wq DB ARGS...: against the worker's cluster
wq() { local d=$1; shift; psql -X -q -At -v ON_ERROR_STOP=1 -h "$WHOST" -p "$WPORT" -d "$d" "$@"; }

# the month: 2,000 customers of two partners, pools 120 to 360 minutes,
# CALLS calls spread over October, 100 budgets of 5.00 USD
LOAD_SQL="
SET timezone = 'UTC';
CREATE EXTENSION overage;
INSERT INTO overage.service VALUES ('PSTN-DOM', 'Domestic Calling', 'Minute', 0.0150, 'USD');
INSERT INTO overage.sku (product_id, sku_id, title, tags)
	VALUES ('E5', '0002', 'Microsoft 365 E5 with Calling Plan', 'IncludeOverage');
INSERT INTO overage.sku_service VALUES ('E5', '0002', 'PSTN-DOM', 120);
INSERT INTO overage.partner VALUES ('P1', 'Contoso'), ('P2', 'Fabrikam');
INSERT INTO overage.customer
	SELECT format('C%s', i), format('Customer %s', i), 'SE' FROM generate_series(1, 2000) i;
SELECT count(overage.purchase(CASE WHEN i % 2 = 0 THEN 'P1' ELSE 'P2' END,
							  format('C%s', i), 'E5', '0002', 1 + i % 3,
							  '2026-09-20 00:00+00'))
  FROM generate_series(1, 2000) i;
SELECT count(overage.set_budget(CASE WHEN i % 2 = 0 THEN 'P1' ELSE 'P2' END,
								format('C%s', i), 5.00, '{50,100}'))
  FROM generate_series(1, 100) i;
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
SELECT format('C%s', 1 + n % 2000), 'PSTN-DOM', format('u%s', n % 7),
	   '2026-10-01 00:00+00'::timestamptz + (n % 2592000) * interval '1 second',
	   30 + (n::bigint * 7919) % 900
  FROM generate_series(1, $CALLS) n;
VACUUM ANALYZE overage.usage;
"

# what rating has written, and what it has not taken in yet
STATE_SQL="SELECT (SELECT count(*) FROM overage.rated_group) || ' rated groups, ' ||
	(SELECT count(*) FROM overage.rated_line) || ' rated lines, ' ||
	(SELECT count(*) FROM overage.usage_pending) || ' pending rows of ' ||
	(SELECT coalesce(sum(n), 0) FROM overage.usage_pending p, unnest(p.calls) n) || ' calls, ' ||
	(SELECT count(*) FROM overage.usage_month) || ' usage_month rows, ' ||
	(SELECT count(*) FROM overage.alert) || ' alerts'"
# the alerts without alert_id and raised_at, in a fixed order
ALERTS_SQL="SELECT month, kind, partner_id, customer_id, service_id, threshold, value, limit_value, crossed_at
	FROM overage.alert ORDER BY kind, customer_id, service_id, threshold"
# per (kind, threshold): how many alerts, how many distinct keys
PER_THRESHOLD_SQL="SELECT string_agg(format('%s %s: %s', kind, threshold, n), ', ' ORDER BY kind DESC, threshold)
	FROM (SELECT kind, threshold, count(*) AS n,
				 count(DISTINCT (month, kind, partner_id, customer_id, service_id, threshold)) AS keys
			FROM overage.alert GROUP BY 1, 2) x WHERE n = keys"
EXPECT_PER_THRESHOLD="pool 80: 2000, pool 100: 2000, budget 50: 100, budget 100: 100"
# the lines of the preview that differ from the recorded ones (both ways)
DIFF_SQL="SELECT count(*) FROM (
	(SELECT * FROM before_crash EXCEPT ALL SELECT * FROM overage.preview_month('2026-10-01'))
	UNION ALL
	(SELECT * FROM overage.preview_month('2026-10-01') EXCEPT ALL SELECT * FROM before_crash)) d"
VERIFY_SQL="SELECT coalesce(string_agg(check_name || ': ' || coalesce(detail, ''), '; '), '') FROM overage.verify() WHERE NOT ok"

echo "== (a) kill -9 of a backend running rate_pending()"
dropdb --if-exists "$DB" 2>/dev/null
dropdb --if-exists "$REF" 2>/dev/null
createdb "$DB"
t0=$(date +%s)
q "$DB" <<<"$LOAD_SQL" >/dev/null
q "$DB" -c "CREATE TABLE before_crash AS SELECT * FROM overage.preview_month('2026-10-01')"
lines=$(q "$DB" -c "SELECT count(*) FROM before_crash")
echo "   month of $CALLS calls loaded in $(( $(date +%s) - t0 )) s; preview has $lines lines"
[ "$lines" -gt 0 ] || fail "the preview has no lines"
state0=$(q "$DB" -c "$STATE_SQL")
echo "   before: $state0"
# a copy for the clean run, before any rating
q postgres -c "CREATE DATABASE $REF TEMPLATE $DB"

# the clean run first, in the copy: how long a whole rating takes here, so
# that the kill lands in its second half (past reading the calls: while
# the states and alerts are computed and written)
t0=$(date +%s%N)
q "$REF" -c "SELECT overage.rate_pending()" >/dev/null
clean_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
q "$REF" -c "$ALERTS_SQL" > "$WORK/alerts.clean"
kill_ms=$(( clean_ms / 2 ))
echo "   a clean rate_pending() in the copy took $clean_ms ms; killing after $kill_ms ms"

psql -X -d "$DB" -c "SELECT overage.rate_pending()" > "$WORK/rate.out" 2>&1 &
BG=$!
pid=
for _ in $(seq 1 400); do
	pid=$(q postgres -c "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT overage.rate_pending()' AND state = 'active' AND clock_timestamp() - query_start > interval '$kill_ms ms'")
	[ -n "$pid" ] && break
	sleep 0.01
done
[ -n "$pid" ] || fail "rate_pending() finished before it could be killed; raise CRASH_RATE_CALLS ($(cat "$WORK/rate.out"))"
echo "   killing backend $pid in the middle of rate_pending()"
kill -9 "$pid"
wait "$BG" || true
BG=
grep -q "server closed the connection" "$WORK/rate.out" ||
	fail "rate_pending() was not killed while it ran: $(cat "$WORK/rate.out")"

for _ in $(seq 1 1500); do
	q "$DB" -c 'SELECT 1' >/dev/null 2>&1 && break
	sleep 0.2
done
state1=$(q "$DB" -c "$STATE_SQL")
echo "   after recovery: $state1"
[ "$state1" = "$state0" ] || fail "the killed rating left something behind: '$state1', before '$state0'"
bad=$(q "$DB" -c "$VERIFY_SQL")
[ -z "$bad" ] || fail "verify() after the crash: $bad"
echo "   verify(): every check passes"

t0=$(date +%s)
rated=$(q "$DB" -c "SELECT overage.rate_pending()")
echo "   rate_pending() again: rated $rated calls in $(( $(date +%s) - t0 )) s"
[ "$rated" = "$CALLS" ] || fail "rate_pending() rated $rated calls, not $CALLS"
status=$(q "$DB" -c "SELECT calls || ' ' || rated_calls || ' ' || stale_groups FROM overage.rating_status() WHERE month = '2026-10-01'")
[ "$status" = "$CALLS $CALLS 0" ] || fail "rating_status() after rating: $status (calls rated stale)"
diff=$(q "$DB" -c "$DIFF_SQL")
[ "$diff" = 0 ] || fail "preview_month after the crash and rating differs from before in $diff lines"
echo "   rating_status: $CALLS of $CALLS rated, 0 stale; preview_month equals the $lines lines recorded"

q "$DB" -c "$ALERTS_SQL" > "$WORK/alerts.crash"
diff -q "$WORK/alerts.clean" "$WORK/alerts.crash" >/dev/null ||
	fail "the alerts differ from a clean run's: $(diff "$WORK/alerts.clean" "$WORK/alerts.crash" | head -5)"
per=$(q "$DB" -c "$PER_THRESHOLD_SQL")
[ "$per" = "$EXPECT_PER_THRESHOLD" ] || fail "alerts per threshold, each once: '$per', expected '$EXPECT_PER_THRESHOLD'"
echo "   alerts equal the clean run's ($(wc -l < "$WORK/alerts.clean") rows), each once: $per"
n0=$(q "$DB" -c "SELECT count(*) FROM overage.alert")
again=$(q "$DB" -c "SELECT overage.rate_pending()")
n1=$(q "$DB" -c "SELECT count(*) FROM overage.alert")
[ "$again" = 0 ] && [ "$n1" = "$n0" ] || fail "a further rate_pending() rated $again calls, alerts $n0 -> $n1"
echo "   a further rate_pending() rates 0 calls and raises no alert"
dropdb "$DB"
dropdb "$REF"

echo "== (b) kill -9 of the background worker while it rates"
mkdir -p "$WHOST"
chmod 777 "$WHOST"
as_owner "$BINDIR/initdb" -A trust -U "$PGUSER" -D "$WORK/data" > "$WORK/initdb.log" 2>&1 ||
	{ cat "$WORK/initdb.log"; fail "initdb failed"; }
cat >> "$WORK/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$WHOST'
port = $WPORT
fsync = off
shared_preload_libraries = 'overage'
overage.database = '$DB'
overage.rate_interval = 0
CONF
as_owner "$BINDIR/pg_ctl" -D "$WORK/data" -l "$LOG" -w start >/dev/null || fail "the cluster did not start"
WORKER_PID_SQL="SELECT pid FROM pg_stat_activity WHERE backend_type = 'overage rating worker'"
wq postgres -c "CREATE DATABASE $DB"
t0=$(date +%s)
wq "$DB" <<<"$LOAD_SQL" >/dev/null
wq "$DB" -c "CREATE TABLE before_crash AS SELECT * FROM overage.preview_month('2026-10-01')"
echo "   own cluster (preload, rate_interval = 0): $CALLS calls loaded in $(( $(date +%s) - t0 )) s"
[ "$(wq "$DB" -c "$STATE_SQL")" = "$state0" ] || fail "the second load differs: $(wq "$DB" -c "$STATE_SQL")"
wq postgres -c "ALTER SYSTEM SET overage.rate_interval = 1" -c "SELECT pg_reload_conf()" >/dev/null
ACTIVE_SQL="SELECT pid FROM pg_stat_activity WHERE backend_type = 'overage rating worker' AND state = 'active' AND query LIKE '%rate_pending%'"
pid=
for _ in $(seq 1 500); do
	pid=$(wq postgres -c "$ACTIVE_SQL")
	[ -n "$pid" ] && break
	sleep 0.01
done
[ -n "$pid" ] || fail "no worker pass running rate_pending() within 5 s: $(wq postgres -c "SELECT state, query FROM pg_stat_activity WHERE backend_type = 'overage rating worker'")"
# its pass has started: turn the passes off (the postmaster takes the reload
# now, the worker only between passes), so that the worker started again
# after the crash idles until the state left by the crash is checked
wq postgres -c "ALTER SYSTEM SET overage.rate_interval = 0" -c "SELECT pg_reload_conf()" >/dev/null
pid=
for _ in $(seq 1 500); do
	pid=$(wq postgres -c "$ACTIVE_SQL AND clock_timestamp() - query_start > interval '$kill_ms ms'")
	[ -n "$pid" ] && break
	sleep 0.01
done
[ -n "$pid" ] || fail "the worker's pass ended before it could be killed"
echo "   killing the worker (pid $pid) $kill_ms ms into its pass"
kill -9 "$pid"
sleep 1
for _ in $(seq 1 1500); do
	wq "$DB" -c 'SELECT 1' >/dev/null 2>&1 && break
	sleep 0.2
done
state1=$(wq "$DB" -c "$STATE_SQL")
echo "   after recovery: $state1"
[ "$state1" = "$state0" ] || fail "the killed pass left something behind (or committed before the kill): '$state1', before '$state0'"
grep -q "was terminated by signal 9" "$LOG" || fail "no crash of the worker in the server log"
bad=$(wq "$DB" -c "$VERIFY_SQL")
[ -z "$bad" ] || fail "verify() after the crash: $bad"
echo "   nothing half-written, verify() passes"

# passes on again: the worker started after the crash rates the month
wq postgres -c "ALTER SYSTEM SET overage.rate_interval = 1" -c "SELECT pg_reload_conf()" >/dev/null
ok=
for _ in $(seq 1 120); do
	status=$(wq "$DB" -c "SELECT calls || ' ' || rated_calls || ' ' || stale_groups FROM overage.rating_status() WHERE month = '2026-10-01'" 2>/dev/null || true)
	[ "$status" = "$CALLS $CALLS 0" ] && { ok=1; break; }
	sleep 0.5
done
[ -n "$ok" ] || fail "the month is not rated 60 s after the crash: $status"
newpid=$(wq postgres -c "$WORKER_PID_SQL")
[ -n "$newpid" ] && [ "$newpid" != "$pid" ] || fail "no new worker after the crash ($newpid)"
echo "   a new worker (pid $newpid) rated the month: $CALLS of $CALLS rated, 0 stale"
diff=$(wq "$DB" -c "$DIFF_SQL")
[ "$diff" = 0 ] || fail "preview_month after the worker's rating differs from before in $diff lines"
wq "$DB" -c "$ALERTS_SQL" > "$WORK/alerts.worker"
diff -q "$WORK/alerts.clean" "$WORK/alerts.worker" >/dev/null ||
	fail "the worker's alerts differ from a clean run's: $(diff "$WORK/alerts.clean" "$WORK/alerts.worker" | head -5)"
per=$(wq "$DB" -c "$PER_THRESHOLD_SQL")
[ "$per" = "$EXPECT_PER_THRESHOLD" ] || fail "alerts per threshold, each once: '$per'"
echo "   preview_month equals the $lines lines recorded; alerts equal the clean run's of (a), each once: $per"
echo "crash_rate passed"
