#!/usr/bin/env bash
# worker: the background rating worker (SPEC 1.2 "Live rating",
# src/worker.c) in a cluster of its own that preloads the library.
#
# Runs inside pg_virtualenv or pgpriv (PATH reaches the initdb and pg_ctl of
# the PostgreSQL the extension is installed in; PGPORT of the throwaway
# cluster, whose port + 2 this cluster takes on its own socket directory).
# Starts the cluster without the preload, creates the database and the
# extension (no worker then), restarts it with
#
#   shared_preload_libraries = 'overage'
#   overage.rate_interval = 1
#   overage.database = 'overage_worker'
#
# and checks, observing passes through what the worker shows in
# pg_stat_activity (its state_change moves at every pass) and its DEBUG1
# lines in the server log, never through what rate_pending() does:
#
#   1. the worker runs, connected to overage.database; the settings show;
#   2. its passes run every interval; rate_interval = 0 by ALTER SYSTEM and
#      pg_reload_conf() stops them, and 1 resumes them, same process;
#   3. an error in a pass (a cancel while the pass waits for a lock) is
#      logged with the pass's context and the worker carries on;
#   4. with the extension missing from the database (dropped; or
#      overage.database changed by a reload to a database without it, which
#      moves the worker there) the worker logs nothing above DEBUG1 and
#      keeps waiting, and resumes when it is back;
#   5. SIGTERM ends the worker and the postmaster starts a new one after
#      the restart time (10 s);
#   6. the worker's memory (its DEBUG1 lines) does not grow from pass to
#      pass;
#   7. THE REAL CHECK: a few thousand calls loaded are all rated by the
#      worker within 15 s (overage.rating_status()).  It needs
#      overage.rate_pending() and overage.rating_status(), which come from
#      another branch: until they are merged this check fails.
#
# Prints what it checked; exits non-zero on the first failure.  The trap
# stops the cluster and removes its directory whatever happens.
set -euo pipefail
cd "$(dirname "$0")/../.."

DB=overage_worker
WORK=$(mktemp -d)
chmod 777 "$WORK"
BINDIR=$(dirname "$(command -v initdb)")
WPORT=$((PGPORT + 2))
WHOST=$WORK/socket
LOG=$WORK/server.log
BG=

fail() {
	if [ -f "$LOG" ]; then
		echo "--- the last lines of the server log, DEBUG lines left out:" >&2
		grep -v '\] DEBUG:  ' "$LOG" | tail -30 >&2
	fi
	echo "worker: FAILED: $*" >&2
	exit 1
}

# the cluster belongs to the cluster's OS user: as root (pg_virtualenv,
# pgpriv) run its programs as postgres
as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

