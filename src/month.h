/*-------------------------------------------------------------------------
 *
 * month.h
 *	  Calendar months (UTC) and the billing_month locks that order dated
 *	  writes against close_month (month.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef OVERAGE_MONTH_H
#define OVERAGE_MONTH_H

#include "utils/date.h"
#include "utils/timestamp.h"

extern DateADT overage_month_of(TimestampTz t, TimestampTz *start,
								TimestampTz *end);
extern char *overage_date_str(DateADT d);
extern void overage_lock_months(DateADT *months, int nm, const char *detail,
								const char *hint);
extern void overage_refuse_closed_month(TimestampTz at, const char *what);

#endif							/* OVERAGE_MONTH_H */
