#!/usr/bin/env bash
# dump_restore: a database holding the extension survives PostgreSQL's
# default backup and restore commands, as a superuser, with nothing lost and
# no error.
#
# Runs inside pg_virtualenv or pgpriv (PGHOST/PGPORT/PGUSER of a superuser;
# the cluster may belong to another OS user than the one running this).
# Fills a database through the API (catalog, agents, purchases, quantity
# changes, cancellations, a None-release handoff, an automatic release,
# calls ingested by a non-superuser operator, a closed month with its charge
# lines and an open one), checks it with overage.verify(), and restores it
# in the four ways a DBA would, with default options:
#
#   pg_dump -Fc -f db.dump SRC; createdb DST; pg_restore -d DST db.dump
#   pg_restore --single-transaction -d DST db.dump
#   pg_dump SRC | psql DST
#   pg_dumpall > all.sql; psql -f all.sql postgres     (into a new cluster)
#
# Each must exit 0 and print nothing on stderr (pg_dumpall's script: no
# error but the one PostgreSQL documents, CREATE ROLE of the superuser that
# already exists in the new cluster); every row of every table and the
# state of every sequence the extension registers with
# pg_extension_config_dump must be identical; overage.verify() must pass;
# and the restored database must work (triggers, agents, row-level
# security, the identity columns continuing after the restored rows).
set -euo pipefail
cd "$(dirname "$0")/../.."

SRC=overage_dump_src
DSTS="overage_dump_fc overage_dump_single overage_dump_plain"
WORK=$(mktemp -d)
chmod 777 "$WORK"
BINDIR=$(dirname "$(command -v initdb)")
NEWPORT=$((PGPORT + 1))
NEWHOST=$WORK/socket
ROLES="regress_overage_dump_ga regress_overage_dump_aa regress_overage_dump_sa regress_overage_dump_ops"

fail() { echo "dump_restore: FAILED: $*" >&2; exit 1; }

# the second cluster (pg_dumpall) belongs to the cluster's OS user, like
# the first: as root (pg_virtualenv, pgpriv) run its programs as postgres
as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

