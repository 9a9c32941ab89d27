/*-------------------------------------------------------------------------
 *
 * guard.h
 *	  The extension's own writes to history tables (guard.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef OVERAGE_GUARD_H
#define OVERAGE_GUARD_H

#include "executor/spi.h"

extern int	overage_history_exec(SPIPlanPtr *cache, const char *sql, int nargs,
								 Oid *argtypes, Datum *values, const char *nulls);

extern void overage_history_begin(void);
extern void overage_history_end(void);

#endif							/* OVERAGE_GUARD_H */
