#!/usr/bin/env bash
# dump_restore: the data of the extension survives pg_dump and restore.
#
# Runs inside pg_virtualenv (PGHOST/PGPORT/PGUSER of a superuser).  Fills a
# database through the API (catalog, agents, purchases, quantity changes,
# cancellations, a None-release handoff, an automatic release, calls
# ingested by a non-superuser operator, a closed month with its charge
# lines and an open one), dumps it,
# restores it into a fresh database with the supported procedure, and
# compares every row of every table and sequence the extension registers
# with pg_extension_config_dump.  Exits non-zero on any difference.
#
# The supported restore procedure (README "Backup and restore"):
#
#   pg_dump -Fc -d SRC -f overage.dump                # as a superuser
#   createdb DST
#   PGOPTIONS='-c session_replication_role=replica' \
#       pg_restore --exit-on-error -d DST overage.dump   # as a superuser
#
# session_replication_role = replica keeps ordinary triggers from firing
# while the rows are loaded: the extension's C triggers would otherwise
# refuse the history rows (they are written only by the extension) and
# re-derive history from the holder rows.  Foreign keys are not checked
# during the load either; the rows come from a consistent dump.  The
# setting is superuser-only and lasts only for the restoring session.
# Roles are cluster-wide and not in the dump: restore them first
# (pg_dumpall --roles-only) so that overage.agent's role names match.
set -euo pipefail
cd "$(dirname "$0")/../.."

SRC=overage_dump_src
DST=overage_dump_dst
PLAIN=overage_dump_plain
WORK=$(mktemp -d)
chmod 777 "$WORK"
ROLES="regress_overage_dump_ga regress_overage_dump_aa regress_overage_dump_sa regress_overage_dump_ops"

fail() { echo "dump_restore: FAILED: $*" >&2; exit 1; }

cleanup() {
	for db in $SRC $DST $PLAIN; do dropdb --if-exists "$db" || true; done
	for r in $ROLES; do psql -X -q -d postgres -c "DROP ROLE IF EXISTS $r" >/dev/null 2>&1 || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
for db in $SRC $DST $PLAIN; do dropdb --if-exists "$db" 2>/dev/null || true; done

psql() { command psql -X -v ON_ERROR_STOP=1 -q "$@"; }

createdb "$SRC"
for r in $ROLES; do psql -d postgres -c "CREATE ROLE $r"; done

echo "== filling $SRC through the API"
psql -d "$SRC" <<'SQL'
SET timezone = 'UTC';
CREATE EXTENSION overage;
INSERT INTO overage.service (service_id, name, unit_price) VALUES
	('voice', 'Domestic calling', 0.02), ('intl', 'International calling', 0.11);
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES
	('E5', '0001', 'Microsoft 365 E5 with Calling Plan', 'IncludeOverage'),
	('E5I', '0001', 'E5 with International Calling', 'Telco;IncludeOverage'),
	('BB', '0001', 'Microsoft 365 Business Basic', NULL);
INSERT INTO overage.sku_service VALUES
	('E5', '0001', 'voice', 120), ('E5I', '0001', 'voice', 120),
	('E5I', '0001', 'intl', 0);
INSERT INTO overage.partner VALUES ('P1', 'Contoso'), ('P2', 'Fabrikam');
INSERT INTO overage.customer VALUES ('C1', 'Tailspin', 'US'), ('C2', 'Wingtip', NULL);
SELECT overage.add_agent('regress_overage_dump_ga', 'P1', 'global_admin');
SELECT overage.add_agent('regress_overage_dump_aa', 'P2', 'admin_agent');
SELECT overage.add_agent('regress_overage_dump_sa', 'P2', 'sales_agent');

SET ROLE regress_overage_dump_ga;
SELECT overage.purchase('P1', 'C1', 'E5I', '0001', 10, '2026-01-01') AS p1_c1 \gset
SELECT overage.purchase('P1', 'C2', 'E5', '0001', 4, '2026-01-01') AS p1_c2 \gset
SELECT overage.purchase('P1', 'C1', 'BB', '0001', 7, '2026-01-01') AS p1_bb \gset
SELECT overage.set_quantity(:'p1_c1', 12, '2026-01-05');
SELECT overage.set_quantity(:'p1_c1', 15, '2026-01-20');
SELECT overage.cancel(:'p1_bb', '2026-01-25');
SELECT overage.create_azure_subscription('P1', 'C1', '2026-01-06') AS p1_az \gset
SELECT overage.assign_overage('P1', 'C1', 'voice', :'p1_az', '2026-01-07');
SET ROLE regress_overage_dump_sa;
SELECT overage.purchase('P2', 'C1', 'E5', '0001', 5, '2026-01-02') AS p2_c1 \gset
SELECT overage.purchase('P2', 'C2', 'E5', '0001', 2, '2026-01-02') AS p2_c2 \gset
-- the handoff of C1/voice: P1 sets None, P2 assigns
SET ROLE regress_overage_dump_ga;
SELECT overage.release_overage('P1', 'C1', 'voice', '2026-02-01');
SET ROLE regress_overage_dump_aa;
SELECT s.subscription_id AS p2_ov FROM overage.subscription s
 WHERE s.customer_id = 'C1' AND s.kind = 'overage' \gset
SELECT overage.assign_overage('P2', 'C1', 'voice', :'p2_ov', '2026-02-02');
RESET ROLE;
-- P1's last licence for C2 ends: automatic release to None
SELECT overage.cancel(:'p1_c2', '2026-03-01');

-- metering: a non-superuser operator with only INSERT on usage ingests
-- January's and February's calls and closes January; February stays open
SELECT overage.add_agent('regress_overage_dump_ops', NULL, 'operator');
GRANT INSERT ON overage.usage TO regress_overage_dump_ops;
SET ROLE regress_overage_dump_ops;
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'voice', 'u1', '2026-01-03 09:00', 86400),
	('C1', 'voice', 'u2', '2026-01-04 09:00', 86400),
	('C1', 'intl', 'u2', '2026-01-08 09:00', 600),
	('C2', 'voice', 'u3', '2026-01-09 09:00', 40000),
	('C1', 'voice', 'u1', '2026-02-01 12:00', 86400),
	('C1', 'voice', 'u1', '2026-02-01 12:00', 86400),
	('C2', 'voice', 'u3', '2026-02-03 09:00', 120);
