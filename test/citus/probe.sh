#!/usr/bin/env bash
# test/citus/probe.sh [DIR] -- what Citus does with the overage extension
#
# Exploratory, not part of the test command: prints a report, exits 0.
# With DIR: uses the cluster test/citus/cluster.sh started there (left
# running).  Without: starts one in a temporary directory and stops it at
# the end, whatever happens.  Installs overage from this worktree into the
# PostgreSQL on PATH first (PROBE_NO_INSTALL=1 skips it); Citus must be
# installed there (test/citus/build-citus.sh).
#
# Three databases on the same nodes, each with citus and overage:
#   probe_safe    distributes table by table, citus.enable_unsafe_triggers off
#   probe_unsafe  the same with citus.enable_unsafe_triggers on
#   probe_work    applies the workarounds the failures call for (policies
#                 without subqueries, keys that include customer_id), then
#                 distributes everything and runs the API through the
#                 coordinator: purchase, release/assign, usage ingest,
#                 preview_month, pool_status, close_month, RLS, verify
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)

if [ "${PROBE_NO_INSTALL:-}" != 1 ]; then
	make -s -C "$top" PG_CONFIG="$(command -v pg_config)" >/dev/null 2>&1 \
		&& make -s -C "$top" PG_CONFIG="$(command -v pg_config)" install >/dev/null \
		|| { echo "probe: building/installing overage failed" >&2; exit 1; }
fi

if [ -n "${1:-}" ]; then
	DIR=$1; own=0
else
	DIR=$(mktemp -d /tmp/citus-probe.XXXX); own=1
	trap '"$here/cluster.sh" stop "$DIR"; rm -rf "$DIR"' EXIT
	trap 'exit 1' INT TERM
fi
PORT=${CITUS_PORT:-55430}

for db in probe_safe probe_unsafe probe_work; do
	CITUS_DB=$db "$here/cluster.sh" start "$DIR" >/dev/null || { echo "probe: cluster start failed" >&2; exit 1; }
done

# psql on the coordinator (or -p another port), errors with their detail
P() { psql -X -q -h "$DIR" -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -v VERBOSITY=default "$@"; }
# try DB LABEL SQL: runs SQL (one transaction) and prints one line, or the error
try() {
	local db=$1 label=$2 sql=$3 out
	if out=$(P -d "$db" -tA -1 -c "$sql" 2>&1 <<<''); then
		printf '  ok    %-58s %s\n' "$label" "$(echo "$out" | grep -v '^$' | tr '\n' ' ' | cut -c1-120)"
	else
		printf '  FAIL  %s\n' "$label"
		echo "$out" | grep -E '^(ERROR|DETAIL|HINT|CONTEXT):' | sed 's/^/          /' | head -6
	fi
}
# try_f: the same with a script on stdin
try_f() {
	local db=$1 label=$2 out
	if out=$(P -d "$db" -tA -1 -f - 2>&1); then
		printf '  ok    %-58s %s\n' "$label" "$(echo "$out" | grep -v '^$' | tr '\n' ' ' | cut -c1-160)"
	else
		printf '  FAIL  %s\n' "$label"
		echo "$out" | grep -E '^(psql:.*)?(ERROR|DETAIL|HINT|CONTEXT):' | sed 's/^psql:[^ ]* //; s/^/          /' | head -6
	fi
}

# on_all DB LABEL: the script on stdin on the coordinator and both workers,
# citus.enable_ddl_propagation off: the extension's tables exist on every node
# (CREATE EXTENSION ran there), Citus does not propagate DDL on tables it
# does not yet know, and for extension-owned tables it creates no shell table
on_all() {
	local db=$1 label=$2 sql p ok=1 out
	sql=$(cat)
	for p in $PORT $((PORT + 1)) $((PORT + 2)); do
		if ! out=$( { echo "SET citus.enable_ddl_propagation = off;"; echo "$sql"; } | P -p $p -d "$db" -tA -1 -f - 2>&1); then
			ok=0
			printf '  FAIL  %s (node :%s)\n' "$label" "$p"
			echo "$out" | grep -E 'ERROR|DETAIL|HINT' | sed 's/^psql:[^ ]* //; s/^/          /' | head -4
		fi
	done
	[ $ok = 1 ] && printf '  ok    %s (on all three nodes)\n' "$label"
	return 0
}

