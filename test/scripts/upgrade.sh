#!/usr/bin/env bash
# upgrade: ALTER EXTENSION overage UPDATE from 1.0 to 1.1 and on to the
# default version, one step at a time, keeps every row and gives the same
# extension as a fresh CREATE EXTENSION.
#
# Runs inside pg_virtualenv (PGHOST/PGPORT/PGUSER of a superuser).  Installs
# 1.0, fills it through the 1.0 API (with calls, a closed month and an open
# one), updates, and checks that
#   - after each step, every row of every table and sequence 1.0 registered
#     is unchanged;
#   - the upgraded extension is the same as a fresh install of the default
#     version: member objects, functions with their whole definition and
#     privileges, tables with row-level security, options and privileges,
#     columns with types, defaults, identity and generation, constraints,
#     indexes, triggers, policies, comments, schema privileges;
#   - the new objects work: agents, authorization, row-level security, on
#     the metering objects too.
# Exits non-zero with a message on any difference.
set -euo pipefail
cd "$(dirname "$0")/../.."

OLD=overage_upgrade_old
NEW=overage_upgrade_fresh
WORK=$(mktemp -d)
chmod 777 "$WORK"
ROLES="regress_overage_upgrade_p1 regress_overage_upgrade_p2"

fail() { echo "upgrade: FAILED: $*" >&2; exit 1; }
cleanup() {
	for db in $OLD $NEW; do dropdb --if-exists "$db" 2>/dev/null || true; done
	for r in $ROLES; do command psql -X -q -d postgres -c "DROP ROLE IF EXISTS $r" >/dev/null 2>&1 || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
for db in $OLD $NEW; do dropdb --if-exists "$db" 2>/dev/null || true; done

psql() { command psql -X -v ON_ERROR_STOP=1 -q "$@"; }

createdb "$OLD"
createdb "$NEW"

echo "== installing 1.0 and filling it through the 1.0 API"
psql -d "$OLD" <<'SQL'
SET timezone = 'UTC';
CREATE EXTENSION overage VERSION '1.0';
INSERT INTO overage.service (service_id, name, unit_price) VALUES ('voice', 'Domestic calling', 0.02);
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES
	('E5', '0001', 'Microsoft 365 E5 with Calling Plan', 'IncludeOverage');
INSERT INTO overage.sku_service VALUES ('E5', '0001', 'voice', 120);
INSERT INTO overage.partner VALUES ('P1', 'Contoso'), ('P2', 'Fabrikam');
INSERT INTO overage.customer VALUES ('C1', 'Tailspin', 'US');
SELECT overage.purchase('P1', 'C1', 'E5', '0001', 10, '2026-01-01') AS l1 \gset
SELECT overage.purchase('P2', 'C1', 'E5', '0001', 5, '2026-01-02') AS l2 \gset
SELECT overage.set_quantity(:'l1', 11, '2026-01-03');
SELECT overage.release_overage('P1', 'C1', 'voice', '2026-01-04');
SELECT overage.assign_overage('P2', 'C1', 'voice', s.subscription_id, '2026-01-05')
  FROM overage.subscription s WHERE s.partner_id = 'P2' AND s.kind = 'overage';
SELECT overage.cancel(:'l1', '2026-01-06');
-- calls: P1 holds C1's overage until 01-04, None until 01-05, then P2;
-- January is closed with 1.0's close_month, February stays open
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'voice', 'u1', '2026-01-01 09:00', 86400),
	('C1', 'voice', 'u1', '2026-01-02 09:00', 86400),
	('C1', 'voice', 'u2', '2026-01-04 12:00', 3600),
	('C1', 'voice', 'u3', '2026-01-10 12:00', 3600),
	('C1', 'voice', 'u3', '2026-02-10 12:00', 600),
	('C1', 'voice', 'u4', '2026-02-10 13:00', 86400);
SELECT overage.close_month('2026-01-01') AS lines;
SQL