cleanup() {
	if [ -n "$BG" ]; then kill "$BG" 2>/dev/null || true; wait "$BG" 2>/dev/null || true; fi
	if [ -f "$WORK/data/postmaster.pid" ]; then
		as_owner "$BINDIR/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

q() { command psql -X -q -At -v ON_ERROR_STOP=1 -h "$WHOST" -p "$WPORT" -U "$PGUSER" "$@"; }
pg_ctl() { as_owner "$BINDIR/pg_ctl" -D "$WORK/data" -l "$LOG" -w "$@" >/dev/null; }

# the worker's row of pg_stat_activity: pid, datname, state_change (epoch
# microseconds), wait_event_type, query
WORKER_ROW="SELECT pid, datname, (extract(epoch FROM state_change) * 1e6)::bigint AS change, wait_event_type, query
  FROM pg_stat_activity WHERE backend_type = 'overage rating worker'"
worker_pid() { q -d postgres -c "SELECT pid FROM ($WORKER_ROW) w"; }
worker_change() { q -d postgres -c "SELECT w.change FROM ($WORKER_ROW) w"; }
worker_query() { q -d postgres -c "SELECT query FROM ($WORKER_ROW) w"; }

# wait_for SECONDS SQL: until SQL (against $DB) prints t
wait_for() {
	local i
	for i in $(seq 1 $(($1 * 10))); do
		[ "$(q -d "$DB" -c "$2" 2>/dev/null)" = t ] && return 0
		sleep 0.1
	done
	return 1
}

# the server log from byte offset $1 on
log_since() { tail -c +$(($1 + 1)) "$LOG"; }
log_size() { stat -c %s "$LOG"; }

mkdir -p "$WHOST"
chmod 777 "$WHOST"
as_owner "$BINDIR/initdb" -A trust -U "$PGUSER" -D "$WORK/data" > "$WORK/initdb.log" 2>&1 ||
	{ cat "$WORK/initdb.log"; fail "initdb failed"; }
cat >> "$WORK/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$WHOST'
port = $WPORT
fsync = off
log_min_messages = debug1
CONF
pg_ctl start || { cat "$LOG"; fail "the cluster did not start"; }

echo "== without the preload: no worker"
q -d postgres -c "CREATE DATABASE $DB"
q -d "$DB" -c "CREATE EXTENSION overage"
[ -z "$(worker_pid)" ] || fail "a worker runs without shared_preload_libraries"
echo "   no overage rating worker in pg_stat_activity"

echo "== restart with shared_preload_libraries = 'overage', rate_interval = 1"
cat >> "$WORK/data/postgresql.conf" <<CONF
shared_preload_libraries = 'overage'
overage.rate_interval = 1
overage.database = '$DB'
CONF
pg_ctl restart || { cat "$LOG"; fail "the cluster did not restart with the preload"; }

echo "== 1. the worker runs in $DB; the settings show"
wait_for 10 "SELECT count(*) = 1 FROM ($WORKER_ROW) w WHERE datname = '$DB'" ||
	fail "no overage rating worker connected to $DB (pg_stat_activity: $(q -d postgres -c "$WORKER_ROW"))"
pid=$(worker_pid)
echo "   worker pid $pid, connected to $(q -d postgres -c "SELECT datname FROM ($WORKER_ROW) w")"
[ "$(q -d "$DB" -c 'SHOW overage.rate_interval')" = 1s ] || fail "SHOW overage.rate_interval is not 1s"
[ "$(q -d "$DB" -c 'SHOW overage.database')" = "$DB" ] || fail "SHOW overage.database is not $DB"
echo "   overage.rate_interval = $(q -d "$DB" -c 'SHOW overage.rate_interval'), overage.database = $(q -d "$DB" -c 'SHOW overage.database')"
grep -q "overage rating worker started in database \"$DB\" with overage.rate_interval = 1 s" "$LOG" ||
	fail "the worker's start line is not in the server log"

echo "== 2. passes every interval; rate_interval = 0 stops them, 1 resumes them"
wait_for 5 "SELECT query <> 'overage rating worker: started' FROM ($WORKER_ROW) w" ||
	fail "no first pass within 5 s: $(worker_query)"
c0=$(worker_change)
sleep 2.5
c1=$(worker_change)
[ "$c1" -gt "$c0" ] || fail "no pass in 2.5 s with rate_interval = 1"
echo "   passes run: $(worker_query)"
q -d postgres -c "ALTER SYSTEM SET overage.rate_interval = 0" -c "SELECT pg_reload_conf()" >/dev/null
wait_for 5 "SELECT query LIKE '%off (overage.rate_interval = 0)%' FROM ($WORKER_ROW) w" ||
	fail "the worker did not turn off after the reload: $(worker_query)"
c0=$(worker_change)
off=$(log_size)
sleep 3
c1=$(worker_change)
[ "$c1" = "$c0" ] || fail "a pass ran with rate_interval = 0"
if log_since "$off" | grep -q "\[$pid\] DEBUG:  overage rating worker:"; then
	fail "a pass logged with rate_interval = 0"
fi
echo "   off: no pass in 3 s, no pass line in the log ($(worker_query))"
q -d postgres -c "ALTER SYSTEM SET overage.rate_interval = 1" -c "SELECT pg_reload_conf()" >/dev/null
wait_for 5 "SELECT query NOT LIKE '%off (overage.rate_interval = 0)%' FROM ($WORKER_ROW) w" ||
	fail "the worker did not resume after rate_interval = 1"
c0=$(worker_change)
sleep 2.5
[ "$(worker_change)" -gt "$c0" ] || fail "no pass in 2.5 s after resuming"
[ "$(worker_pid)" = "$pid" ] || fail "the worker was restarted by the reload"
echo "   on again, same worker (pid $pid)"

echo "== 3. an error in a pass: logged, and the worker carries on"
mark=$(log_size)
# hold pg_extension so that the next pass waits at its lookup, then cancel it
command psql -X -q -h "$WHOST" -p "$WPORT" -U "$PGUSER" -d "$DB" \
	-c "BEGIN" -c "LOCK pg_catalog.pg_extension IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep(4)" \
	-c "COMMIT" >/dev/null &
BG=$!
wait_for 5 "SELECT wait_event_type = 'Lock' FROM ($WORKER_ROW) w" ||
	fail "the worker's pass did not wait for the lock on pg_extension"
q -d postgres -c "SELECT pg_cancel_backend($pid)" >/dev/null
wait_for 2 "SELECT query LIKE '%last pass failed: canceling statement due to user request%' FROM ($WORKER_ROW) w" ||
	fail "the cancelled pass is not shown as failed: $(worker_query)"
echo "   shown while it waits: $(worker_query)"
wait "$BG" || true
BG=
log_since "$mark" | grep -A3 "\[$pid\] ERROR:  canceling statement due to user request" |
	grep -q "background rating pass of the overage rating worker in database \"$DB\"" ||
	fail "the pass's error and its context are not in the server log"
c0=$(worker_change)
sleep 2.5
[ "$(worker_change)" -gt "$c0" ] || fail "no pass after the failed one"
[ "$(worker_pid)" = "$pid" ] || fail "the error ended the worker"
echo "   ERROR with the pass's CONTEXT in the log, same worker (pid $pid) passing again: $(worker_query)"

echo "== 4. the extension missing: the worker logs nothing above DEBUG1 and keeps waiting"
# (a) dropped from overage.database, then created again
q -d "$DB" -c "DROP EXTENSION overage"
mark=$(log_size)
wait_for 5 "SELECT query LIKE '%extension \"overage\" is not installed in this database%' FROM ($WORKER_ROW) w" ||
	fail "the worker does not show the missing extension: $(worker_query)"
sleep 3
if log_since "$mark" | grep -E "\[$pid\] (WARNING|ERROR|FATAL|PANIC|LOG):"; then
	fail "the worker logged the above with the extension missing"
fi
skips=$(log_since "$mark" | grep -c "\[$pid\] DEBUG:  overage rating worker: extension \"overage\" is not installed in database \"$DB\", nothing to rate; worker memory" || true)
[ "$skips" -ge 2 ] || fail "the worker did not keep passing with the extension missing ($skips DEBUG1 lines)"
echo "   dropped: $skips passes skipped at DEBUG1, nothing above DEBUG1 from the worker"
q -d "$DB" -c "CREATE EXTENSION overage"
wait_for 5 "SELECT query NOT LIKE '%is not installed%' FROM ($WORKER_ROW) w" ||
	fail "the worker did not see the extension again"
[ "$(worker_pid)" = "$pid" ] || fail "the worker was restarted meanwhile"
echo "   created again: $(worker_query)"

# (b) overage.database names a database without it: a reload moves the
# worker there (it exits, the postmaster starts it in the new database)
q -d postgres -c "CREATE DATABASE ${DB}_empty"
mark=$(log_size)
q -d postgres -c "ALTER SYSTEM SET overage.database = '${DB}_empty'" -c "SELECT pg_reload_conf()" >/dev/null
wait_for 20 "SELECT count(*) = 1 FROM ($WORKER_ROW) w WHERE datname = '${DB}_empty'" ||
	fail "the worker did not move to ${DB}_empty after the reload"
log_since "$mark" | grep -q "\[$pid\] LOG:  overage rating worker: overage.database changed from \"$DB\" to \"${DB}_empty\", restarting in the new database" ||
	fail "the worker did not log why it exits"
pid=$(worker_pid)
wait_for 5 "SELECT query LIKE '%is not installed in this database%' FROM ($WORKER_ROW) w" ||
	fail "the worker in ${DB}_empty does not show the missing extension: $(worker_query)"
sleep 3
if log_since "$mark" | grep -E "\[$pid\] (WARNING|ERROR|FATAL|PANIC|LOG):" |
		grep -v "LOG:  overage rating worker started in database \"${DB}_empty\""; then
	fail "the worker in ${DB}_empty logged the above"
fi
echo "   in ${DB}_empty (pid $pid): nothing above DEBUG1 but its start line; $(worker_query)"
q -d postgres -c "ALTER SYSTEM RESET overage.database" -c "SELECT pg_reload_conf()" >/dev/null
wait_for 20 "SELECT count(*) = 1 FROM ($WORKER_ROW) w WHERE datname = '$DB'" ||
	fail "the worker did not move back to $DB"
pid=$(worker_pid)
echo "   back in $DB (pid $pid)"

echo "== 5. SIGTERM: the postmaster restarts the worker after 10 s"
as_owner kill -TERM "$pid"
t0=$(date +%s)
wait_for 5 "SELECT count(*) = 0 FROM ($WORKER_ROW) w" || fail "the worker did not exit on SIGTERM"
wait_for 20 "SELECT count(*) = 1 FROM ($WORKER_ROW) w WHERE datname = '$DB'" ||
	fail "the worker was not restarted within 20 s"
t1=$(date +%s)
newpid=$(worker_pid)
[ "$newpid" != "$pid" ] || fail "the same pid after SIGTERM"
[ $((t1 - t0)) -ge 8 ] || fail "restarted after $((t1 - t0)) s, before the restart time"
grep -q "\[$pid\] FATAL:  terminating background worker \"overage rating worker\" due to administrator command" "$LOG" ||
	fail "the worker's exit on SIGTERM is not in the log"
echo "   pid $pid ended, pid $newpid started $((t1 - t0)) s later"
pid=$newpid

echo "== 6. the worker's memory between passes"
sleep 8
mem=$(grep "\[$pid\] DEBUG:  overage rating worker:" "$LOG" | grep -o 'worker memory [0-9]* bytes' | awk '{ print $3 }')
n=$(echo "$mem" | wc -l)
[ "$n" -ge 5 ] || fail "fewer than 5 pass lines with memory from pid $pid ($n)"
first=$(echo "$mem" | sed -n 3p)
last=$(echo "$mem" | tail -1)
echo "   $n passes; TopMemoryContext holds $first bytes after pass 3, $last after pass $n"
[ "$last" -le "$first" ] || fail "the worker's memory grew from $first to $last bytes"

echo "== 7. THE REAL CHECK (needs overage.rate_pending() and overage.rating_status())"
CALLS=3000
q -d "$DB" >/dev/null <<SQL
SET timezone = 'UTC';
INSERT INTO overage.service VALUES ('PSTN-DOM', 'Domestic Calling', 'Minute', 0.0150, 'USD');
INSERT INTO overage.sku (product_id, sku_id, title, tags)
	VALUES ('E5', '0002', 'Microsoft 365 E5 with Calling Plan', 'IncludeOverage');
INSERT INTO overage.sku_service VALUES ('E5', '0002', 'PSTN-DOM', 120);
INSERT INTO overage.partner VALUES ('P1', 'Contoso'), ('P2', 'Fabrikam');
INSERT INTO overage.customer
	SELECT format('C%s', i), format('Customer %s', i), 'SE' FROM generate_series(1, 200) i;
SELECT count(overage.purchase(CASE WHEN i % 2 = 0 THEN 'P1' ELSE 'P2' END,
							  format('C%s', i), 'E5', '0002', 1 + i % 3,
							  date_trunc('month', now()) - interval '10 days'))
  FROM generate_series(1, 200) i;
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
SELECT format('C%s', 1 + n % 200), 'PSTN-DOM', format('u%s', n % 7),
	   date_trunc('month', now()) + (n % 3600) * interval '1 second',
	   30 + (n::bigint * 7919) % 900
  FROM generate_series(1, $CALLS) n;
SQL
echo "   $CALLS calls loaded; waiting up to 15 s for the worker to rate them"
if ! wait_for 15 "SELECT sum(calls) = sum(rated_calls) FROM overage.rating_status()"; then
	q -d "$DB" -c "SELECT sum(calls), sum(rated_calls) FROM overage.rating_status()" 2>&1 || true
	fail "the worker did not rate the $CALLS calls within 15 s: $(worker_query)"
fi
echo "   every call rated: $(q -d "$DB" -c "SELECT sum(calls) || ' calls, ' || sum(rated_calls) || ' rated' FROM overage.rating_status()")"
echo "   $(worker_query)"

echo "worker: ok"
