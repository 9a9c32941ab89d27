#!/usr/bin/env bash
# test/citus/run.sh -- overage distributed on a Citus coordinator and two
# workers on loopback (README "Scaling out"); exits 0 when every part passes.
#
#   1. distribute(): every table a Citus table of the planned kind, the
#      tables keyed by customer co-located; a second call changes nothing
#   2. the holder model (test/model/holder_model.py) through the coordinator,
#      the tables distributed right after each scenario's CREATE EXTENSION
#   3. the metering model likewise, without live rating (METER_LIVE_RATING=0:
#      a cluster has none) and without deleting parties (METER_DELETES=0:
#      on a cluster the loads lock their customers instead, and a customer
#      or service with calls is not kept from a delete)
#   4. isolation specs of the holder rules, the transfer and the month
#      lock, through the coordinator, against the single node's expected
#      outputs, unchanged.  The copies run here differ from the specs in
#      what Citus needs and the results do not show: the tables distributed
#      in a setup block of its own after CREATE EXTENSION, the SQL helpers
#      as PL/pgSQL, DROP EXTENSION ... CASCADE; Citus' replacement of the
#      isolation tester's wait detection (it sees waits on the workers)
#   5. row-level security through the coordinator: agents of two partners
#      (login roles: Citus connects to the workers as the querying role)
#      see exactly their partner's rows, the same rows a superuser sees
#      when it filters by partner
#   6. a worker killed (kill -9, postmaster and its backends) while a
#      close_month transaction is open: the month stays open with no charge
#      line; after the worker's restart the close writes exactly the lines
#      preview_month showed before
#
# Its own cluster in a temporary directory, stopped at the end whatever
# happens.  Uses the PostgreSQL on PATH (with Citus installed, see
# build-citus.sh); installs overage from this worktree first unless
# CITUS_NO_INSTALL=1.  Sizes: CITUS_SCENARIOS/CITUS_STEPS (holder model),
# CITUS_SEEDS/CITUS_METER_STEPS (metering model), CITUS_SHARDS.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top"

SCENARIOS=${CITUS_SCENARIOS:-4}
STEPS=${CITUS_STEPS:-60}
SEEDS=${CITUS_SEEDS:-3}
METER_STEPS=${CITUS_METER_STEPS:-150}
SHARDS=${CITUS_SHARDS:-4}
SPECS=${CITUS_SPECS:-"first_purchase assign_after_none release_vs_assign cancel_vs_assign auto_release_race transfer_consents transfer_requests transfer_vs_release transfer_vs_cancel transfer_vs_close ingest_vs_close change_vs_close"}

if [ "${CITUS_NO_INSTALL:-}" != 1 ]; then
	make -s PG_CONFIG="$(command -v pg_config)" >/dev/null \
		&& make -s PG_CONFIG="$(command -v pg_config)" install >/dev/null \
		|| { echo "citus: building/installing overage failed" >&2; exit 1; }
fi

DIR=$(mktemp -d /tmp/overage-citus.XXXX)
chmod 755 "$DIR"
cleanup() { "$here/cluster.sh" stop "$DIR"; rm -rf "$DIR"; }
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# the database of each part, set up by cluster.sh on all three nodes
for db in overage_citus overage_model overage_metermodel overage_iso; do
	CITUS_DB=$db "$here/cluster.sh" start "$DIR" >"$DIR/start-$db.log" 2>&1 \
		|| { cat "$DIR/start-$db.log" >&2; echo "citus: cluster start failed" >&2; exit 1; }
done
. "$DIR/env"
[ "$(id -u)" = 0 ] && chown -R postgres "$DIR"

