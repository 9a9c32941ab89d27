#!/usr/bin/env bash
# Runs inside pg_virtualenv: one database, the walk-through scripts in order.
set -euo pipefail
cd "$(dirname "$0")"
createdb overage_demo
for f in [0-9]*.sql; do
	psql -X -q -v ON_ERROR_STOP=1 -v out="$OVERAGE_DEMO_OUT" -d overage_demo -f "$f"
done