SELECT overage.close_month('2026-01-01') > 0 AS closed_with_lines;
RESET ROLE;
SQL

# every table and sequence of the extension must be registered for dump
echo "== checking pg_extension_config_dump covers every table and sequence"
missing=$(psql -At -d "$SRC" <<'SQL'
SELECT c.oid::regclass
  FROM pg_depend d
  JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'overage'
 WHERE d.deptype = 'e' AND c.relkind IN ('r', 'p', 'S')
   AND c.oid <> ALL (e.extconfig)
 ORDER BY 1;
SQL
)
[ -z "$missing" ] || fail "not registered with pg_extension_config_dump (their rows would be lost): $missing"

# the rows of every registered table and the state of every sequence
snapshot() {
	local db=$1 out=$2
	psql -At -d "$db" -c "SELECT c.oid::regclass, c.relkind FROM pg_extension e,
		unnest(e.extconfig) AS t(oid) JOIN pg_class c ON c.oid = t.oid
		WHERE e.extname = 'overage' ORDER BY 1" |
	while IFS='|' read -r rel kind; do
		echo "### $rel"
		if [ "$kind" = S ]; then
			psql -At -d "$db" -c "SELECT last_value, is_called FROM $rel"
		else
			psql -At -d "$db" -c "SELECT t::text FROM $rel t ORDER BY 1"
		fi
	done > "$out"
}
snapshot "$SRC" "$WORK/src.rows"

for t in subscription license_quantity holder holder_period assignment_log agent \
		usage usage_month billing_month charge; do
	n=$(psql -At -d "$SRC" -c "SELECT count(*) FROM overage.$t")
	[ "$n" -gt 0 ] || fail "overage.$t is empty in the source: the test would prove nothing"
	echo "   overage.$t: $n rows"
done

echo "== pg_dump"
pg_dump -Fc -d "$SRC" -f "$WORK/overage.dump"

echo "== a plain restore (triggers firing) is not the supported procedure"
createdb "$PLAIN"
if pg_restore -d "$PLAIN" "$WORK/overage.dump" > "$WORK/plain.log" 2>&1; then
	echo "   (plain restore went through)"
else
	echo "   plain restore fails as expected:"
	grep -m3 'ERROR' "$WORK/plain.log" | sed 's/^/     /' || true
fi

echo "== restore with session_replication_role = replica"
createdb "$DST"
PGOPTIONS='-c session_replication_role=replica' \
	pg_restore --exit-on-error -d "$DST" "$WORK/overage.dump" ||
	fail "pg_restore into $DST failed"