failed=0
pass() { echo "citus: ok     $*"; }
fail() { echo "citus: FAILED $*"; failed=$((failed + 1)); }
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# --- 1. distribute() -------------------------------------------------------
out=$(q -d overage_citus 2>&1 <<SQL
CREATE EXTENSION overage;
SELECT overage.distribute($SHARDS);
-- the kinds: n = reference, h = hash-distributed
SELECT string_agg(format('%s:%s', logicalrelid::regclass, partmethod), ' ' ORDER BY logicalrelid::regclass::text)
  FROM pg_dist_partition WHERE logicalrelid::regclass::text LIKE 'overage.%';
-- one co-location group for every table keyed by customer
SELECT count(DISTINCT colocationid) FROM pg_dist_partition
 WHERE partmethod = 'h' AND logicalrelid::regclass::text LIKE 'overage.%';
SELECT count(*) FROM pg_dist_shard s JOIN pg_dist_partition p USING (logicalrelid)
 WHERE p.partmethod = 'h' AND logicalrelid = 'overage.usage'::regclass;
-- idempotent: nothing more the second time
SELECT md5(string_agg(format('%s %s %s', logicalrelid, partmethod, colocationid), ',' ORDER BY logicalrelid))
  FROM pg_dist_partition;
SELECT overage.distribute($SHARDS);
SELECT md5(string_agg(format('%s %s %s', logicalrelid, partmethod, colocationid), ',' ORDER BY logicalrelid))
  FROM pg_dist_partition;
SQL
)
kinds=$(echo "$out" | sed -n 2p)
want="overage.agent:n overage.alert:h overage.assignment_log:h overage.billing_month:n overage.budget:h overage.call_mapping:n overage.charge:h overage.customer:n overage.holder:h overage.holder_period:h overage.license_quantity:h overage.partner:n overage.price_list_import:n overage.pstn_call:h overage.rated_group:h overage.rated_line:h overage.service:n overage.service_price:n overage.sku:n overage.sku_service:n overage.subscription:h overage.transfer:h overage.usage:h overage.usage_month:h"
if [ "$kinds" = "$want" ] && [ "$(echo "$out" | sed -n 3p)" = 1 ] \
	&& [ "$(echo "$out" | sed -n 4p)" = "$SHARDS" ] \
	&& [ -n "$(echo "$out" | sed -n 5p)" ] \
	&& [ "$(echo "$out" | sed -n 5p)" = "$(echo "$out" | sed -n 7p)" ]; then
	pass "distribute(): 10 reference tables, 14 distributed tables in one co-location group of $SHARDS shards; idempotent"
else
	fail "distribute(): $out"
fi

# --- 2, 3. the models ------------------------------------------------------
t0=$(date +%s)
if OVERAGE_AFTER_CREATE="SELECT overage.distribute($SHARDS);" \
	python3 test/model/holder_model.py overage_model "$SCENARIOS" "$STEPS" >"$DIR/holder.log" 2>&1; then
	pass "holder model: $(head -1 "$DIR/holder.log") ($(( $(date +%s) - t0 )) s)"
else
	fail "holder model:"; tail -30 "$DIR/holder.log"
fi
t0=$(date +%s)
if METER_LIVE_RATING=0 METER_DELETES=0 OVERAGE_AFTER_CREATE="SELECT overage.distribute($SHARDS)" \
	python3 test/model/metering_model.py overage_metermodel "$SEEDS" "$METER_STEPS" 1 >"$DIR/meter.log" 2>&1; then
	pass "metering model: $(head -1 "$DIR/meter.log") ($(( $(date +%s) - t0 )) s)"
else
	fail "metering model:"; tail -30 "$DIR/meter.log" | cut -c1-2000
fi

# --- 4. isolation specs ----------------------------------------------------
iso="$DIR/iso"
mkdir -p "$iso/specs" "$iso/expected"
for s in $SPECS; do
	# the spec's setup distributes the tables right after CREATE EXTENSION,
	# in a setup block of its own (committed first: the workers must see
	# the extension)
	python3 - "test/isolation/specs/$s.spec" "$iso/specs/$s.spec" "$SHARDS" <<'PY'
import re, sys
spec = open(sys.argv[1]).read()
spec, n = re.subn(r'(?m)^(setup\s*\{\s*\n\s*CREATE EXTENSION overage;)',
                  r'\1\n}\nsetup { DO $$ BEGIN PERFORM overage.distribute(%s); END $$; }\nsetup\n{' % sys.argv[3], spec, count=1)
