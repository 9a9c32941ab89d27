/*-------------------------------------------------------------------------
 *
 * overage.c
 *	  Module entry point of the overage extension.
 *
 * The extension's C code is split by concern:
 *
 *	  tags.c		the price list's Tags column -> IncludeOverage flag
 *	  holder.c		triggers guarding the overage holder, its history and log
 *	  subscription.c	triggers on subscriptions: quantity history, time
 *					order, automatic release when the last licence ends
 *	  guard.c		append-only/immutability triggers for history tables
 *	  caller.c		the role the session acts as (authorization, audit)
 *	  usage.c		ingest of calls: statement-level trigger validating a
 *					statement's rows, locking their months, keeping the
 *					running figures (usage_month)
 *	  rating.c		the attribution engine (pool and holder at each call,
 *					included and overage seconds), shared by:
 *	  pool_status.c	live pool status of one (customer, service)
 *	  close.c		the month's attribution behind preview/close_month
 *	  charge_guard.c	closed months' charge lines are immutable
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
