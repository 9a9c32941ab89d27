#!/usr/bin/env bash
# Model-based randomized test of metering (pool, attribution, month close,
# reconciliation): test/model/metering_model.py walks random timelines
# (fixed seeds) of licence and holder changes interleaved with usage
# INSERTs, and compares pool_status, preview_month, close_month, the charge
# lines, the reconciliation files and (1.2) the pool and budget alerts with
# an independent model of SPEC.
#
# Runs inside pg_virtualenv (PGHOST/PGPORT/PGUSER set) in a database of its
# own.  Exits non-zero on the first disagreement, printing it.
set -euo pipefail
cd "$(dirname "$0")/../.."

DB=overage_metermodel
SEEDS=${METER_SEEDS:-12}
STEPS=${METER_STEPS:-250}
FIRST=${METER_FIRST_SEED:-1}

dropdb --if-exists "$DB" 2>/dev/null
createdb "$DB"
trap 'dropdb --if-exists "$DB"' EXIT

python3 test/model/metering_model.py "$DB" "$SEEDS" "$STEPS" "$FIRST"