echo "== Citus probe of overage ($(P -d probe_work -tAc 'SELECT citus_version()' | cut -d, -f1); $(P -d probe_work -tAc 'SHOW server_version'))"
for db in probe_safe probe_unsafe probe_work; do
	P -d "$db" -c "CREATE EXTENSION IF NOT EXISTS overage" >/dev/null 2>&1
done
echo "-- CREATE EXTENSION overage on the coordinator; on the workers:"
for wp in $((PORT + 1)) $((PORT + 2)); do
	v=$(P -p "$wp" -d probe_work -tAc "SELECT extversion FROM pg_extension WHERE extname = 'overage'")
	echo "  worker :$wp: ${v:-not created (not propagated)}"
	for db in probe_safe probe_unsafe probe_work; do
		P -p "$wp" -d "$db" -c "CREATE EXTENSION IF NOT EXISTS overage" >/dev/null 2>&1
	done
done
echo "  overage objects marked distributed (pg_dist_object): $(P -d probe_work -tAc "SELECT count(*) FROM pg_dist_object o JOIN pg_extension e ON o.classid = 'pg_extension'::regclass AND o.objid = e.oid WHERE e.extname = 'overage'") extension row(s)"

# The plan issue 12 describes: catalog and parties are reference tables,
# every table with customer_id is distributed on it, co-located.  In the
# order the foreign keys need (referenced tables first).
PLAN="
service           ref
sku               ref
sku_service       ref
partner           ref
customer          ref
agent             ref
billing_month     ref
subscription      dist
license_quantity  ref
holder            dist
holder_period     dist
assignment_log    dist
transfer          dist
usage             dist
usage_month       dist
charge            dist
"
distribute() {	# distribute DB TABLE KIND [SET...]
	local db=$1 t=$2 kind=$3 pre=${4:-} colo
	if [ "$kind" = ref ]; then
		try "$db" "$t: create_reference_table" "$pre SELECT create_reference_table('overage.$t')"
	else
		# co-locate with the first table distributed on customer_id
		colo=$(P -d "$db" -tAc "SELECT logicalrelid::text FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'overage' AND partmethod = 'h' ORDER BY colocationid, logicalrelid::oid LIMIT 1")
		if [ -n "$colo" ]; then opt="colocate_with => '$colo'"; else opt="shard_count => 4"; fi
		try "$db" "$t: create_distributed_table(customer_id${colo:+, colocate_with $colo})" \
			"$pre SELECT create_distributed_table('overage.$t', 'customer_id', $opt)"
	fi
}

echo
echo "== 1. citus.enable_unsafe_triggers = off (database probe_safe)"
echo "$PLAN" | while read -r t kind; do [ -n "$t" ] && distribute probe_safe "$t" "$kind"; done

echo
echo "== 2. citus.enable_unsafe_triggers = on (database probe_unsafe)"
echo "$PLAN" | while read -r t kind; do [ -n "$t" ] && distribute probe_unsafe "$t" "$kind" "SET LOCAL citus.enable_unsafe_triggers = on;"; done
echo "  -- license_quantity has no customer_id: distributed on subscription_id instead?"
try probe_unsafe "license_quantity: create_distributed_table(subscription_id)" \
	"SET LOCAL citus.enable_unsafe_triggers = on; SELECT create_distributed_table('overage.license_quantity', 'subscription_id', colocate_with => 'none')"
