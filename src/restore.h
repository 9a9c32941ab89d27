/*-------------------------------------------------------------------------
 *
 * restore.h
 *	  Is a trigger fired by pg_dump's reload of a table (restore.c)?
 *
 *-------------------------------------------------------------------------
 */
#ifndef OVERAGE_RESTORE_H
#define OVERAGE_RESTORE_H

#include "utils/relcache.h"

extern bool overage_restoring(Relation rel);

#endif							/* OVERAGE_RESTORE_H */
