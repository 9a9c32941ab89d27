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
 *
 * This file only carries the module magic.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

PG_MODULE_MAGIC;