echo "  -- what the failures leave (pg_dist_partition):"
P -d probe_unsafe -tA -F' ' -c "SELECT '    ' || c.relname, CASE partmethod WHEN 'n' THEN 'reference' WHEN 'h' THEN 'distributed, colocation ' || colocationid END FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid ORDER BY 1"

echo
echo "== 3. Workarounds, then everything distributed (database probe_work)"
echo "  3a. policies without subqueries (function calls only; customer and"
echo "      license_quantity through a plpgsql SECURITY DEFINER function)"
on_all probe_work "rewrite the 10 policies" <<'SQL'
CREATE FUNCTION overage._probe_customer_visible(c text) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN EXISTS (SELECT 1 FROM overage.subscription s
				   WHERE s.customer_id = c AND s.partner_id = overage._acting_partner('read'));
END $$;
CREATE FUNCTION overage._probe_subscription_visible(sid uuid) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN EXISTS (SELECT 1 FROM overage.subscription s
				   WHERE s.subscription_id = sid AND s.partner_id = overage._acting_partner('read'));
END $$;
ALTER POLICY agent_self ON overage.agent USING (overage._is_operator() OR role_name = overage._caller());
ALTER POLICY partner_own ON overage.partner USING (overage._is_operator() OR partner_id = overage._acting_partner('read'));
ALTER POLICY subscription_own ON overage.subscription USING (overage._is_operator() OR partner_id = overage._acting_partner('read'));
ALTER POLICY customer_bought_for ON overage.customer USING (overage._is_operator() OR overage._probe_customer_visible(customer_id));
ALTER POLICY license_quantity_own ON overage.license_quantity USING (overage._is_operator() OR overage._probe_subscription_visible(subscription_id));
ALTER POLICY holder_own ON overage.holder USING (overage._is_operator() OR partner_id = overage._acting_partner('get_overage'));
ALTER POLICY holder_period_own ON overage.holder_period USING (overage._is_operator() OR partner_id = overage._acting_partner('get_overage'));
ALTER POLICY assignment_log_own ON overage.assignment_log USING (overage._is_operator() OR from_partner_id = overage._acting_partner('get_overage') OR to_partner_id = overage._acting_partner('get_overage'));
ALTER POLICY charge_own ON overage.charge USING (overage._is_operator() OR partner_id = overage._acting_partner('billing'));
ALTER POLICY transfer_parties ON overage.transfer USING (overage._is_operator() OR from_partner_id = overage._acting_partner('get_overage') OR to_partner_id = overage._acting_partner('get_overage') OR customer_id = overage._acting_customer());
SQL
echo "  3a'. the SQL-standard-body functions that read overage.agent rewritten"
echo "      with a string body (see 4: Citus deparses RETURN bodies as a query)"
on_all probe_work "_is_operator, _acting_partner, _acting_customer: AS \$\$ SELECT ... \$\$" <<'SQL'
CREATE OR REPLACE FUNCTION overage._is_operator() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
				WHERE r.rolname OPERATOR(pg_catalog.=) overage._caller() AND r.rolsuper)
	OR EXISTS (SELECT 1 FROM pg_catalog.pg_extension e
				 JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) e.extowner
				WHERE e.extname OPERATOR(pg_catalog.=) 'overage'
				  AND r.rolname OPERATOR(pg_catalog.=) overage._caller())
	OR EXISTS (SELECT 1 FROM overage.agent a
				WHERE a.role_name OPERATOR(pg_catalog.=) overage._caller()
				  AND a.agent_role OPERATOR(pg_catalog.=) 'operator') $$;
