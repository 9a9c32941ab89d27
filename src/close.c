/*-------------------------------------------------------------------------
 *
 * close.c
 *	  The month's attribution for preview_month and close_month: the C
 *	  function behind overage._rate_month(month).
 *
 * It loads the pool and holder histories of the month for every
 * (customer, service) at once (two queries; their size is the size of the
 * catalog histories, not of the usage), then streams the calls of the month
 * through one cursor in index order -- month, customer, service,
 * started_at, usage_id, an index-only scan of usage_rating -- and feeds
 * each group's calls to the rating engine (rating.c).  When a group ends
 * its lines go to the result tuplestore (which spills to disk past
 * work_mem), so memory stays bounded whatever the number of calls.
 *
 * The SQL side (preview_month) turns seconds into quantity and money;
 * close_month writes those lines.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/tuplestore.h"

#include "overage.h"
#include "rating.h"

PG_FUNCTION_INFO_V1(rate_month);

#define FETCH_BATCH 10000

/* the lines of a finished group: one per holder subscription, unassigned */
static void
emit_group(ReturnSetInfo *rsinfo, RateGroup *g)
{
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	if (g == NULL || g->overage == 0)
		return;
	values[0] = CStringGetTextDatum(g->customer);
	values[1] = CStringGetTextDatum(g->service);
	for (int i = 0; i < g->ntotals; i++)
	{
		values[2] = CStringGetTextDatum(g->totals[i].partner);
		values[3] = UUIDPGetDatum(&g->totals[i].subscription);
		values[4] = Int64GetDatum(g->totals[i].seconds);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	if (g->unassigned > 0)
	{
		nulls[2] = nulls[3] = true;
		values[4] = Int64GetDatum(g->unassigned);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/* does the text Datum equal the C string s of length len */
static inline bool
text_eq(Datum d, const char *s, int len)
{
	text	   *t = (text *) DatumGetPointer(d);

	return (int) VARSIZE_ANY_EXHDR(t) == len && memcmp(VARDATA_ANY(t), s, len) == 0;
}

/*
 * rate_month(month date) RETURNS TABLE(customer_id text, service_id text,
 *		partner_id text, subscription_id uuid, overage_seconds bigint)
 *
 * The overage seconds of the calendar month (UTC) that holds the date, per
 * (customer, service, holder subscription), and unassigned (partner and
 * subscription NULL).  Only groups with overage give lines.
 */
Datum
rate_month(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr calls_plan = NULL;
	DateADT		month = PG_GETARG_DATEADT(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TimestampTz mstart;
	TimestampTz mend;
	RatingSet  *set;
	Portal		portal;
	RateGroup  *g = NULL;
	int			clen = 0;
	int			slen = 0;
	Oid			argtypes[1] = {TIMESTAMPOID};
	Datum		values[1];

	if (DATE_NOT_FINITE(month))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("month must be a finite date")));

#if PG_VERSION_NUM >= 150000
	InitMaterializedSRF(fcinfo, 0);
#else
#error "overage needs PostgreSQL 15 or later"
#endif

	(void) overage_month_of((TimestampTz) month * USECS_PER_DAY, &mstart, &mend);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	set = rating_set_create(CurrentMemoryContext);
	rating_load_pools(set, mstart, mend, NULL, NULL);
	rating_load_holders(set, mstart, mend, NULL, NULL);

	/* the month start as a timestamp without time zone, as in the index */
	values[0] = TimestampGetDatum((Timestamp) mstart);
	if (calls_plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(
									   "SELECT u.customer_id, u.service_id, u.started_at, u.duration_s"
									   " FROM overage.usage u"
									   " WHERE date_trunc('month', u.started_at AT TIME ZONE 'UTC') = $1"
									   " ORDER BY date_trunc('month', u.started_at AT TIME ZONE 'UTC'),"
									   " u.customer_id, u.service_id, u.started_at, u.usage_id",
									   1, argtypes);

		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "rate_month: cannot prepare the calls query");
		calls_plan = plan;
	}
	portal = SPI_cursor_open(NULL, calls_plan, values, NULL, false);

	for (;;)
	{
		SPITupleTable *tt;

		SPI_cursor_fetch(portal, true, FETCH_BATCH);
		if (SPI_processed == 0)
			break;
		tt = SPI_tuptable;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = tt->vals[i];
			bool		isnull;
			Datum		c = heap_getattr(tup, 1, tt->tupdesc, &isnull);
			Datum		s = heap_getattr(tup, 2, tt->tupdesc, &isnull);
			TimestampTz t = DatumGetTimestampTz(heap_getattr(tup, 3, tt->tupdesc, &isnull));
			int32		d = DatumGetInt32(heap_getattr(tup, 4, tt->tupdesc, &isnull));

			if (g == NULL || !text_eq(c, g->customer, clen) ||
				!text_eq(s, g->service, slen))
			{
				char	   *cs = TextDatumGetCString(c);
				char	   *ss = TextDatumGetCString(s);

				emit_group(rsinfo, g);
				g = rating_group(set, cs, ss);
				pfree(cs);
				pfree(ss);
				clen = strlen(g->customer);
				slen = strlen(g->service);
				rating_begin(g);
				CHECK_FOR_INTERRUPTS();
			}
			rating_call(g, t, d);
		}
		SPI_freetuptable(tt);
	}
	emit_group(rsinfo, g);
	SPI_cursor_close(portal);
	SPI_finish();

	return (Datum) 0;
}
