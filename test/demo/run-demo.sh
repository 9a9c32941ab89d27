#!/usr/bin/env bash
# The main job (README command 1): installs what is missing, builds and
# installs the extension, starts a throwaway PostgreSQL 15 cluster with
# pg_virtualenv and walks through the product on a small realistic catalog.
set -euo pipefail
cd "$(dirname "$0")/../.."

bash test/install-deps.sh --demo
export PATH=/usr/lib/postgresql/15/bin:$PATH
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}

exec 9>/tmp/overage-tests.lock
flock 9

make -s PG_CONFIG="$PG_CONFIG"
make -s PG_CONFIG="$PG_CONFIG" install >/dev/null

# the cluster's user reads the walk-through from a copy, so that the
# checkout's modes stay as they are
DEMO=$(mktemp -d /tmp/overage-demo-sql.XXXXXX)
trap 'rm -rf "$DEMO"' EXIT
mkdir "$DEMO/demo"
cp -R test/demo/. "$DEMO/demo"
cp -R test/data "$DEMO/data"
chmod -R a+rX "$DEMO"

OUT=${OVERAGE_DEMO_OUT:-/tmp/overage-demo}
mkdir -p "$OUT" && chmod 777 "$OUT"
export OVERAGE_DEMO_OUT=$OUT
pg_virtualenv -v 15 bash "$DEMO/demo/demo-inside.sh"
