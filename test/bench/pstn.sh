#!/usr/bin/env bash
# Benchmark of ingest_pstn_calls, by hand (never in CI): run inside a
# throwaway cluster (PGHOST/PGPORT/PGUSER of a superuser), e.g.
#
#   pg_virtualenv -v 15 bash test/bench/pstn.sh [rows]        (after make install)
#
# The same N calls (default 100,000) are loaded, side by side in one run,
# into two fresh databases: as the bulk INSERT ... SELECT into overage.usage
# of rows already typed (the reference), and as one getPstnCalls response
# (jsonb, already stored) through ingest_pstn_calls; then the same response
# is sent again.  Each best of 3 (fresh databases each round).  Prints the
# ratios; the targets are ingest >= 0.5x the bulk INSERT's throughput and a
# re-send costing at most the first load.
set -euo pipefail
N=${1:-100000}
export PGOPTIONS="-c client_min_messages=warning"
psql() { command psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

setup() {	# $1 = database
	dropdb --if-exists "$1"; createdb "$1"
	psql -d "$1" -v n="$N" <<'SQL'
CREATE EXTENSION overage;
INSERT INTO overage.service (service_id, name, unit_price) VALUES ('DOM', 'Domestic', 0.02), ('INTL', 'International', 0.12);
INSERT INTO overage.customer VALUES ('C1', 'Tailspin', 'SE');
INSERT INTO overage.call_mapping VALUES ('user_out', 'Domestic', 'DOM'), ('user_out', 'International', 'INTL'), ('user_in', NULL, 'DOM');
CREATE TABLE calls AS
SELECT gen_random_uuid() AS id, 'user' || (i % 500) AS user_id,
	   '2026-10-01 00:00Z'::timestamptz + ((i * 7919) % 2678400) * interval '1 second' AS started_at,
	   1 + (i * 31) % 1800 AS duration_s,
	   CASE WHEN i % 4 = 0 THEN 'user_in' ELSE 'user_out' END AS call_type,
	   CASE WHEN i % 4 = 0 THEN NULL WHEN i % 10 = 1 THEN 'International' ELSE 'Domestic' END AS dc
  FROM generate_series(1, :n) i;
CREATE TABLE typed AS
SELECT 'C1'::text AS customer_id, m.service_id, c.user_id, c.started_at, c.duration_s
  FROM calls c JOIN overage.call_mapping m ON m.call_type = c.call_type
   AND m.destination_context IS NOT DISTINCT FROM c.dc;
CREATE TABLE response AS
SELECT jsonb_build_object('@odata.count', count(*), 'value', jsonb_agg(jsonb_build_object(
		'id', c.id, 'callId', 'c' || c.id, 'userId', c.user_id,
		'userPrincipalName', c.user_id || '@tailspintoys.example', 'userDisplayName', c.user_id,
		'startDateTime', to_char(c.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US0"Z"'),
		'endDateTime', to_char((c.started_at + c.duration_s * interval '1 second') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US0"Z"'),
		'duration', c.duration_s, 'charge', 0, 'callType', c.call_type, 'currency', 'USD',
		'calleeNumber', '+46812345678', 'callerNumber', '+46887654321', 'usageCountryCode', 'SE',
		'tenantCountryCode', 'SE', 'connectionCharge', 0, 'destinationContext', c.dc,
		'destinationName', 'Sweden', 'conferenceId', NULL, 'licenseCapability', 'MCOPSTN1',
		'inventoryType', 'Subscriber', 'operator', 'Microsoft', 'callDurationSource', 'microsoft'))) AS r
  FROM calls c;
VACUUM ANALYZE;
CHECKPOINT;
SQL
}
ms() {	# $1 = database, $2 = statement: elapsed ms of the statement alone
	psql -d "$1" -c "SET max_parallel_workers_per_gather = 0" -c "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN EXECUTE \$q\$$2\$q\$; RAISE WARNING 'ms=%', round(extract(epoch FROM clock_timestamp() - t0) * 1000); END \$\$" 2>&1 | sed -n 's/.*ms=//p'
}
best() { printf '%s\n' "$@" | sort -n | head -1; }

bulk=(); first=(); again=()
for round in ${ROUNDS:-1 2 3}; do
	setup bench_bulk; setup bench_pstn
	bulk+=("$(ms bench_bulk "INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) SELECT * FROM typed")")
	first+=("$(ms bench_pstn "SELECT i.inserted FROM response, overage.ingest_pstn_calls('C1', r) i")")
	again+=("$(ms bench_pstn "SELECT i.inserted FROM response, overage.ingest_pstn_calls('C1', r) i")")
done
check=$(psql -d bench_pstn -c "SELECT (SELECT count(*) FROM overage.usage) || ' calls, ' || (SELECT count(*) FROM overage.pstn_call) || ' Graph ids'")
b=$(best "${bulk[@]}"); f=$(best "${first[@]}"); a=$(best "${again[@]}")
echo "rows: $N; server $(psql -d bench_pstn -c 'SHOW server_version'), $(nproc) cores (shared machine)"
echo "bulk INSERT into overage.usage (typed rows)   ${b} ms   (rounds: ${bulk[*]})"
echo "ingest_pstn_calls, first load                ${f} ms   (rounds: ${first[*]})  throughput vs bulk INSERT: $(echo "scale=2; $b / $f" | bc -l)x (target >= 0.5)"
echo "ingest_pstn_calls, same response again       ${a} ms   (rounds: ${again[*]})  cost vs first load: $(echo "scale=2; $a / $f" | bc -l)x (target <= 1)"
per=(); for i in "${!bulk[@]}"; do per+=("$(echo "scale=2; ${bulk[$i]} / ${first[$i]}" | bc -l)"); done
echo "ratio round by round (bulk INSERT / first load, same round): ${per[*]}; median $(printf '%s\n' "${per[@]}" | sort -n | sed -n "$(( (${#per[@]} + 1) / 2 ))p")"
echo "after the two loads: $check"
dropdb bench_bulk; dropdb bench_pstn