# snapshot DB OUT COLS: every row of the registered tables.  The first call
# writes each table's columns to COLS; later calls show only those columns,
# so a column an update adds (at the end, NULL in old rows: 1.2's reseller
# columns) does not count as a changed row.
snapshot() {
	local db=$1 out=$2 cols=$3
	psql -At -d "$db" -c "SELECT c.oid::regclass, c.relkind FROM pg_extension e,
		unnest(e.extconfig) AS t(oid) JOIN pg_class c ON c.oid = t.oid
		WHERE e.extname = 'overage' ORDER BY 1" |
	while IFS='|' read -r rel kind; do
		echo "### $rel"
		if [ "$kind" = S ]; then
			psql -At -d "$db" -c "SELECT last_value, is_called FROM $rel"
		else
			if ! grep -q "^$rel " "$cols" 2>/dev/null; then
				echo "$rel $(psql -At -d "$db" -c "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)
					FROM pg_attribute WHERE attrelid = '$rel'::regclass AND attnum > 0 AND NOT attisdropped")" >> "$cols"
			fi
			psql -At -d "$db" -c "SELECT ROW($(grep "^$rel " "$cols" | cut -d' ' -f2-))::text FROM $rel t ORDER BY 1"
		fi
	done > "$out"
}
rm -f "$WORK/columns"
snapshot "$OLD" "$WORK/before.rows" "$WORK/columns"

