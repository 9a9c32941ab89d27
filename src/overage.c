/*-------------------------------------------------------------------------
 *
 * overage.c
 *	  Module entry point of the overage extension.
 *
 * The C files, one concern each, are listed with the SQL of the same
 * concern in README.md ("Layout"); every file says what it is for in its
 * header comment.
 *
 * This file only carries the module magic.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

PG_MODULE_MAGIC;

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