cleanup() {
	if [ -f "$WORK/new/postmaster.pid" ]; then
		as_owner "$BINDIR/pg_ctl" -D "$WORK/new" -m immediate stop >/dev/null 2>&1 || true
	fi
	for db in $SRC $DSTS; do dropdb --if-exists "$db" || true; done
	for r in $ROLES; do psql -X -q -d postgres -c "DROP ROLE IF EXISTS $r" >/dev/null 2>&1 || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
for db in $SRC $DSTS; do dropdb --if-exists "$db" 2>/dev/null || true; done

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
-- 1.2: a budget, and alerts stored as the rating stores them (the owner),
-- one of them without holder (partner NULL)
SET ROLE regress_overage_dump_ga;
SELECT overage.set_budget('P1', 'C1', 250, '{80,50}');
RESET ROLE;
SELECT overage._raise_alerts('2026-01-01', '{pool,pool,budget}', '{P1,NULL,P1}',
	'{C1,C2,C1}', '{voice,voice,NULL}', '{80,100,50}', '{1152,480,125}', '{1440,480,250}',
	'{2026-01-03 09:00+00,2026-01-09 09:00+00,2026-01-04 09:00+00}') = 3 AS alerts_raised;
SQL

# overage.verify() of a database filled through the API passes
verify_ok() {	# verify_ok [psql connection options]
	local out
	out=$(psql -At -F ' ' "$@" -c "SELECT check_name, ok, detail FROM overage.verify()")
	echo "$out" | sed 's/^/     /'
	[ "$(echo "$out" | wc -l)" -ge 9 ] || fail "verify() returned too few checks"
	if echo "$out" | grep -qv '^[a-z_]* t '; then
		fail "verify() found inconsistencies (above)"
	fi
}
echo "== overage.verify() of $SRC"
verify_ok -d "$SRC"

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
snapshot() {	# snapshot OUT [psql connection options]
	local out=$1
	shift
	psql -At "$@" -c "SELECT c.oid::regclass, c.relkind FROM pg_extension e,
		unnest(e.extconfig) AS t(oid) JOIN pg_class c ON c.oid = t.oid
		WHERE e.extname = 'overage' ORDER BY 1" |
	while IFS='|' read -r rel kind; do
		echo "### $rel"
		if [ "$kind" = S ]; then
			psql -At "$@" -c "SELECT last_value, is_called FROM $rel"
		else
			psql -At "$@" -c "SELECT t::text FROM $rel t ORDER BY 1"
		fi
	done > "$out"
}
snapshot "$WORK/src.rows" -d "$SRC"

for t in subscription license_quantity holder holder_period assignment_log agent \
		usage usage_month billing_month charge; do
	n=$(psql -At -d "$SRC" -c "SELECT count(*) FROM overage.$t")
	[ "$n" -gt 0 ] || fail "overage.$t is empty in the source: the test would prove nothing"
	echo "   overage.$t: $n rows"
done

# pg_dump's stderr: nothing but the warning it prints for every extension
# configuration table with a foreign key to itself (subscription.parent_id):
# it orders the tables' data by their foreign keys and reports the
# self-reference as a loop.  Harmless: a table's rows come in one COPY,
# whose foreign keys are checked at its end.
dump_clean() {	# dump_clean STDERR-FILE WHAT
	if grep -v \
		-e '^pg_dump: warning: there are circular foreign-key constraints on this table:$' \
		-e '^pg_dump: detail: subscription$' \
		-e '^pg_dump: hint: You might not be able to restore the dump without using --disable-triggers or temporarily dropping the constraints.$' \
		-e '^pg_dump: hint: Consider using a full dump instead of a --data-only dump to avoid this problem.$' \
		"$1" | grep -q .; then
		sed 's/^/     /' "$1"
		fail "$2 printed errors or warnings (above)"
	fi
}

# one way of restoring: "$@" ran it, its stderr is in $WORK/NAME.err
check_restored() {	# check_restored NAME [psql connection options]
	local name=$1
	shift
	if [ -s "$WORK/$name.err" ]; then
		sed 's/^/     /' "$WORK/$name.err"
		fail "$name: the restore printed errors or warnings (above)"
	fi
	snapshot "$WORK/$name.rows" "$@"
	if ! diff -u "$WORK/src.rows" "$WORK/$name.rows"; then
		fail "$name: rows differ between $SRC and the restored database (diff above)"
	fi
	echo "   every row of $(grep -c '^###' "$WORK/src.rows") tables and sequences is the same"
	verify_ok "$@"
	works "$@"
	echo "   and after more purchases, assignments, calls and a close:"
	verify_ok "$@"
}

works() {	# works [psql connection options]: the restored database works
psql "$@" <<'SQL'
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
}


echo "== 1. pg_dump -Fc; createdb; pg_restore -d"
pg_dump -Fc -f "$WORK/overage.dump" "$SRC" 2> "$WORK/dump.err"
dump_clean "$WORK/dump.err" "pg_dump -Fc"
createdb overage_dump_fc
pg_restore -d overage_dump_fc "$WORK/overage.dump" 2> "$WORK/fc.err" ||
	{ cat "$WORK/fc.err"; fail "pg_restore -d exited $?"; }
check_restored fc -d overage_dump_fc

echo "== 2. pg_restore --single-transaction"
createdb overage_dump_single
pg_restore --single-transaction -d overage_dump_single "$WORK/overage.dump" 2> "$WORK/single.err" ||
	{ cat "$WORK/single.err"; fail "pg_restore --single-transaction exited $?"; }
check_restored single -d overage_dump_single

echo "== 3. pg_dump | psql"
createdb overage_dump_plain
pg_dump "$SRC" 2> "$WORK/plaindump.err" |
	command psql -X -q -d overage_dump_plain > /dev/null 2> "$WORK/plain.err" ||
	{ cat "$WORK/plain.err"; fail "pg_dump | psql exited non-zero"; }
dump_clean "$WORK/plaindump.err" "pg_dump"
check_restored plain -d overage_dump_plain

echo "== 4. pg_dumpall into a new cluster"
pg_dumpall -f "$WORK/all.sql" 2> "$WORK/dumpall.err"
dump_clean "$WORK/dumpall.err" "pg_dumpall"
mkdir -p "$NEWHOST"
chmod 777 "$NEWHOST"
as_owner "$BINDIR/initdb" -A trust -U "$PGUSER" -D "$WORK/new" > "$WORK/initdb.log" 2>&1 ||
	{ cat "$WORK/initdb.log"; fail "initdb of the new cluster failed"; }
as_owner "$BINDIR/pg_ctl" -D "$WORK/new" -l "$WORK/new.log" -w \
	-o "-c listen_addresses='' -c unix_socket_directories='$NEWHOST' -p $NEWPORT -c fsync=off" \
	start > /dev/null || { cat "$WORK/new.log"; fail "the new cluster did not start"; }
# PostgreSQL documents the one error this may print: the script creates
# every role, the superuser that runs the restore included, which the new
# cluster already has (pg_dumpall, "Notes")
command psql -X -q -h "$NEWHOST" -p "$NEWPORT" -d postgres -f "$WORK/all.sql" \
	> /dev/null 2> "$WORK/all.raw" || { cat "$WORK/all.raw"; fail "psql -f all.sql exited non-zero"; }
grep -v "ERROR:  role \"$PGUSER\" already exists\$" "$WORK/all.raw" > "$WORK/all.err" || true
check_restored all -h "$NEWHOST" -p "$NEWPORT" -d "$SRC"
# the server log of the new cluster: the restore was recognised, and no
# error but the documented one
grep -q 'is taken as a restore' "$WORK/new.log" ||
	fail "the new cluster's log does not show the restore being recognised"
if grep 'ERROR' "$WORK/new.log" | grep -v "role \"$PGUSER\" already exists" | grep -q .; then
	grep -A2 'ERROR' "$WORK/new.log" | sed 's/^/     /'
	fail "errors in the new cluster's server log (above)"
fi

echo "dump_restore: ok"
