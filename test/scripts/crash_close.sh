#!/usr/bin/env bash
# Crash in the middle of close_month: kill -9 the backend that runs it (the
# postmaster then restarts every backend and replays WAL), and show that the
# month is still open with no charge lines, and that a retried close writes
# exactly the lines preview_month promised before the crash.
#
# Runs inside pg_virtualenv (PGHOST/PGPORT/PGUSER set).  CRASH_CALLS sets
# the size of the month (default 1,000,000 calls, large enough that the
# close runs long enough to be caught).
set -euo pipefail

DB=overage_crash
CALLS=${CRASH_CALLS:-1000000}
psql_q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

dropdb --if-exists "$DB"
createdb "$DB"
psql_q <<SQL
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
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
SELECT format('C%s', 1 + n % 2000), 'PSTN-DOM', format('u%s', n % 7),
	   '2026-10-01 00:00+00'::timestamptz + (n % 2592000) * interval '1 second',
	   30 + (n::bigint * 7919) % 900
  FROM generate_series(1, $CALLS) n;
VACUUM ANALYZE overage.usage;
CREATE TABLE before_crash AS SELECT * FROM overage.preview_month('2026-10-01');
SQL
echo "month of $CALLS calls loaded; preview has $(psql_q -At -c 'SELECT count(*) FROM before_crash') lines"

# start the close in the background and kill its backend while it runs
psql -X -d "$DB" -c "SELECT overage.close_month('2026-10-01')" > /tmp/crash_close.out 2>&1 &
closer=$!
pid=
for _ in $(seq 1 400); do
	pid=$(psql -X -At -d postgres -c "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT overage.close_month%' AND state = 'active' AND now() - query_start > interval '50 ms'")
	[ -n "$pid" ] && break
	sleep 0.02
done
if [ -z "$pid" ]; then
	echo "FAIL: close_month finished before it could be killed; raise CRASH_CALLS"
	exit 1
fi
echo "killing backend $pid in the middle of close_month"
kill -9 "$pid"
wait "$closer" || true
cat /tmp/crash_close.out
if ! grep -q "server closed the connection" /tmp/crash_close.out; then
	echo "FAIL: close_month was not killed while it ran; raise CRASH_CALLS"
	exit 1
fi

# wait for crash recovery (up to 5 minutes: replaying the load takes a while
# on a busy machine)
for _ in $(seq 1 1500); do
	psql -X -At -d "$DB" -c 'SELECT 1' >/dev/null 2>&1 && break
	sleep 0.2
done

lines=$(psql_q -At -c "SELECT count(*) FROM overage.charge WHERE month = '2026-10-01'")
echo "after recovery: $lines charge lines for 2026-10"
[ "$lines" = 0 ] || { echo "FAIL: a crashed close left lines behind"; exit 1; }

written=$(psql_q -At -c "SELECT overage.close_month('2026-10-01')")
echo "retried close wrote $written lines"
diff=$(psql_q -At <<'SQL'
SELECT count(*) FROM (
	(SELECT * FROM before_crash EXCEPT ALL SELECT * FROM overage.charge WHERE month = '2026-10-01')
	UNION ALL
	(SELECT * FROM overage.charge WHERE month = '2026-10-01' EXCEPT ALL SELECT * FROM before_crash)) d;
SQL
)
[ "$diff" = 0 ] || { echo "FAIL: retried close differs from the preview in $diff lines"; exit 1; }
[ "$written" = "$(psql_q -At -c 'SELECT count(*) FROM before_crash')" ] || { echo "FAIL: line count differs"; exit 1; }

if psql_q -c "SELECT overage.close_month('2026-10-01')" 2>/dev/null; then
	echo "FAIL: second close succeeded"; exit 1
fi
echo "crash test passed: no lines after the crash, retried close equals the preview, a second close is refused"
dropdb "$DB"
