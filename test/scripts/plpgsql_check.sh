#!/usr/bin/env bash
# plpgsql_check: every PL/pgSQL function of the extension, found in the
# catalog (pg_depend), checked by plpgsql_check with all warnings on;
# trigger functions once for each table they are a trigger of.  Fails on
# any error, and on any warning that test/scripts/plpgsql_check.allowed
# does not list (one "function|message" a line, each with its reason in
# README "plpgsql_check"); fails too when the list names a warning that is
# no longer found, so the list stays true.
#
# Runs inside pg_virtualenv (PGHOST/PGPORT/PGUSER of a superuser).
set -euo pipefail
cd "$(dirname "$0")/../.."

DB=overage_plpgsql_check
ALLOWED=test/scripts/plpgsql_check.allowed
dropdb --if-exists "$DB" 2>/dev/null || true
createdb "$DB"
trap 'dropdb --if-exists "$DB" 2>/dev/null || true' EXIT

psql() { command psql -X -v ON_ERROR_STOP=1 -q -At "$@"; }
psql -d "$DB" -c "CREATE EXTENSION overage" -c "CREATE EXTENSION plpgsql_check"

found=$(psql -d "$DB" <<'SQL'
WITH fn AS (
	SELECT p.oid, p.prorettype = 'trigger'::regtype AS is_trigger
	  FROM pg_depend d
	  JOIN pg_proc p ON p.oid = d.objid AND d.classid = 'pg_proc'::regclass
	  JOIN pg_language l ON l.oid = p.prolang AND l.lanname = 'plpgsql'
	 WHERE d.deptype = 'e'
	   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'overage')
), target AS (
	SELECT fn.oid, 0::oid AS relid FROM fn WHERE NOT fn.is_trigger
	UNION ALL
	SELECT fn.oid, t.tgrelid FROM fn JOIN pg_trigger t ON t.tgfoid = fn.oid
	 WHERE fn.is_trigger
)
SELECT DISTINCT t.oid::regprocedure || '|' || r.level || '|'
	   || coalesce(r.sqlstate, '') || '|' || r.message
  FROM target t,
	   LATERAL plpgsql_check_function_tb(t.oid::regprocedure, t.relid::regclass,
										 fatal_errors := false,
										 all_warnings := true) r
 ORDER BY 1
SQL
)
checked=$(psql -d "$DB" -c "SELECT count(*) FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
	AND d.classid = 'pg_proc'::regclass JOIN pg_language l ON l.oid = p.prolang
	WHERE l.lanname = 'plpgsql' AND d.deptype = 'e'
	  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'overage')")
echo "plpgsql_check: $checked PL/pgSQL functions checked, all warnings on"
[ -n "$found" ] && printf '%s\n' "$found"

status=0
errors=$(printf '%s\n' "$found" | awk -F'|' '$2 == "error"')
if [ -n "$errors" ]; then
	echo "plpgsql_check: FAILED: errors (above)"
	status=1
fi
allowed=$(grep -v '^#' "$ALLOWED" | sed '/^$/d' || true)
warnings=$(printf '%s\n' "$found" | awk -F'|' '$2 != "error" && NF { print $1 "|" $4 }' | sort -u)
new=$(comm -23 <(printf '%s\n' "$warnings" | sed '/^$/d') <(printf '%s\n' "$allowed" | sort -u))
gone=$(comm -13 <(printf '%s\n' "$warnings" | sed '/^$/d') <(printf '%s\n' "$allowed" | sort -u))
if [ -n "$new" ]; then
	echo "plpgsql_check: FAILED: warnings not listed in $ALLOWED:"
	printf '  %s\n' "$new"
	status=1
fi
if [ -n "$gone" ]; then
	echo "plpgsql_check: FAILED: $ALLOWED lists warnings no longer found:"
	printf '  %s\n' "$gone"
	status=1
fi
[ $status -eq 0 ] && echo "plpgsql_check: ok ($(printf '%s\n' "$warnings" | sed '/^$/d' | wc -l) listed warnings)"
exit $status