default=$(psql -At -d "$OLD" -c "SELECT default_version FROM pg_available_extensions WHERE name = 'overage'")
for step in 1.1 "$default"; do
	echo "== ALTER EXTENSION overage UPDATE TO '$step'"
	psql -d "$OLD" -c "ALTER EXTENSION overage UPDATE TO '$step'"
	version=$(psql -At -d "$OLD" -c "SELECT extversion FROM pg_extension WHERE extname = 'overage'")
	[ "$version" = "$step" ] || fail "updated to $version, not $step"

	# the rows of the tables 1.0 registered (new tables are compared as empty)
	snapshot "$OLD" "$WORK/after.rows" "$WORK/columns"
	if ! diff -u "$WORK/before.rows" <(awk -v f="$WORK/before.rows" '
		BEGIN { while ((getline l < f) > 0) if (l ~ /^### /) keep[l] = 1 }
		/^### / { on = ($0 in keep) } on' "$WORK/after.rows"); then
		fail "rows changed by the update to $step (diff above)"
	fi
	echo "   every row of $(grep -c '^###' "$WORK/before.rows") tables and sequences is unchanged"
	# verify() came with 1.2: from then on the upgraded data must pass it
	if psql -At -d "$OLD" -c "SELECT to_regprocedure('overage.verify()') IS NOT NULL" | grep -q t; then
		bad=$(psql -At -d "$OLD" -c "SELECT check_name || ': ' || detail FROM overage.verify() WHERE NOT ok")
		[ -z "$bad" ] || fail "verify() after the update to $step: $bad"
		echo "   overage.verify(): $(psql -At -d "$OLD" -c "SELECT count(*) FROM overage.verify()") checks pass"
	fi
done

echo "== a close right after the update bills the calls from before it"
# February's calls came before 1.2: figures in usage_month, no rated state.
# The update marks them (rating_stale), so the close rates them although
# nothing is pending; without the mark it would take February's lines from
# rated states that do not exist and bill nothing.  Rolled back.
psql -d "$OLD" <<'SQL'
SET timezone = 'UTC';
BEGIN;
CREATE TEMP TABLE preview AS SELECT * FROM overage.preview_month('2026-02-01');
DO $$
DECLARE
	n bigint;
	lines integer;
BEGIN
	SELECT count(*) INTO n FROM preview;
	IF n = 0 THEN
		RAISE EXCEPTION 'February has no overage to bill: the test needs some';
	END IF;
	IF EXISTS (SELECT 1 FROM overage.usage_pending) THEN
		RAISE EXCEPTION 'calls pending right after the update';
	END IF;
	lines := overage.close_month('2026-02-01');
	IF lines <> n OR EXISTS (SELECT * FROM preview EXCEPT ALL SELECT * FROM overage.charge WHERE month = '2026-02-01')
	   OR EXISTS (SELECT * FROM overage.charge WHERE month = '2026-02-01' EXCEPT ALL SELECT * FROM preview) THEN
		RAISE EXCEPTION 'the close wrote % lines, preview_month showed %: the calls from before the update were not billed as previewed', lines, n;
	END IF;
	RAISE NOTICE 'close_month wrote the % lines preview_month showed', lines;
END
$$;
ROLLBACK;
SQL

echo "== the upgraded extension is the same as a fresh install"
psql -d "$NEW" -c "CREATE EXTENSION overage"
shape() {
	psql -At -d "$1" <<'SQL'
-- every member object
SELECT 'object ' || pg_describe_object(d.classid, d.objid, 0)
  FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
 WHERE e.extname = 'overage' AND d.deptype = 'e'
UNION ALL
-- functions: the whole definition (language, security, configuration,
-- volatility, strictness, body), and privileges
SELECT 'function ' || p.oid::regprocedure
	   || ' acl=' || coalesce(p.proacl::text, 'default') || ' '
	   || replace(pg_get_functiondef(p.oid), E'\n', E'\n    ')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname LIKE 'overage%'
UNION ALL
-- tables, sequences, views: row-level security, options, privileges
SELECT 'relation ' || c.oid::regclass || ' kind=' || c.relkind::text
	   || ' rls=' || c.relrowsecurity || ' force=' || c.relforcerowsecurity
	   || ' options=' || coalesce(c.reloptions::text, '-')
	   || ' acl=' || coalesce(c.relacl::text, 'default')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname LIKE 'overage%' AND c.relkind IN ('r', 'S', 'v', 'p')
UNION ALL
-- columns, in order, with type, nullability, default, identity, generation
SELECT 'column ' || a.attrelid::regclass || ' ' || a.attnum || ' ' || a.attname
	   || ' ' || format_type(a.atttypid, a.atttypmod) || ' notnull=' || a.attnotnull
	   || ' default=' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), '-')
	   || ' identity=' || a.attidentity::text || ' generated=' || a.attgenerated::text
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
 WHERE n.nspname LIKE 'overage%' AND c.relkind IN ('r', 'v', 'p')
   AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || con.conrelid::regclass || ' ' || con.conname || ' '
	   || pg_get_constraintdef(con.oid)
  FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
 WHERE n.nspname LIKE 'overage%'
UNION ALL
SELECT 'index ' || pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname LIKE 'overage%'
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(tg.oid) || ' enabled=' || tg.tgenabled::text
  FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname LIKE 'overage%' AND NOT tg.tgisinternal
UNION ALL
SELECT 'policy ' || schemaname || '.' || tablename || ' ' || policyname || ' '
	   || cmd || ' ' || array_to_string(roles, ',') || ' ' || coalesce(qual, '') || ' '
	   || coalesce(with_check, '')
  FROM pg_policies WHERE schemaname LIKE 'overage%'
UNION ALL
-- comments on every object of the extension's schemas and on their columns
SELECT 'comment ' || pg_describe_object(ds.classoid, ds.objoid, ds.objsubid)
	   || ': ' || ds.description
  FROM pg_description ds
 WHERE (ds.classoid = 'pg_class'::regclass
		AND ds.objoid IN (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
						   WHERE n.nspname LIKE 'overage%'))
	OR (ds.classoid = 'pg_proc'::regclass
		AND ds.objoid IN (SELECT p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
						   WHERE n.nspname LIKE 'overage%'))
	OR (ds.classoid = 'pg_namespace'::regclass
		AND ds.objoid IN (SELECT oid FROM pg_namespace WHERE nspname LIKE 'overage%'))
UNION ALL
SELECT 'schema ' || nspname || ' acl=' || coalesce(nspacl::text, 'default')
  FROM pg_namespace WHERE nspname LIKE 'overage%'
UNION ALL
SELECT 'config ' || c.oid::regclass || ' ' || coalesce(e.extcondition[t.n], '')
  FROM pg_extension e, unnest(e.extconfig) WITH ORDINALITY AS t(oid, n)
  JOIN pg_class c ON c.oid = t.oid
 WHERE e.extname = 'overage'
ORDER BY 1;
SQL
}
shape "$OLD" > "$WORK/upgraded.shape"
shape "$NEW" > "$WORK/fresh.shape"
if ! diff -u "$WORK/fresh.shape" "$WORK/upgraded.shape"; then
	fail "the upgraded extension differs from a fresh install (diff above: - fresh, + upgraded)"
fi
echo "   $(wc -l < "$WORK/fresh.shape") catalog facts are the same"

echo "== the new objects work on the upgraded data"
for r in $ROLES; do psql -d postgres -c "CREATE ROLE $r"; done
psql -d "$OLD" <<'SQL'
SET timezone = 'UTC';
SELECT overage.add_agent('regress_overage_upgrade_p1', 'P1', 'global_admin');
SELECT overage.add_agent('regress_overage_upgrade_p2', 'P2', 'admin_agent');
SET ROLE regress_overage_upgrade_p2;
DO $$
DECLARE
	n int;
BEGIN
	-- row-level security: P2 sees its own 1.0 subscriptions only
	SELECT count(*) INTO n FROM overage.subscription WHERE partner_id <> 'P2';
	IF n <> 0 THEN
		RAISE EXCEPTION 'P2 sees % subscriptions of other partners', n;
	END IF;
	SELECT count(*) INTO n FROM overage.subscription;
	IF n = 0 THEN
		RAISE EXCEPTION 'P2 sees none of its 1.0 subscriptions';
	END IF;
	-- the 1.0 holder row is P2's and readable through GET
	IF NOT EXISTS (SELECT 1 FROM overage.get_overage('C1')
				    WHERE partner_id = 'P2' AND subscription_id IS NOT NULL) THEN
		RAISE EXCEPTION 'get_overage lost the 1.0 holder';
	END IF;
	-- authorization: another partner's id is refused
	BEGIN
		PERFORM overage.purchase('P1', 'C1', 'E5', '0001', 1, '2026-02-01');
		RAISE EXCEPTION 'P2 could buy for P1';
	EXCEPTION WHEN insufficient_privilege THEN
		NULL;
	END;
	-- metering: P2's admin agent reads the pool of its customer, not the
	-- reconciliation file (billing) and no charge lines; no operator actions
	IF NOT EXISTS (SELECT 1 FROM overage.pool_status('C1', 'voice', '2026-01-31')
				    WHERE used_minutes > 0) THEN
		RAISE EXCEPTION 'pool_status lost the 1.0 calls';
	END IF;
	BEGIN
		PERFORM overage.reconciliation('P2', '2026-01-01');
		RAISE EXCEPTION 'an admin agent read the reconciliation file';
	EXCEPTION WHEN insufficient_privilege THEN
		NULL;
	END;
	IF EXISTS (SELECT 1 FROM overage.charge) THEN
		RAISE EXCEPTION 'an admin agent sees charge lines';
	END IF;
	BEGIN
		PERFORM overage.close_month('2026-02-01');
		RAISE EXCEPTION 'an admin agent closed a month';
	EXCEPTION WHEN insufficient_privilege THEN
		NULL;
	END;
	-- and its own work goes on: release at a later instant
	PERFORM overage.release_overage('P2', 'C1', 'voice', '2026-02-01');
END
$$;
-- P1's global admin: P1's 1.0 charge lines only, and its reconciliation file
SET ROLE regress_overage_upgrade_p1;
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM overage.charge)
	   OR EXISTS (SELECT 1 FROM overage.charge WHERE partner_id IS DISTINCT FROM 'P1') THEN
		RAISE EXCEPTION 'P1 does not see exactly its own 1.0 charge lines';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM overage.reconciliation('P1', '2026-01-01')) THEN
		RAISE EXCEPTION 'no reconciliation lines for P1 from the 1.0 close';
	END IF;
END
$$;
RESET ROLE;
-- the operator ingests into the open month and closes it
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
	VALUES ('C1', 'voice', 'u4', '2026-02-11 12:00', 60);
SELECT overage.close_month('2026-02-01') >= 0 AS closed;
SELECT 1/(count(*))::int AS february_closed FROM overage.billing_month
 WHERE month = '2026-02-01' AND closed_at IS NOT NULL AND closed_by = current_user;
-- the audit row names the agent
SELECT 1/(count(*))::int AS audited FROM overage.assignment_log
 WHERE by_role = 'regress_overage_upgrade_p2' AND reason = 'release';
SQL

echo "upgrade: ok"
