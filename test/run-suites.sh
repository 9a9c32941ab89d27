#!/usr/bin/env bash
# Runs inside pg_virtualenv (PGHOST/PGPORT/PGUSER point at the throwaway
# cluster).  Counts every test of every suite and prints "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PGXS_DIR=$(dirname "$($PG_CONFIG --pgxs)")/../..
BINDIR=$($PG_CONFIG --bindir)
passed=0
failed=0

count() {	# count ok / not ok lines of a pg_regress-style log
	local log=$1 p f
	p=$(grep -cE '\.\.\. ok( |$)' "$log" || true)
	f=$(grep -cE '\.\.\. (FAILED|failed)( |$)' "$log" || true)
	passed=$((passed + p))
	failed=$((failed + f))
}

regress=$(cd sql && ls *.sql | sed 's/\.sql$//' | sort)
echo "=== pg_regress: $(echo $regress | wc -w) tests"
"$PGXS_DIR/src/test/regress/pg_regress" --bindir="$BINDIR" --inputdir=. \
	--outputdir=. --dbname=overage_regress $regress 2>&1 | tee results.log
[ -s regression.diffs ] && head -200 regression.diffs
count results.log

specs=$(cd test/isolation/specs && ls *.spec 2>/dev/null | sed 's/\.spec$//' | sort)
if [ -n "$specs" ]; then
	echo "=== pg_isolation_regress: $(echo $specs | wc -w) specs"
	mkdir -p output_iso
	"$PGXS_DIR/src/test/isolation/pg_isolation_regress" --bindir="$BINDIR" \
		--inputdir=test/isolation --outputdir=output_iso \
		--dbname=overage_isolation $specs 2>&1 | tee output_iso.log
	[ -f output_iso/regression.diffs ] && [ -s output_iso/regression.diffs ] && head -200 output_iso/regression.diffs
	count output_iso.log
fi

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
