# overage -- PGXS build
#
#   make && make install          build and install into the server of PG_CONFIG
#   make installcheck             pg_regress + pg_isolation_regress against a
#                                 running server (see test/run-tests.sh)

EXTENSION  = overage
MODULE_big = overage
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
DATA       = $(sort $(wildcard src/overage--*.sql))
PGFILEDESC = "overage - telecom overage billing"

# every sql/NAME.sql and test/isolation/specs/NAME.spec is a test
REGRESS      = $(sort $(patsubst sql/%.sql,%,$(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=.
ISOLATION    = $(sort $(patsubst test/isolation/specs/%.spec,%,$(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=output_iso

PG_CPPFLAGS = -Isrc
PG_CFLAGS   = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# C under AddressSanitizer + UBSan (and VALGRIND=1: the fuzz script under
# valgrind); slow, not part of the CI test command.  See test/asan/run.sh.
.PHONY: check-asan
check-asan:
	VALGRIND=$(VALGRIND) bash test/asan/run.sh
