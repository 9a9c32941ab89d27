#!/usr/bin/env bash
# lists: the lists kept by hand agree with the catalog.
#   - README.md names every function, table and view of the extension
#     (from pg_depend);
#   - README.md's permission matrix is overage._allowed(), cell by cell;
#   - test/fuzz/fuzz.sql calls every function that is not a trigger
#     function (the script checks itself too, but runs only under
#     sanitizers, outside the test command).
# Runs inside pg_virtualenv (PGHOST/PGPORT/PGUSER of a superuser).
set -euo pipefail
cd "$(dirname "$0")/../.."

DB=overage_lists
dropdb --if-exists "$DB" 2>/dev/null || true
createdb "$DB"
trap 'dropdb --if-exists "$DB" 2>/dev/null || true' EXIT
psql() { command psql -X -v ON_ERROR_STOP=1 -q -At "$@"; }
psql -d "$DB" -c "CREATE EXTENSION overage"
status=0

objects=$(psql -d "$DB" <<'SQL'
SELECT CASE d.classid WHEN 'pg_proc'::regclass THEN 'f ' || p.proname
					  ELSE 'r ' || c.relname END
  FROM pg_depend d
  LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
  LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
 WHERE d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'overage')
   AND (p.oid IS NOT NULL OR c.relkind IN ('r', 'v', 'p'))
 ORDER BY 1
SQL
)
n=0
while read -r kind name; do
	n=$((n + 1))
	if ! grep -qE "overage\\.$name\\b" README.md; then
		echo "lists: README.md does not name overage.$name"
		status=1
	fi
	if [ "$kind" = f ] && ! grep -q "'overage\\.$name'" test/fuzz/fuzz.sql; then
		trig=$(psql -d "$DB" -c "SELECT bool_and(prorettype = 'trigger'::regtype) FROM pg_proc
			WHERE proname = '$name' AND pronamespace = 'overage'::regnamespace")
		if [ "$trig" != t ]; then
			echo "lists: test/fuzz/fuzz.sql does not call overage.$name"
			status=1
		fi
	fi
done <<< "$objects"
echo "lists: $n functions, tables and views checked against README.md and fuzz.sql"

# the matrix: README rows "| action | covers | ga | aa | sa | ba | ca | op |"
# (ca: customer_admin, 1.2; consent: the customer's side of a transfer;
# budget: set_budget and remove_budget, 1.2)
readme=$(awk -F'|' '/^\| (purchase|assign|get_overage|read|billing|consent|budget|operate) \|/ {
	gsub(/ /, "", $2); printf "%s", $2
	for (i = 4; i <= 9; i++) { v = $i; gsub(/ /, "", v); printf " %s", v }
	print "" }' README.md)
catalog=$(psql -d "$DB" <<'SQL'
SELECT a || ' ' || string_agg(CASE WHEN overage._allowed(a, r) THEN 'yes' ELSE 'no' END, ' ' ORDER BY o)
  FROM unnest(ARRAY['purchase', 'assign', 'get_overage', 'read', 'billing', 'consent', 'budget', 'operate'])
		 WITH ORDINALITY AS x(a, ao),
	   unnest(ARRAY['global_admin', 'admin_agent', 'sales_agent', 'billing_admin',
					'customer_admin', 'operator'])
		 WITH ORDINALITY AS y(r, o)
 GROUP BY a, ao ORDER BY ao
SQL
)
if [ "$readme" != "$catalog" ]; then
	echo "lists: README.md's permission matrix differs from overage._allowed():"
	diff <(echo "$readme") <(echo "$catalog") || true
	status=1
else
	echo "lists: the permission matrix in README.md is overage._allowed()"
fi
exit $status