CREATE OR REPLACE FUNCTION overage._acting_partner(action text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
SELECT a.partner_id FROM overage.agent a
 WHERE a.role_name OPERATOR(pg_catalog.=) overage._caller()
   AND overage._allowed(action, a.agent_role) $$;
CREATE OR REPLACE FUNCTION overage._acting_customer() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
SELECT a.customer_id FROM overage.agent a
 WHERE a.role_name OPERATOR(pg_catalog.=) overage._caller()
   AND a.agent_role OPERATOR(pg_catalog.=) 'customer_admin' $$;
SQL
echo "  3b. keys that include customer_id (subscription, assignment_log, transfer;"
echo "      the foreign keys to subscription(subscription_id) become (customer_id, ...))"
on_all probe_work "re-key subscription, assignment_log, transfer" <<'SQL'
ALTER TABLE overage.subscription DROP CONSTRAINT subscription_pkey CASCADE;
ALTER TABLE overage.subscription ADD PRIMARY KEY (customer_id, subscription_id);
ALTER TABLE overage.subscription ADD FOREIGN KEY (customer_id, parent_id) REFERENCES overage.subscription (customer_id, subscription_id);
ALTER TABLE overage.holder ADD FOREIGN KEY (customer_id, subscription_id) REFERENCES overage.subscription (customer_id, subscription_id);
ALTER TABLE overage.transfer ADD FOREIGN KEY (customer_id, to_subscription_id) REFERENCES overage.subscription (customer_id, subscription_id);
ALTER TABLE overage.assignment_log DROP CONSTRAINT assignment_log_pkey;
ALTER TABLE overage.assignment_log ADD PRIMARY KEY (customer_id, log_id);
ALTER TABLE overage.transfer DROP CONSTRAINT transfer_pkey;
ALTER TABLE overage.transfer ADD PRIMARY KEY (customer_id, transfer_id);
SQL
echo "  3c. the foreign keys among the extension's tables dropped (kept in"
echo "      _probe_fk), every table distributed (enable_unsafe_triggers on), the"
echo "      foreign keys added again"
on_all probe_work "drop the foreign keys" <<'SQL'
CREATE TABLE public._probe_fk AS
SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def
  FROM pg_constraint
 WHERE contype = 'f' AND connamespace = 'overage'::regnamespace;
DO $$DECLARE r record; BEGIN
	FOR r IN SELECT * FROM public._probe_fk LOOP
		EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.tbl, r.conname);
	END LOOP;
END$$;
SQL
echo "$PLAN" | while read -r t kind; do [ -n "$t" ] && distribute probe_work "$t" "$kind" "SET LOCAL citus.enable_unsafe_triggers = on;"; done
P -d probe_work -tA -c "SELECT tbl || ' ' || conname || ' ' || def FROM public._probe_fk ORDER BY tbl, conname" |
while IFS=' ' read -r tbl con def; do
	try probe_work "FK $con" "ALTER TABLE $tbl ADD CONSTRAINT $con $def"
done
echo "  -- triggers on the shards of overage.holder on worker :$((PORT + 1)):"
P -p $((PORT + 1)) -d probe_work -tA -c "SELECT '    ' || tgrelid::regclass || ' ' || tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid::regclass::text LIKE 'overage.holder\_1%' ORDER BY 1 LIMIT 4"
echo "  -- policies on the shards (worker :$((PORT + 1))): $(P -p $((PORT + 1)) -d probe_work -tAc "SELECT count(*) FROM pg_policy WHERE polrelid::regclass::text LIKE 'overage.holder\_1%'") on holder shards, relrowsecurity $(P -p $((PORT + 1)) -d probe_work -tAc "SELECT string_agg(DISTINCT relrowsecurity::text, ',') FROM pg_class WHERE relname LIKE 'holder\_1%'")"

echo
echo "== 4. The API through the coordinator (probe_work)"
try_f probe_work "catalog and parties (reference tables)" <<'SQL'
INSERT INTO overage.service (service_id, name, unit_price) VALUES ('dom', 'Domestic calling', 0.02), ('intl', 'International calling', 0.10);
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES
	('E5', '0001', 'Microsoft 365 E5 with Calling Plan', 'Telco;IncludeOverage'),
	('DOM', '0001', 'Domestic Calling Plan', 'IncludeOverage');
