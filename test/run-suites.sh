#!/usr/bin/env bash
# Runs inside pg_virtualenv (PGHOST/PGPORT/PGUSER point at the throwaway
# cluster): the Makefile's installcheck (pg_regress, pg_isolation_regress),
# then every test/scripts/*.sh.  Counts every test of every suite and prints
# "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
passed=0
failed=0

count() {	# count ok / not ok lines of a pg_regress-style log and its exit code
	local log=$1 rc=$2 p f
	p=$(grep -cE '\.\.\. ok( |$)' "$log" || true)
	f=$(grep -cE '\.\.\. (FAILED|failed)( |$)' "$log" || true)
	# a run that failed without failing a test (it could not start) fails
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	passed=$((passed + p))
	failed=$((failed + f))
}

# the Makefile's REGRESS and ISOLATION lists, one half at a time so that a
# failure in one does not skip the other
echo "=== pg_regress (make installcheck)"
make -s installcheck PG_CONFIG="$PG_CONFIG" ISOLATION= 2>&1 | tee results.log
rc=${PIPESTATUS[0]}
[ -s regression.diffs ] && head -200 regression.diffs
count results.log $rc

echo "=== pg_isolation_regress (make installcheck)"
make -s installcheck PG_CONFIG="$PG_CONFIG" REGRESS= 2>&1 | tee output_iso.log
rc=${PIPESTATUS[0]}
[ -s output_iso/regression.diffs ] && head -200 output_iso/regression.diffs
count output_iso.log $rc

mkdir -p results
for script in test/scripts/*.sh; do
	[ -e "$script" ] || continue
	name=$(basename "$script" .sh)
	echo "=== script $name"
	if bash "$script" > "results/script-$name.log" 2>&1; then
		echo "script $name ... ok"
		passed=$((passed + 1))
	else
		echo "script $name ... FAILED (log follows)"
		tail -50 "results/script-$name.log"
		failed=$((failed + 1))
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
