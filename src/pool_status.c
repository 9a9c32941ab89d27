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
 * Through the live rating (live.c): when the group's stored rated state
 * is current and ends before at, only the calls from its rated_to on are
 * read (none when no call is pending); otherwise the group's calls before
 * at are read in order through the usage_rating index.
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
	char	   *customer = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *service = text_to_cstring(PG_GETARG_TEXT_PP(1));
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(2);
	TupleDesc	tupdesc;
	LiveRun		run;
	RateGroup  *g;
	int64		pool;
	Datum		result[5];
	bool		nulls[5] = {false, false, false, false, false};
	HeapTuple	tuple;

	if (TIMESTAMP_NOT_FINITE(at))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("at must be a finite instant")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "rate_status: return type must be a row type");

	memset(&run, 0, sizeof(run));
	run.month = overage_month_of(at, &run.mstart, &run.mend);
	run.customer = customer;
	run.service = service;
	run.at = at;
	run.load_marks = true;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	run.set = rating_set_create(CurrentMemoryContext);
	live_read(&run);
	g = rating_group(run.set, customer, service);

	pool = rating_pool_at(g, at);
	result[0] = DateADTGetDatum(run.month);
	result[1] = Int64GetDatum(pool);
	result[2] = Int64GetDatum(g->used);
	result[3] = Int64GetDatum(g->overage);
	result[4] = Int64GetDatum(g->unassigned);

	SPI_finish();
	tuple = heap_form_tuple(tupdesc, result, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}