# the specs' SQL helpers (sub, lic, tr) as PL/pgSQL: inlined, their
# query on a distributed table inside the call's arguments is a subquery
# Citus cannot plan; the helpers' results are the same
spec = re.sub(r'LANGUAGE sql STABLE AS \$\$(.*?)\$\$;',
              lambda m: 'LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN (%s); END $$;' % m.group(1).strip(),
              spec, flags=re.S)
# the coordinator's placements of the reference tables depend on the
# extension's functions but are not its members: DROP EXTENSION needs
# CASCADE there (README "Scaling out", limitations)
spec = re.sub(r'DROP EXTENSION overage;', 'DROP EXTENSION overage CASCADE;', spec)
open(sys.argv[2], 'w').write(spec)
PY
	grep -q "overage.distribute" "$iso/specs/$s.spec" || fail "spec $s: no CREATE EXTENSION line to distribute after"
	cp "test/isolation/expected/$s.out" "$iso/expected/"
done
[ "$(id -u)" = 0 ] && chown -R postgres "$iso"
# isolationtester sees a session wait only for a lock of its own node:
# Citus' replacement also sees the waits on the workers
q -d overage_iso -c "SELECT citus_internal.replace_isolation_tester_func()" >/dev/null
# the specs' own reports join holder and subscription by subscription_id
q -d overage_iso -c "ALTER DATABASE overage_iso SET citus.enable_repartition_joins = on" >/dev/null
ISO=$(dirname "$(pg_config --pgxs)")/../test/isolation/pg_isolation_regress
if (cd "$iso" && "$ISO" --use-existing --dbname=overage_iso --host="$PGHOST" --port="$PGPORT" \
		--user=postgres --inputdir="$iso" --outputdir="$iso/out" $SPECS) >"$DIR/iso.log" 2>&1; then
	pass "isolation specs through the coordinator: $(grep -c ' ok ' "$DIR/iso.log") of $(echo $SPECS | wc -w) ($SPECS)"
else
	fail "isolation specs:"; grep -E ' (ok|FAILED|failed) ' "$DIR/iso.log"
	head -120 "$iso/out/regression.diffs" 2>/dev/null
fi

