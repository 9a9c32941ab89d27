/*-------------------------------------------------------------------------
 *
 * month.c
 *	  Calendar months (UTC) and their billing_month rows, which order every
 *	  write dated in a month against close_month: ingest (usage.c), licence
 *	  changes (subscription.c) and holder changes (holder.c) lock the
 *	  months they write in FOR SHARE and refuse closed ones (OV006);
 *	  close_month locks its month FOR UPDATE.  Also the month of an
 *	  instant, used by the rating (close.c, pool_status.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "overage.h"
#include "month.h"
#include "spi_util.h"

/*
 * overage_month_of
 *		The calendar month (UTC) of a finite instant, as the date of its
 *		first day; *start and *end receive the month's bounds.
 */
DateADT
overage_month_of(TimestampTz t, TimestampTz *start, TimestampTz *end)
{
	struct pg_tm tm;
	fsec_t		fsec;
	DateADT		month;

	if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	month = date2j(tm.tm_year, tm.tm_mon, 1) - POSTGRES_EPOCH_JDATE;
	if (start)
		*start = (TimestampTz) month * USECS_PER_DAY;
	if (end)
	{
		int			y = tm.tm_year + (tm.tm_mon == 12 ? 1 : 0);
		int			m = tm.tm_mon == 12 ? 1 : tm.tm_mon + 1;

		*end = (TimestampTz) (date2j(y, m, 1) - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY;
	}
	return month;
}

/* "YYYY-MM-DD" of a date, whatever DateStyle says (for messages) */
char *
overage_date_str(DateADT d)
{
	int			y,
				m,
				day;

	if (DATE_NOT_FINITE(d))
		return pstrdup(DATE_IS_NOBEGIN(d) ? "-infinity" : "infinity");
	j2date(d + POSTGRES_EPOCH_JDATE, &y, &m, &day);
	return psprintf("%04d-%02d-%02d", y, m, day);
}

/* OV006: "month m is closed", with the refused change in detail */
static void
month_closed_error(DateADT m, const char *detail, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_OVERAGE_MONTH_CLOSED),
			 errmsg("month %s is closed", overage_date_str(m)),
			 errdetail("%s", detail),
			 errhint("%s", hint)));
}

/*
 * overage_lock_months
 *		Lock the months FOR SHARE, in order, creating the missing rows
 *		first; refuse a closed month with the given detail and hint.
 *		Usually the months exist: one round trip.  FOR SHARE waits for a
 *		close_month in progress and then sees its closed_at (READ COMMITTED
 *		re-reads the locked row); a close that starts later waits for this
 *		transaction, and its fresh snapshot includes what this one wrote.
 */
void
overage_lock_months(DateADT *months, int nm, const char *detail, const char *hint)
{
	static SPIPlanPtr month_insert = NULL;
	static SPIPlanPtr month_lock = NULL;
	Datum	   *md = palloc(sizeof(Datum) * nm);
	Oid			argtypes[1] = {DATEARRAYOID};
	Datum		values[1];
	const char *lock_sql =
		"SELECT b.month, b.closed_at FROM overage.billing_month b"
		" WHERE b.month = ANY ($1) ORDER BY b.month FOR SHARE";

	for (int i = 0; i < nm; i++)
		md[i] = DateADTGetDatum(months[i]);
	values[0] = PointerGetDatum(construct_array(md, nm, DATEOID, 4, true, TYPALIGN_INT));

	overage_spi_exec(&month_lock, lock_sql, 1, argtypes, values, NULL, 0);
	if (SPI_processed != (uint64) nm)
	{
		overage_spi_exec(&month_insert,
						 "INSERT INTO overage.billing_month (month)"
						 " SELECT m FROM unnest($1::date[]) m ORDER BY m"
						 " ON CONFLICT (month) DO NOTHING",
						 1, argtypes, values, NULL, 0);
		overage_spi_exec(&month_lock, lock_sql, 1, argtypes, values, NULL, 0);
		if (SPI_processed != (uint64) nm)
			elog(ERROR, "billing month rows missing");
	}
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		Datum		m = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull);

		(void) SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull);
		if (!isnull)
			month_closed_error(DatumGetDateADT(m), detail, hint);
	}
}

/*
 * overage_refuse_closed_month
 *		A licence or holder change ("what", for the message) at instant "at"
 *		is refused (OV006) if the month of "at" is closed: pool_status and
 *		preview_month of a closed month must stay what it was billed on.
 *
 *		The month is locked exactly as ingest locks it (overage_lock_months), its
 *		billing_month row created when missing, so a change racing
 *		close_month is either seen by the close or refused after it.
 *		Connects to SPI itself.
 */
void
overage_refuse_closed_month(TimestampTz at, const char *what)
{
	DateADT		month;

	if (TIMESTAMP_NOT_FINITE(at))
		return;					/* belongs to no calendar month */
	month = overage_month_of(at, NULL, NULL);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	overage_lock_months(&month, 1,
				psprintf("Its charge lines are final, so its licence and holder history cannot change: %s at %s is refused.",
						 what, timestamptz_to_str(at)),
				"Date the change at or after the end of the month.");
	SPI_finish();
}
