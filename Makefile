# overage -- PGXS build
#
#   make && make install          build and install into the server of PG_CONFIG
#   make installcheck             pg_regress and pg_isolation_regress against a
#                                 running server (test/run-suites.sh runs it,
#                                 then the scripts in test/scripts/)

EXTENSION  = overage
EXTVERSION = 1.2
MODULE_big = overage
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
PGFILEDESC = "overage - telecom overage billing"

# The SQL a developer edits lives in src/<concern>.sql, in this order (each
# file's tables before the next file's: foreign keys; access last: its
# policies and grants name every other file's objects).  Above a file's
# DEFINITIONS line: tables and indexes, run once by CREATE EXTENSION.
# Below it: functions, triggers, comments, policies, grants, re-runnable.
#
#   overage--1.2.sql         every file's tables, then every file's definitions
#   overage--1.1--1.2.sql    src/updates/overage--1.1--1.2.sql (what the 1.1
#                            catalog needs first), the tables of the files new
#                            in 1.2 (SQL_NEW), then every file's definitions
#
# Released scripts are frozen in src/released/.  When 1.2 is released, the two
# built scripts are copied there and the next version starts a new update.
SQL_SOURCES = src/common.sql src/catalog.sql src/parties.sql src/holder.sql \
              src/transfer.sql src/metering.sql src/rating.sql src/inputs.sql \
              src/alerts.sql src/verify.sql src/citus.sql src/access.sql
# files whose every table is new in 1.2: the upgrade script takes their
# tables parts as they are, after src/updates/ and before the definitions
SQL_NEW     = src/transfer.sql src/rating.sql src/inputs.sql src/alerts.sql
DATA_built  = $(EXTENSION)--$(EXTVERSION).sql $(EXTENSION)--1.1--$(EXTVERSION).sql
DATA        = $(sort $(wildcard src/released/$(EXTENSION)--*.sql))

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

# PGXS does not track header dependencies: a changed header (a struct of
# rating.h, say) rebuilds every object, not only the file that changed
$(OBJS): $(wildcard src/*.h)

# part=tables: the lines above each file's DEFINITIONS line; part=definitions:
# the lines from it on; of the files $(2) (default: all of SQL_SOURCES)
split_sql = awk -v part=$(1) 'FNR == 1 { d = 0 } /^-- DEFINITIONS:/ { d = 1 } \
	(part == "definitions") == d' $(or $(2),$(SQL_SOURCES))

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_SOURCES) Makefile
	{ echo '/* $@: built by the Makefile from $(SQL_SOURCES); edit those */'; \
	  printf '%s\n' '\echo Use "CREATE EXTENSION $(EXTENSION)" to load this file. \quit'; \
	  $(call split_sql,tables); $(call split_sql,definitions); } > $@

$(EXTENSION)--1.1--$(EXTVERSION).sql: src/updates/$(EXTENSION)--1.1--$(EXTVERSION).sql $(SQL_SOURCES) Makefile
	{ cat $<; $(call split_sql,tables,$(SQL_NEW)); $(call split_sql,definitions); } > $@

# C under AddressSanitizer + UBSan (and VALGRIND=1: the fuzz script under
# valgrind); slow, not part of the CI test command.  See test/asan/run.sh.
.PHONY: check-asan
check-asan:
	VALGRIND=$(VALGRIND) bash test/asan/run.sh