snapshot "$DST" "$WORK/dst.rows"
if ! diff -u "$WORK/src.rows" "$WORK/dst.rows"; then
	fail "rows differ between $SRC and $DST after restore (diff above)"
fi
echo "   every row of $(grep -c '^###' "$WORK/src.rows") tables and sequences is the same"

echo "== the restored database works"
psql -d "$DST" <<'SQL'
SET timezone = 'UTC';
\set ON_ERROR_STOP 1
-- triggers are on again: a direct write to history is refused
DO $$
BEGIN
	INSERT INTO overage.holder_period (customer_id, service_id, valid_from)
		VALUES ('C1', 'voice', '2027-01-01');
	RAISE EXCEPTION 'history_guard did not fire after restore';
EXCEPTION WHEN SQLSTATE 'OV008' THEN
	NULL;
END
$$;
-- the agents still act for their partners, row-level security still holds
SET ROLE regress_overage_dump_ga;
DO $$
BEGIN
	IF (SELECT partner_id FROM overage.current_agent()) IS DISTINCT FROM 'P1' THEN
		RAISE EXCEPTION 'agent mapping lost';
	END IF;
	IF EXISTS (SELECT 1 FROM overage.subscription WHERE partner_id <> 'P1') THEN
		RAISE EXCEPTION 'row-level security lost';
	END IF;
END
$$;
-- the audit log's identity continues after the restored rows: P1 buys
-- again for C2 (whose overage went to None) and takes the overage
SELECT max(log_id) AS before FROM overage.assignment_log \gset
SELECT overage.purchase('P1', 'C2', 'E5', '0001', 1, '2026-04-01') IS NOT NULL AS bought;
SELECT overage.assign_overage('P1', 'C2', 'voice', s.subscription_id, '2026-04-02')
  FROM overage.subscription s
 WHERE s.customer_id = 'C2' AND s.kind = 'overage' AND s.status = 'active';
RESET ROLE;
SELECT count(*) = 1 AS one_new_row FROM overage.assignment_log WHERE log_id > :before \gset
\if :one_new_row
\else
\warn 'assignment_log_log_id_seq was not restored: no new audit row after the restored ones'
SELECT pg_catalog.pg_terminate_backend(pg_catalog.pg_backend_pid());
\endif
-- metering goes on: the operator ingests into the open month (the usage
-- ids continue after the restored ones) and closes it; the closed month
-- still refuses calls, and the global admin reads P1's lines only
SELECT max(usage_id) AS before_usage FROM overage.usage \gset
SET ROLE regress_overage_dump_ops;
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
	VALUES ('C1', 'voice', 'u9', '2026-02-20 09:00', 60);
SELECT overage.close_month('2026-02-01') >= 0 AS closed;
DO $$
BEGIN
	INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
		VALUES ('C1', 'voice', 'u9', '2026-01-20 09:00', 60);
	RAISE EXCEPTION 'a call in the closed month was accepted after restore';
EXCEPTION WHEN SQLSTATE 'OV006' THEN
	NULL;
END
$$;
RESET ROLE;
SELECT count(*) = 1 AND min(usage_id) > :before_usage AS usage_continues
  FROM overage.usage WHERE user_id = 'u9' \gset
\if :usage_continues
\else
\warn 'usage_usage_id_seq was not restored, or the call was not ingested'
SELECT pg_catalog.pg_terminate_backend(pg_catalog.pg_backend_pid());
\endif
SELECT calls = 3 AS figures_follow FROM overage.usage_month
 WHERE customer_id = 'C1' AND service_id = 'voice' AND month = '2026-02-01' \gset
\if :figures_follow
\else
\warn 'usage_month did not continue from the restored figures'
SELECT pg_catalog.pg_terminate_backend(pg_catalog.pg_backend_pid());
\endif
SET ROLE regress_overage_dump_ga;
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM overage.charge) THEN
		RAISE EXCEPTION 'the global admin sees none of P1''s restored charge lines';
	END IF;
	IF EXISTS (SELECT 1 FROM overage.charge WHERE partner_id IS DISTINCT FROM 'P1') THEN
		RAISE EXCEPTION 'row-level security on charge lost';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM overage.reconciliation('P1', '2026-01-01')) THEN
		RAISE EXCEPTION 'no reconciliation lines for P1 after restore';
	END IF;
END
$$;
RESET ROLE;
SQL

echo "dump_restore: ok"
