#!/usr/bin/env bash
# check-asan: the C code under AddressSanitizer and UndefinedBehaviorSanitizer,
# and (with VALGRIND=1, or VALGRIND_ONLY=1) the fuzz script under valgrind.
#
#   make check-asan            or   bash test/asan/run.sh
#
# Builds src/*.c with -fsanitize=address,undefined, installs it into the
# system PostgreSQL 15, starts a throwaway cluster whose postmaster has the
# ASan runtime preloaded (the server itself is not instrumented; the
# module is), runs the pg_regress suite, the scripts and test/fuzz/fuzz.sql
# against it, and fails if any test fails or the server log shows a
# sanitizer report or a crashed backend.  Not part of the CI test command
# (slow).  Holds /tmp/overage-tests.lock throughout and always reinstalls
# the normal build before it returns.
#
# ASAN_OPTIONS: detect_leaks=0 because a backend frees its memory contexts
# wholesale at exit, not each allocation.  UBSAN_OPTIONS: halt on the first
# report, with a stack.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)

export PATH=/usr/lib/postgresql/15/bin:$PATH
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PGXS_DIR=$(dirname "$($PG_CONFIG --pgxs)")/../..
BINDIR=$($PG_CONFIG --bindir)
LIBASAN=${LIBASAN:-/usr/lib/gcc/x86_64-linux-gnu/12/libasan.so}
SANFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g -O1"
PORT=${ASAN_PORT:-54329}
WORK=$(mktemp -d /tmp/overage-asan.XXXXXX)
chmod 755 "$WORK"
chown postgres: "$WORK"
PGDATA=$WORK/data
LOG=$WORK/server.log
status=0

exec 9>/tmp/overage-tests.lock
flock 9

as_pg() { runuser -u postgres -- "$@"; }

stop_server() {
	if [ -f "$PGDATA/postmaster.pid" ]; then
		as_pg pg_ctl -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
	fi
}

reinstall_normal() {
	echo "== reinstalling the normal build"
	make -s clean >/dev/null
	make -s PG_CONFIG="$PG_CONFIG" COPT=-Werror >/dev/null &&
		make -s PG_CONFIG="$PG_CONFIG" install >/dev/null ||
		{ echo "check-asan: could not reinstall the normal build" >&2; status=1; }
}

