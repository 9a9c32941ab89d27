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
