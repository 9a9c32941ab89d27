#!/usr/bin/env bash
# Model-based randomized test of the overage holder rules (first-in,
# None-release handoff, eligibility, automatic release, time order):
# test/model/holder_model.py drives the public API with random scenarios
# (fixed seeds) and compares every outcome with an independent model.
#
# Runs inside pg_virtualenv (PGHOST/PGPORT/PGUSER set) in a database of its
# own.  Exits non-zero on the first disagreement, printing it.
set -euo pipefail
cd "$(dirname "$0")/../.."

DB=overage_model
SCENARIOS=${MODEL_SCENARIOS:-20}
STEPS=${MODEL_STEPS:-60}

dropdb --if-exists "$DB" 2>/dev/null
createdb "$DB"
trap 'dropdb --if-exists "$DB"' EXIT

python3 test/model/holder_model.py "$DB" "$SCENARIOS" "$STEPS"