# --- 5. row-level security -------------------------------------------------
out=$(q -d overage_citus 2>&1 <<'SQL'
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_citus_a, regress_citus_b;
CREATE ROLE regress_citus_a LOGIN;
CREATE ROLE regress_citus_b LOGIN;
INSERT INTO overage.service (service_id, name, unit_price) VALUES ('dom', 'Domestic', 0.02);
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES ('E5', '1', 'E5', 'IncludeOverage');
INSERT INTO overage.sku_service VALUES ('E5', '1', 'dom', 1);
INSERT INTO overage.partner VALUES ('A', 'Alpha'), ('B', 'Beta');
INSERT INTO overage.customer SELECT 'c' || i, 'Customer ' || i, 'US' FROM generate_series(1, 12) i;
SELECT overage.add_agent('regress_citus_a', 'A', 'global_admin');
SELECT overage.add_agent('regress_citus_b', 'B', 'global_admin');
-- A buys for c1..c8, B for c5..c12: c5..c8 have both, A first
SELECT count(overage.purchase('A', 'c' || i, 'E5', '1', 2, '2026-03-01')) FROM generate_series(1, 8) i;
SELECT count(overage.purchase('B', 'c' || i, 'E5', '1', 1, '2026-03-02')) FROM generate_series(5, 12) i;
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
SELECT 'c' || (1 + i % 12), 'dom', 'u', '2026-03-10'::timestamptz + i * interval '1 minute', 600
  FROM generate_series(1, 240) i;
SELECT overage.close_month('2026-03-01');
SQL
)
echo "$out" | grep -q ERROR && fail "row-level security setup: $out"
rls_ok=1
for p in A B; do
	role=regress_citus_$(echo $p | tr AB ab)
	for t in "subscription:partner_id = '$p'" \
			 "holder:partner_id = '$p'" \
			 "holder_period:partner_id = '$p'" \
			 "assignment_log:from_partner_id = '$p' OR to_partner_id = '$p'" \
			 "charge:partner_id = '$p'" \
			 "license_quantity:EXISTS (SELECT 1 FROM overage.subscription s WHERE s.customer_id = t.customer_id AND s.subscription_id = t.subscription_id AND s.partner_id = '$p')" \
			 "customer:customer_id IN (SELECT s.customer_id FROM overage.subscription s WHERE s.partner_id = '$p')" \
			 "partner:partner_id = '$p'"; do
		tab=${t%%:*}; cond=${t#*:}
		# the rows' keys as the agent sees them, and as the superuser
		# filters them
		key="md5(row(t.*)::text)"
		mine=$(q -d overage_citus -c "SET ROLE $role; SELECT count(*), coalesce(md5(string_agg($key, ',' ORDER BY $key)), '') FROM overage.$tab t" 2>&1)
		want=$(q -d overage_citus -c "SELECT count(*), coalesce(md5(string_agg($key, ',' ORDER BY $key)), '') FROM overage.$tab t WHERE $cond" 2>&1)
		all=$(q -d overage_citus -c "SELECT count(*) FROM overage.$tab" 2>&1)
		if [ "$mine" != "$want" ] || [ "${mine%%|*}" -ge "$all" ] 2>/dev/null || [ "${mine%%|*}" = 0 ]; then
			fail "row-level security: $role on $tab sees '$mine', wants '$want' of $all rows"
			rls_ok=0
		fi
	done
done
[ $rls_ok = 1 ] && pass "row-level security through the coordinator: 2 agents x 8 tables see exactly their partner's rows (none sees all, none sees nothing)"

# --- 6. kill -9 of a worker during close_month -----------------------------
# ingest_pstn_calls: the sample response (262 rows, 260 ids) of a customer
# stored once, each call with its service, user, start and duration; again:
# every row a duplicate
out=$(q -d overage_citus 2>&1 <<SQL
SET TimeZone = 'UTC';
INSERT INTO overage.service (service_id, name, unit_price) VALUES
	('DOM', 'Domestic calling', 0.02), ('INTL', 'International calling', 0.12);
INSERT INTO overage.call_mapping VALUES
	('user_out', 'Domestic', 'DOM'), ('user_out', 'International', 'INTL'),
	('user_in', NULL, 'DOM'), ('user_out_conf', 'Domestic', 'DOM'),
	('user_out_transfer', 'Domestic', 'DOM'), ('user_out_forwarding', 'International', 'INTL'),
	('conf_in', NULL, 'DOM'), ('conf_out', 'Domestic', 'DOM');
\\set calls \`cat test/data/graph_pstn_calls_sample.json\`
SELECT inserted || '/' || duplicates FROM overage.ingest_pstn_calls('c3', :'calls');
SELECT inserted || '/' || duplicates FROM overage.ingest_pstn_calls('c3', :'calls');
SELECT count(*)
  FROM jsonb_array_elements(:'calls'::jsonb -> 'value') WITH ORDINALITY AS e(r, o)
  JOIN overage.pstn_call p ON p.customer_id = 'c3' AND p.call_id = (e.r ->> 'id')::uuid
  JOIN overage.usage u ON u.customer_id = 'c3' AND u.usage_id = p.usage_id
  JOIN overage.call_mapping m ON m.call_type = e.r ->> 'callType'
   AND m.destination_context IS NOT DISTINCT FROM e.r ->> 'destinationContext'
 WHERE e.o <= 260 AND u.service_id = m.service_id
   AND u.user_id = e.r ->> 'userId' AND u.started_at = (e.r ->> 'startDateTime')::timestamptz
   AND u.duration_s = (e.r ->> 'duration')::int;
SELECT sum(seconds) FROM overage.usage_month WHERE customer_id = 'c3' AND service_id IN ('DOM', 'INTL');
SQL
)
if [ "$(echo $out)" = "260/2 0/262 260 264520" ]; then
	pass "ingest_pstn_calls: the sample's 260 calls stored once (2 duplicates), again: 262 duplicates"
else
	fail "ingest_pstn_calls: $(echo $out | cut -c1-600)"
fi

# the month rated per shard on the workers (_rate_month_shards) gives the
# lines of the rating on the coordinator (_rate_month through Citus); a
# transaction that wrote before preview_month or close_month is rated on
# the coordinator, which sees its writes
out=$(q -d overage_citus 2>&1 <<'SQL'
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
SELECT 'c' || (1 + i % 12), 'dom', 'u', '2026-05-01'::timestamptz + i * interval '1 minute', 60 + i % 900
  FROM generate_series(1, 6000) i;
SELECT count(*) FROM overage._month_lines('2026-05-01', true);
SELECT count(*) FROM ((SELECT * FROM overage._month_lines('2026-05-01', true)
					   EXCEPT ALL SELECT * FROM overage._month_lines('2026-05-01', false))
			UNION ALL (SELECT * FROM overage._month_lines('2026-05-01', false)
					   EXCEPT ALL SELECT * FROM overage._month_lines('2026-05-01', true))) d;
SELECT sum(overage_seconds) FROM overage.preview_month('2026-05-01');
BEGIN;
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
VALUES ('c1', 'dom', 'u', '2026-05-31 12:00+00', 3600);
CREATE TEMP TABLE in_xact AS SELECT * FROM overage.preview_month('2026-05-01');
SELECT sum(overage_seconds) FROM in_xact;
SELECT overage.close_month('2026-05-01');
COMMIT;
SELECT count(*) FROM ((SELECT * FROM overage.charge WHERE month = '2026-05-01' EXCEPT ALL SELECT * FROM in_xact)
			UNION ALL (SELECT * FROM in_xact EXCEPT ALL SELECT * FROM overage.charge WHERE month = '2026-05-01')) d;
SELECT count(*) FROM ((SELECT * FROM overage.preview_month('2026-05-01') EXCEPT ALL SELECT * FROM in_xact)
			UNION ALL (SELECT * FROM in_xact EXCEPT ALL SELECT * FROM overage.preview_month('2026-05-01'))) d;
SQL
)
set -- $out
if [ $# = 7 ] && [ "$1" -gt 0 ] 2>/dev/null && [ "$2" = 0 ] && [ "$4" -gt "$3" ] 2>/dev/null \
	&& [ "$5" -gt 0 ] 2>/dev/null && [ "$6" = 0 ] && [ "$7" = 0 ]; then
	pass "the month rated per shard on the workers: the $1 lines of the rating on the coordinator; in a transaction that wrote first, preview_month and close_month see its call"
else
	fail "the month rated per shard: $(echo $out | cut -c1-600)"
fi

# _rate_shard refuses what is not a local shard of usage (the coordinator
# has none) and an infinite month
out=$(q -d overage_citus 2>&1 <<'SQL'
-- (Citus warns that a pg_temp function stays on the coordinator)
SET client_min_messages = error;
CREATE FUNCTION pg_temp.state(q text) RETURNS text LANGUAGE plpgsql AS
$$ BEGIN EXECUTE q; RETURN 'ok'; EXCEPTION WHEN others THEN RETURN SQLSTATE; END $$;
SELECT pg_temp.state($$SELECT * FROM overage._rate_shard('2026-05-01', 'overage.usage')$$)
	|| ' ' || pg_temp.state($$SELECT * FROM overage._rate_shard('2026-05-01', 'overage.customer')$$)
	|| ' ' || pg_temp.state($$SELECT * FROM overage._rate_shard('infinity', 'overage.usage')$$);
SQL
)
if [ "$out" = "22023 22023 22023" ]; then
	pass "_rate_shard refuses a relation that is not a local shard of usage and an infinite month (22023)"
else
	fail "_rate_shard's refusals: $out"
fi

out=$(q -d overage_citus 2>&1 <<'SQL'
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
SELECT 'c' || (1 + i % 12), 'dom', 'u', '2026-04-01'::timestamptz + i * interval '1 second', 60 + i % 600
  FROM generate_series(1, 20000) i;
CREATE TABLE public.promised AS SELECT * FROM overage.preview_month('2026-04-01');
SELECT count(*) FROM public.promised;
SQL
)
promised=$(echo "$out" | tail -1)
# the close in an open transaction, held open until the worker is dead
q -d overage_citus >"$DIR/close.log" 2>&1 <<'SQL' &
BEGIN;
SELECT overage.close_month('2026-04-01');
SELECT pg_sleep(4);
COMMIT;
SQL
closer=$!
# the close done, its transaction open: then the worker dies
for _ in $(seq 1 100); do
	grep -q '^[0-9]' "$DIR/close.log" 2>/dev/null && break
	sleep 0.1
done
wpid=$(head -1 "$DIR/w1/postmaster.pid")
# (a child may exit between pgrep and kill: the shards' short connections)
kill -9 $(pgrep -P "$wpid") "$wpid" 2>/dev/null
echo "killed worker w1: postmaster $wpid and its children" >>"$DIR/kill.log"
wait $closer
closer_rc=$?
"$here/cluster.sh" start "$DIR" >"$DIR/restart.log" 2>&1 || { fail "worker restart"; cat "$DIR/restart.log"; }
sleep 1
after=$(q -d overage_citus -c "SELECT (SELECT closed_at IS NULL FROM overage.billing_month WHERE month = '2026-04-01'),
		(SELECT count(*) FROM overage.charge WHERE month = '2026-04-01')" 2>&1)
if [ "$closer_rc" != 0 ] && [ "$after" = "t|0" ] && [ "${promised:-0}" -gt 0 ] 2>/dev/null; then
	pass "kill -9 of a worker during close_month: the close failed ($(grep -m1 -E 'ERROR|FATAL|connection' "$DIR/close.log" | cut -c1-100)); month open, no line"
else
	fail "kill -9 of a worker during close_month: close rc $closer_rc, after '$after', promised '$promised'"; cat "$DIR/close.log"
fi
again=$(q -d overage_citus 2>&1 <<'SQL'
SELECT overage.close_month('2026-04-01');
SELECT count(*) FROM ((SELECT * FROM public.promised EXCEPT ALL SELECT * FROM overage.charge WHERE month = '2026-04-01')
		 UNION ALL (SELECT * FROM overage.charge WHERE month = '2026-04-01' EXCEPT ALL SELECT * FROM public.promised)) d;
SQL
)
if [ "$again" = "$promised
0" ]; then
	pass "after the worker's restart close_month wrote exactly the $promised lines preview_month showed"
else
	fail "close after restart: '$again', promised $promised"
fi

# verify() through the coordinator: every check passes on what the parts
# above wrote; a holder period moved by hand on its worker (triggers off)
# is found, and after the repair every check passes again
out=$(q -d overage_citus -c "SELECT count(*) FILTER (WHERE ok) || '/' || count(*) FROM overage.verify()" 2>&1)
read -r sid sport < <(q -d overage_citus -F ' ' -c "SELECT s.shardid, p.nodeport FROM pg_dist_shard s
	JOIN pg_dist_placement pl USING (shardid) JOIN pg_dist_node p USING (groupid)
	WHERE s.shardid = get_shard_id_for_distribution_column('overage.holder_period', 'c1')")
move() {	# move SECONDS: the open holder period of c1 on its shard, triggers off
	q -h "$PGHOST" -p "$sport" -d overage_citus -c "SET session_replication_role = replica" \
		-c "SET citus.enable_manual_changes_to_shards = on" \
		-c "UPDATE overage.holder_period_$sid SET valid_from = valid_from + interval '$1 seconds' WHERE customer_id = 'c1' AND valid_to IS NULL" 2>&1
}
move -1 >/dev/null
broken=$(q -d overage_citus -c "SELECT check_name || ': ' || detail FROM overage.verify() WHERE NOT ok" 2>&1)
move 1 >/dev/null
again=$(q -d overage_citus -c "SELECT count(*) FILTER (WHERE ok) || '/' || count(*) FROM overage.verify()" 2>&1)
if [ "$out" = 12/12 ] && [ "$again" = 12/12 ] && echo "$broken" | grep -q "^holder_open_period: .*c1/dom"; then
	pass "verify() through the coordinator: 12 of 12 checks pass; a holder period moved on its worker is found ($(echo "$broken" | head -1 | cut -c1-90)...)"
else
	fail "verify(): before '$out', moved '$broken', after '$again'"
fi

if [ $failed -eq 0 ]; then
	echo "citus: all parts passed"
	exit 0
fi
echo "citus: $failed part(s) failed"
exit 1