INSERT INTO overage.sku_service VALUES ('E5', '0001', 'dom', 120), ('E5', '0001', 'intl', 0), ('DOM', '0001', 'dom', 1);
INSERT INTO overage.partner VALUES ('A', 'Alpha'), ('B', 'Beta');
INSERT INTO overage.customer VALUES ('c1', 'Contoso', 'US'), ('c2', 'Fabrikam', 'DE'), ('c3', 'Northwind', 'FR');
SELECT 'inserted';
SQL
try probe_work "purchase A c1 E5 (subscription triggers, first-in)" \
	"SELECT overage.purchase('A', 'c1', 'E5', '0001', 10, '2026-10-01 09:00+00') IS NOT NULL"
try probe_work "purchase A c1 E5 (allow_nested_distributed_execution)" \
	"SET LOCAL citus.allow_nested_distributed_execution = on; SELECT overage.purchase('A', 'c1', 'E5', '0001', 10, '2026-10-01 09:00+00') IS NOT NULL"
try probe_work "rows: subscription, license_quantity, holder, holder_period, assignment_log" \
	"SELECT (SELECT count(*) FROM overage.subscription), (SELECT count(*) FROM overage.license_quantity), (SELECT count(*) FROM overage.holder), (SELECT count(*) FROM overage.holder_period), (SELECT count(*) FROM overage.assignment_log)"
echo "  -- license_quantity_guard dropped (probe only), to see what comes next:"
try probe_work "DROP TRIGGER license_quantity_guard" "DROP TRIGGER license_quantity_guard ON overage.license_quantity"
try probe_work "purchase A c1 E5 (no guard on license_quantity)" \
	"SELECT overage.purchase('A', 'c1', 'E5', '0001', 10, '2026-10-01 09:00+00') IS NOT NULL"
try probe_work "rows: subscription, license_quantity, holder, holder_period, assignment_log" \
	"SELECT (SELECT count(*) FROM overage.subscription), (SELECT count(*) FROM overage.license_quantity), (SELECT count(*) FROM overage.holder), (SELECT count(*) FROM overage.holder_period), (SELECT count(*) FROM overage.assignment_log)"
try probe_work "direct INSERT into holder_period (history_guard on the shard)" \
	"INSERT INTO overage.holder_period VALUES ('c1', 'dom', NULL, NULL, '2027-01-01', NULL, NULL)"
try probe_work "purchase B c1 DOM" \
	"SELECT overage.purchase('B', 'c1', 'DOM', '0001', 1, '2026-10-02 09:00+00') IS NOT NULL"
try probe_work "release_overage A c1 dom" \
	"SELECT overage.release_overage('A', 'c1', 'dom', '2026-10-03 09:00+00')"
try probe_work "assign_overage B c1 dom" \
	"SELECT overage.assign_overage('B', 'c1', 'dom', (SELECT subscription_id FROM overage.subscription WHERE partner_id = 'B' AND customer_id = 'c1' AND kind = 'overage'), '2026-10-04 09:00+00')"
try probe_work "holder of c1 after the calls" \
	"SELECT service_id || '=' || coalesce(partner_id, 'None') || ' (' || reason || ')' FROM overage.holder WHERE customer_id = 'c1' ORDER BY 1"
try probe_work "usage: INSERT one row (statement trigger, transition table)" \
	"INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES ('c1', 'dom', 'u1', '2026-10-05 10:00+00', 600)"
try probe_work "usage: INSERT rows of two customers" \
	"INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES ('c1', 'dom', 'u1', '2026-10-06 10:00+00', 600), ('c2', 'dom', 'u2', '2026-10-06 11:00+00', 60)"
try probe_work "usage: INSERT an unknown customer (must be refused)" \
	"INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES ('nobody', 'dom', 'u1', '2026-10-06 10:00+00', 60)"
