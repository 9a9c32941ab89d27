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

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "overage.h"
#include "month.h"
#include "citus.h"
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
 * lock_cluster_months
 *		overage_lock_months on a Citus cluster (README "Scaling out"): the
 *		trigger runs on a worker's shard, where billing_month (a reference
 *		table) may only be read, and only this node's placement -- writing
 *		it, or locking it through Citus, would need the other nodes, which
 *		Citus refuses inside a shard's trigger.  So the months are locked
 *		FOR SHARE in this node's placement, and must exist: distribute()
 *		creates the rows of 2000 to 2099, close_month the month it closes.
 *		close_month's UPDATE of the month row writes every placement, so it
 *		waits for the ingests holding the row on any node, and they then
 *		see the month closed, as on one node.  Leaves the rows in
 *		SPI_tuptable.
 */
static void
lock_cluster_months(DateADT *months, int nm, Datum marray)
{
	static SPIPlanPtr plan = NULL;
	static Oid	plan_month_rel = InvalidOid;
	Oid			month_rel = get_relname_relid("billing_month",
											  get_namespace_oid("overage", false));
	Oid			argtypes[1] = {DATEARRAYOID};
	Datum		values[1] = {marray};

	/* the placement's name changes with the table (a new CREATE EXTENSION) */
	if (plan != NULL && month_rel != plan_month_rel)
	{
		SPI_freeplan(plan);
		plan = NULL;
	}
	if (plan == NULL)
	{
		char	   *sql = psprintf("SELECT b.month, b.closed_at FROM %s b"
								   " WHERE b.month = ANY ($1) ORDER BY b.month FOR SHARE",
								   overage_local_placement("billing_month"));

		plan = SPI_prepare(sql, 1, argtypes);
		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "could not prepare the month lock of the cluster");
		plan_month_rel = month_rel;
	}
	if (SPI_execute_plan(plan, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "month lock failed");
	if (SPI_processed != (uint64) nm)
	{
		DateADT		missing = months[0];

		/* the first month asked for that is not there */
		for (int i = 0; i < nm; i++)
		{
			bool		found = false;

			for (uint64 r = 0; r < SPI_processed && !found; r++)
			{
				bool		isnull;

				found = DatumGetDateADT(SPI_getbinval(SPI_tuptable->vals[r],
													  SPI_tuptable->tupdesc, 1,
													  &isnull)) == months[i];
			}
			if (!found)
			{
				missing = months[i];
				break;
			}
		}
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("month %s has no row in overage.billing_month",
						overage_date_str(missing)),
				 errdetail("On a distributed cluster the workers cannot create month rows; overage.distribute() creates those of 2000 to 2099."),
				 errhint("Insert the month on the coordinator: INSERT INTO overage.billing_month (month) VALUES ('%s');",
						 overage_date_str(missing))));
	}
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

	if (overage_is_distributed())
	{
		lock_cluster_months(months, nm, values[0]);
		lock_sql = NULL;
	}
	else
		overage_spi_exec(&month_lock, lock_sql, 1, argtypes, values, NULL, 0);
	if (lock_sql != NULL && SPI_processed != (uint64) nm)
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