finish() {
	stop_server
	reinstall_normal
	if [ "$status" -eq 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "logs kept in $WORK"; fi
	exit "$status"
}
trap finish EXIT
trap 'status=1; exit' INT TERM

start_server() {	# $1: prefix command for the postmaster (env or valgrind)
	as_pg initdb -D "$PGDATA" -A trust -U postgres --no-sync >/dev/null || return 1
	as_pg pg_ctl -D "$PGDATA" -l "$LOG" -w -t 120 \
		-o "-p $PORT -k $WORK -c fsync=off -c max_connections=20" start >/dev/null ||
		{ cat "$LOG"; return 1; }
}

run_suites() {
	local failed=0
	export PGHOST=$WORK PGPORT=$PORT PGUSER=postgres
	regress=$(cd sql && ls *.sql | sed 's/\.sql$//' | sort)
	mkdir -p results
	chmod -R a+rwX . 2>/dev/null || true
	echo "== pg_regress under the sanitizers"
	"$PGXS_DIR/src/test/regress/pg_regress" --bindir="$BINDIR" \
		--inputdir=. --outputdir="$WORK/regress" --dbname=overage_asan $regress ||
		failed=1
	for script in test/scripts/*.sh; do
		[ -e "$script" ] || continue
		echo "== script $(basename "$script")"
		bash "$script" > "$WORK/$(basename "$script").log" 2>&1 ||
			{ echo "   FAILED (log $WORK/$(basename "$script").log)"; failed=1; }
	done
	echo "== fuzz"
	psql -X -q -d postgres -f test/fuzz/fuzz.sql > "$WORK/fuzz.out" 2>&1 ||
		{ echo "   FAILED"; tail -20 "$WORK/fuzz.out"; failed=1; }
	grep -E 'NOTICE:  fuzz:' "$WORK/fuzz.out" | sed 's/^.*NOTICE:  /   /'
	return $failed
}

sanitizer_reports() {
	grep -nE 'AddressSanitizer|UndefinedBehaviorSanitizer|runtime error:|LeakSanitizer|terminated by signal|was terminated by exception' \
		"$LOG" "$WORK"/asan.* 2>/dev/null
}

if [ -z "${VALGRIND_ONLY:-}" ]; then
	if timeout 15 env LD_PRELOAD="$LIBASAN" "$BINDIR/postgres" -V >/dev/null 2>&1; then
		mode="postmaster with $LIBASAN preloaded"
		preload=$LIBASAN
	else
		# Without the preload, siglongjmp (every ereport(ERROR)) is not
		# intercepted, so the frames it skips would keep their poisoned
		# redzones and give false reports: no stack instrumentation then.
		mode="runtime loaded with overage.so (preloading it deadlocks here, see below); no stack instrumentation"
		preload=
		SANFLAGS="$SANFLAGS --param asan-stack=0"
	fi
	echo "== building with $SANFLAGS"
	make -s clean >/dev/null
	make -s PG_CONFIG="$PG_CONFIG" \
		COPT="$SANFLAGS -DOVERAGE_ASAN -DOVERAGE_ASAN_LOG='\"$WORK/asan\"'" >/dev/null &&
		make -s PG_CONFIG="$PG_CONFIG" install >/dev/null ||
		{ echo "check-asan: sanitizer build failed" >&2; status=1; exit; }
	ldd src/../overage.so | grep -q libasan ||
		{ echo "check-asan: overage.so is not linked with libasan" >&2; status=1; exit; }

	# Preloading the ASan runtime into the stock Debian server deadlocks on
	# this machine before main() gets anywhere (glibc's gettext lock is
	# corrupted when libp11-kit's constructor runs under the preloaded
	# runtime; psql -V hangs the same way).  So: probe the preload; if it
	# does not come up, load the runtime with the module instead
	# (verify_asan_link_order=0).  Then the module's own code is fully
	# instrumented (stack, globals, UBSan) but libc malloc is not
	# intercepted; palloc'd memory is not poisoned in either mode.
	export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$WORK/asan"
	export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$WORK/asan"
	as_pg initdb -D "$PGDATA" -A trust -U postgres --no-sync >/dev/null || { status=1; exit; }
	echo "== starting a cluster: $mode"
	as_pg env LD_PRELOAD="$preload" ASAN_OPTIONS="$ASAN_OPTIONS" UBSAN_OPTIONS="$UBSAN_OPTIONS" \
		pg_ctl -D "$PGDATA" -l "$LOG" -w -t 120 \
		-o "-p $PORT -k $WORK -c fsync=off -c max_connections=20" start >/dev/null ||
		{ cat "$LOG"; status=1; exit; }
	# the backends really run with the runtime
	loaded=$(PGHOST=$WORK PGPORT=$PORT PGUSER=postgres psql -X -Atq -d postgres \
		-c "LOAD 'overage'" -c "SELECT pg_read_file('/proc/self/maps') ~ 'libasan'")
	[ "$loaded" = t ] ||
		{ echo "check-asan: the backend did not load the ASan runtime with overage.so" >&2; cat "$LOG"; status=1; exit; }

	run_suites || status=1
	stop_server
	if sanitizer_reports; then
		echo "check-asan: sanitizer reports (above)" >&2
		status=1
	else
		echo "== no sanitizer report in the server log"
	fi
	rm -rf "$PGDATA"
fi

if [ -n "${VALGRIND:-}${VALGRIND_ONLY:-}" ]; then
	echo "== fuzz under valgrind (normal build)"
	reinstall_normal
	as_pg initdb -D "$PGDATA" -A trust -U postgres --no-sync >/dev/null
	as_pg bash -c "valgrind --quiet --trace-children=yes --track-origins=yes \
		--read-var-info=yes --num-callers=30 --error-exitcode=0 \
		--log-file=$WORK/valgrind.%p.log \
		postgres -D $PGDATA -p $PORT -k $WORK -c fsync=off -c max_connections=10 \
		> $LOG 2>&1 &"
	for i in $(seq 1 120); do
		pg_isready -q -h "$WORK" -p "$PORT" && break
		sleep 1
	done
	export PGHOST=$WORK PGPORT=$PORT PGUSER=postgres
	psql -X -q -d postgres -f test/fuzz/fuzz.sql > "$WORK/fuzz-valgrind.out" 2>&1 ||
		{ echo "   fuzz FAILED under valgrind"; tail -20 "$WORK/fuzz-valgrind.out"; status=1; }
	grep -E 'NOTICE:  fuzz:' "$WORK/fuzz-valgrind.out" | sed 's/^.*NOTICE:  /   /'
	stop_server
	# errors whose stack passes through the extension's module
	if grep -l 'overage\.so' "$WORK"/valgrind.*.log 2>/dev/null; then
		echo "check-asan: valgrind reports in overage.so (files above)" >&2
		status=1
	else
		echo "== valgrind: $(cat "$WORK"/valgrind.*.log 2>/dev/null | grep -c '^==[0-9]*== [A-Z]') report lines, none in overage.so"
	fi
fi

[ "$status" -eq 0 ] && echo "check-asan: ok"