try probe_work "usage, usage_month rows" \
	"SELECT (SELECT count(*) FROM overage.usage), (SELECT count(*) FROM overage.usage_month)"
echo "  -- the usage insert trigger rewritten as a row-level trigger (probe only):"
try_f probe_work "usage_insert FOR EACH ROW calling a plpgsql wrapper" <<'SQL'
SET citus.enable_unsafe_triggers = on;
CREATE FUNCTION overage._probe_usage_row() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM overage.customer WHERE customer_id = NEW.customer_id) THEN
		RAISE EXCEPTION 'unknown customer %', NEW.customer_id;
	END IF;
	PERFORM 1 FROM overage.billing_month WHERE month = date_trunc('month', NEW.started_at AT TIME ZONE 'UTC')::date FOR SHARE;
	RETURN NULL;
END $$;
DROP TRIGGER usage_insert ON overage.usage;
CREATE TRIGGER usage_insert_row AFTER INSERT ON overage.usage FOR EACH ROW EXECUTE FUNCTION overage._probe_usage_row();
SELECT 'replaced';
SQL
try probe_work "usage: INSERT two customers (row trigger)" \
	"INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES ('c1', 'dom', 'u1', '2026-10-07 10:00+00', 600), ('c2', 'dom', 'u2', '2026-10-07 11:00+00', 60)"
try probe_work "usage: unknown customer (row trigger; must be refused)" \
	"INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES ('nobody', 'dom', 'u1', '2026-10-06 10:00+00', 60)"
try probe_work "pool_status c1 dom" \
	"SELECT row(p.*)::text FROM overage.pool_status('c1', 'dom', '2026-10-20 00:00+00') p"
try probe_work "preview_month 2026-10" \
	"SELECT count(*) || ' lines, ' || coalesce(sum(amount), 0) || ' total' FROM overage.preview_month('2026-10-01')"
try probe_work "close_month 2026-10" \
	"SELECT overage.close_month('2026-10-01')"
try probe_work "charge rows after close" "SELECT count(*) FROM overage.charge"
echo "  -- distributed functions (delegation to the worker of customer_id):"
try probe_work "create_distributed_function(pool_status, customer_id, colocate_with holder)" \
	"SELECT create_distributed_function('overage.pool_status(text,text,timestamptz)', 'customer_id', colocate_with => 'overage.holder')"
try probe_work "pool_status c1 dom (delegated)" \
	"SELECT row(p.*)::text FROM overage.pool_status('c1', 'dom', '2026-10-20 00:00+00') p"
try probe_work "create_distributed_function(purchase, customer_id)" \
	"SELECT create_distributed_function('overage.purchase(text,text,text,text,integer,timestamptz)', 'customer_id', colocate_with => 'overage.holder')"
try probe_work "purchase A c3 E5 (delegated)" \
	"SELECT overage.purchase('A', 'c3', 'E5', '0001', 2, '2026-11-01 09:00+00') IS NOT NULL"
echo "  -- row-level security as an agent of partner A:"
P -d probe_work -q -c "DO \$\$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'probe_agent_a') THEN CREATE ROLE probe_agent_a LOGIN; END IF; END\$\$" 2>/dev/null
try probe_work "add_agent probe_agent_a (global_admin of A)" \
	"SELECT overage.add_agent('probe_agent_a', 'A', 'global_admin')"
try probe_work "SELECT holder, subscription, customer as probe_agent_a" \
	"GRANT USAGE ON SCHEMA overage TO probe_agent_a; SET LOCAL ROLE probe_agent_a; SELECT (SELECT count(*) FROM overage.holder), (SELECT count(*) FROM overage.subscription), (SELECT count(*) FROM overage.customer)"
try probe_work "verify()" \
	"SELECT string_agg(check_name || '=' || ok, ' ') FROM overage.verify()"

