/*-------------------------------------------------------------------------
 *
 * overage.h
 *	  Declarations shared by the overage extension's C files, and the
 *	  extension's own SQLSTATEs.
 *
 * The SQLSTATE class "OV" is the extension's own (classes beginning with a
 * letter from I to Z are free for implementations).  README.md lists every
 * code with the rule it stands for.
 *
 *-------------------------------------------------------------------------
 */
#ifndef OVERAGE_H
#define OVERAGE_H

#include "utils/elog.h"

/* the partner has no active licence that enables overage for the service */
#define ERRCODE_OVERAGE_NOT_ELIGIBLE		MAKE_SQLSTATE('O','V','0','0','1')
/* another partner holds the overage; it must be set to None first */
#define ERRCODE_OVERAGE_HELD_BY_OTHER		MAKE_SQLSTATE('O','V','0','0','2')
/* the target subscription cannot receive overage charges */
#define ERRCODE_OVERAGE_INVALID_TARGET		MAKE_SQLSTATE('O','V','0','0','3')
/* release by a partner that does not hold the overage */
#define ERRCODE_OVERAGE_NOT_HOLDER			MAKE_SQLSTATE('O','V','0','0','4')
/* an instant earlier than the object's last change */
#define ERRCODE_OVERAGE_TIME_BACKWARDS		MAKE_SQLSTATE('O','V','0','0','5')
/* the month is closed: no new usage, no changed lines, no second close */
#define ERRCODE_OVERAGE_MONTH_CLOSED		MAKE_SQLSTATE('O','V','0','0','6')
/* the month is still open (reconciliation of an open month) */
#define ERRCODE_OVERAGE_MONTH_OPEN			MAKE_SQLSTATE('O','V','0','0','7')
/* a history or audit table written other than through the extension */
#define ERRCODE_OVERAGE_HISTORY_READONLY	MAKE_SQLSTATE('O','V','0','0','8')

/* tags.c */
extern bool overage_tags_contain_overage(const char *buf, size_t len);


/* spi_util.c */
#include "executor/spi.h"

extern int	overage_spi_exec(SPIPlanPtr *cache, const char *sql, int nargs,
							 Oid *argtypes, Datum *values, const char *nulls,
							 long count);
extern Datum overage_attr(HeapTuple tuple, TupleDesc desc, const char *name,
						  bool *isnull);
extern char *overage_text_str(Datum d, bool isnull);
extern char *overage_uuid_str(Datum d, bool isnull);
extern char *overage_time_str(Datum d, bool isnull);
extern void overage_init_materialized_srf(FunctionCallInfo fcinfo);

/* guard.c */
extern int	overage_history_exec(SPIPlanPtr *cache, const char *sql, int nargs,
								 Oid *argtypes, Datum *values, const char *nulls);

/* holder.c */
extern bool overage_partner_eligible(Datum partner_id, Datum customer_id,
									 Datum service_id, Datum at);

/* usage.c */
#include "utils/date.h"
#include "utils/timestamp.h"
extern DateADT overage_month_of(TimestampTz t, TimestampTz *start,
								TimestampTz *end);
extern char *overage_date_str(DateADT d);
extern void overage_refuse_closed_month(TimestampTz at, const char *what);

#endif							/* OVERAGE_H */
