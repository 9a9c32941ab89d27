/*-------------------------------------------------------------------------
 *
 * pool_status.c
 *	  The live status of one (customer, service): the C function behind
 *	  overage.pool_status.
 *
 * As of instant at, for the calls of at's calendar month (UTC) that
 * started before at: the pool at at, the seconds used, and the overage
 * seconds (all of them, and the unassigned part), by the same engine as
 * the month close (rating.c).  The included seconds, which the remaining
 * pool is counted from, are the used seconds less the overage ones.
 *
 * Cheap for the current month: the running figures (usage_month) give the
 * seconds used when every call of the month started before at, and when
 * those seconds do not exceed the least pool between the first and the
 * last call, no call has overage and the calls are not read at all.
 * Otherwise the group's calls before at are read in order through the
 * usage_rating index.
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

#include "overage.h"
#include "month.h"
#include "rating.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(rate_status);

/*
 * rate_status(customer_id text, service_id text, at timestamptz,
 *		OUT month date, OUT pool_s bigint, OUT used_s bigint,
 *		OUT overage_s bigint, OUT unassigned_s bigint)
 */
Datum
rate_status(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr figures_plan = NULL;
	static SPIPlanPtr calls_plan = NULL;
	char	   *customer = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *service = text_to_cstring(PG_GETARG_TEXT_PP(1));
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(2);
	TupleDesc	tupdesc;
	TimestampTz mstart;
	TimestampTz mend;
	DateADT		month;
	RatingSet  *set;
	RateGroup  *g;
	int64		pool;
	bool		scan = true;
	Datum		result[5];
	bool		nulls[5] = {false, false, false, false, false};
	HeapTuple	tuple;

	if (TIMESTAMP_NOT_FINITE(at))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("at must be a finite instant")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "rate_status: return type must be a row type");

	month = overage_month_of(at, &mstart, &mend);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	set = rating_set_create(CurrentMemoryContext);
	rating_load_pools(set, mstart, mend, customer, service);
	rating_load_holders(set, mstart, mend, customer, service);
	g = rating_group(set, customer, service);
	rating_begin(g);

	/* the running figures: all calls before at and no overage possible? */
	{
		Oid			argtypes[3] = {DATEOID, TEXTOID, TEXTOID};
		Datum		values[3];

		values[0] = DateADTGetDatum(month);
		values[1] = CStringGetTextDatum(customer);
		values[2] = CStringGetTextDatum(service);
		overage_spi_exec(&figures_plan,
						 "SELECT f.seconds, f.first_at, f.last_at"
						 " FROM overage.usage_month f"
						 " WHERE f.month = $1 AND f.customer_id = $2 AND f.service_id = $3",
						 3, argtypes, values, NULL, 1);
		if (SPI_processed == 0)
			scan = false;		/* no call in the month */
		else
		{
			HeapTuple	tup = SPI_tuptable->vals[0];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			int64		seconds = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			TimestampTz first = DatumGetTimestampTz(SPI_getbinval(tup, desc, 2, &isnull));
			TimestampTz last = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));

			if (last < at && seconds <= rating_min_pool(g, first, last))
			{
				g->used = seconds;
				g->included = seconds;
				scan = false;
			}
		}
	}

	if (scan)
	{
		Oid			argtypes[4] = {TIMESTAMPOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
		Datum		values[4];
		Portal		portal;

		values[0] = TimestampGetDatum((Timestamp) mstart);
		values[1] = CStringGetTextDatum(customer);
		values[2] = CStringGetTextDatum(service);
		values[3] = TimestampTzGetDatum(at);
		if (calls_plan == NULL)
		{
			SPIPlanPtr	plan = SPI_prepare(
										   "SELECT u.started_at, u.duration_s FROM overage.usage u"
										   " WHERE date_trunc('month', u.started_at AT TIME ZONE 'UTC') = $1"
										   " AND u.customer_id = $2 AND u.service_id = $3"
										   " AND u.started_at < $4"
										   " ORDER BY u.started_at, u.usage_id",
										   4, argtypes);

			if (plan == NULL || SPI_keepplan(plan) != 0)
				elog(ERROR, "rate_status: cannot prepare the calls query");
			calls_plan = plan;
		}
		portal = SPI_cursor_open(NULL, calls_plan, values, NULL, true);
		for (;;)
		{
			SPITupleTable *tt;

			SPI_cursor_fetch(portal, true, 10000);
			if (SPI_processed == 0)
				break;
			tt = SPI_tuptable;
			for (uint64 i = 0; i < SPI_processed; i++)
			{
				bool		isnull;
				TimestampTz t = DatumGetTimestampTz(heap_getattr(tt->vals[i], 1, tt->tupdesc, &isnull));
				int32		d = DatumGetInt32(heap_getattr(tt->vals[i], 2, tt->tupdesc, &isnull));

				rating_call(g, t, d);
			}
			SPI_freetuptable(tt);
			CHECK_FOR_INTERRUPTS();
		}
		SPI_cursor_close(portal);
	}

	pool = rating_pool_at(g, at);
	result[0] = DateADTGetDatum(month);
	result[1] = Int64GetDatum(pool);
	result[2] = Int64GetDatum(g->used);
	result[3] = Int64GetDatum(g->overage);
	result[4] = Int64GetDatum(g->unassigned);

	SPI_finish();
	tuple = heap_form_tuple(tupdesc, result, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}