echo
echo "== 5. citus.allow_nested_distributed_execution = on for postgres (ALTER ROLE on"
echo "      every node, database probe_work): what the triggers do past the"
echo "      nested-execution check"
for p in $PORT $((PORT + 1)) $((PORT + 2)); do
	P -p $p -d probe_work -c "SET citus.enable_ddl_propagation = off; ALTER ROLE postgres IN DATABASE probe_work SET citus.allow_nested_distributed_execution = on" >/dev/null 2>&1
done
try probe_work "purchase A c1 E5 (subscription triggers, first-in)" \
	"SELECT overage.purchase('A', 'c1', 'E5', '0001', 10, '2026-11-01 09:00+00') IS NOT NULL"
try probe_work "purchase B c1 DOM" \
	"SELECT overage.purchase('B', 'c1', 'DOM', '0001', 1, '2026-11-02 09:00+00') IS NOT NULL"
try probe_work "holder of c1" \
	"SELECT string_agg(service_id || '=' || coalesce(partner_id, 'None') || ' (' || reason || ')', ' ' ORDER BY service_id) FROM overage.holder WHERE customer_id = 'c1'"
try probe_work "release_overage A c1 dom" \
	"SELECT overage.release_overage('A', 'c1', 'dom', '2026-11-03 09:00+00')"
try probe_work "assign_overage B c1 dom" \
	"SELECT overage.assign_overage('B', 'c1', 'dom', (SELECT subscription_id FROM overage.subscription WHERE partner_id = 'B' AND customer_id = 'c1' AND kind = 'overage'), '2026-11-04 09:00+00')"
try probe_work "holder of c1" \
	"SELECT string_agg(service_id || '=' || coalesce(partner_id, 'None') || ' (' || reason || ')', ' ' ORDER BY service_id) FROM overage.holder WHERE customer_id = 'c1'"
try probe_work "rows: subscription, license_quantity, holder, holder_period, assignment_log, billing_month" \
	"SELECT (SELECT count(*) FROM overage.subscription), (SELECT count(*) FROM overage.license_quantity), (SELECT count(*) FROM overage.holder), (SELECT count(*) FROM overage.holder_period), (SELECT count(*) FROM overage.assignment_log), (SELECT count(*) FROM overage.billing_month)"
try_f probe_work "usage_insert statement trigger restored" <<'SQL'
SET citus.enable_unsafe_triggers = on;
DROP TRIGGER usage_insert_row ON overage.usage;
CREATE TRIGGER usage_insert AFTER INSERT ON overage.usage REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION overage.usage_ingest();
SQL
try probe_work "usage: INSERT one row (statement trigger, transition table)" \
	"INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES ('c1', 'dom', 'u1', '2026-11-05 10:00+00', 600)"
try probe_work "usage: COPY-like multi-row INSERT, two customers" \
	"INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES ('c1', 'dom', 'u1', '2026-11-06 10:00+00', 600), ('c2', 'dom', 'u2', '2026-11-06 11:00+00', 60)"
try probe_work "usage, usage_month rows" \
	"SELECT (SELECT count(*) FROM overage.usage), (SELECT count(*) FROM overage.usage_month)"
try probe_work "preview_month 2026-11" \
	"SELECT count(*) || ' lines, ' || coalesce(sum(amount), 0) || ' total' FROM overage.preview_month('2026-11-01')"
try probe_work "SELECT holder, subscription, customer as probe_agent_a" \
	"SET LOCAL ROLE probe_agent_a; SELECT (SELECT count(*) FROM overage.holder), (SELECT count(*) FROM overage.subscription), (SELECT count(*) FROM overage.customer)"
for p in $PORT $((PORT + 1)) $((PORT + 2)); do
	P -p $p -d probe_work -c "SET citus.enable_ddl_propagation = off; ALTER ROLE postgres IN DATABASE probe_work RESET citus.allow_nested_distributed_execution" >/dev/null 2>&1
done

echo
echo "== done (probe exits 0 whatever it found)"
exit 0
