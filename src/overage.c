/*-------------------------------------------------------------------------
 *
 * overage.c
 *	  Module entry point of the overage extension.
 *
 * The C files, one concern each, are listed with the SQL of the same
 * concern in README.md ("Layout"); every file says what it is for in its
 * header comment.
 *
 * This file carries the module magic and _PG_init, which defines the
 * overage.* settings and, when the library is preloaded, registers the
 * background rating worker (worker.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "worker.h"

PG_MODULE_MAGIC;

#if PG_VERSION_NUM < 160000
/* fmgr.h declares it from PostgreSQL 16 on */
void		_PG_init(void);
#endif

/*
 * _PG_init
 *		Runs once per process that loads the library: in the postmaster
 *		when it is in shared_preload_libraries, else in each backend at its
 *		first call of a C function of the extension.
 */
void
_PG_init(void)
{
	overage_worker_init();
}

#ifdef OVERAGE_ASAN
/*
 * Sanitizer builds only (test/asan/run.sh).  A backend overwrites its
 * original environment block with the process title, so a sanitizer
 * runtime that is loaded with this module, after the server started,
 * cannot read ASAN_OPTIONS/UBSAN_OPTIONS from /proc/self/environ; the
 * options are compiled in instead.
 */
const char *__asan_default_options(void);
const char *__ubsan_default_options(void);

const char *
__asan_default_options(void)
{
	return "verify_asan_link_order=0:detect_leaks=0:abort_on_error=1"
		":log_path=" OVERAGE_ASAN_LOG;
}

const char *
__ubsan_default_options(void)
{
	return "print_stacktrace=1:halt_on_error=1:log_path=" OVERAGE_ASAN_LOG;
}
#endif
