/*-------------------------------------------------------------------------
 *
 * close.c
 *	  The month's attribution for preview_month and close_month: the C
 *	  function behind overage._rate_month(month).
 *
 * It loads the pool and holder histories of the month for every
 * (customer, service) at once (two queries; their size is the size of the
 * catalog histories, not of the usage), then streams the calls of the month
 * straight from the executor (a DestReceiver: no row is copied into an
 * SPI tuple table) in index order -- month, customer, service,
 * started_at, usage_id, an index-only scan of usage_rating -- and feeds
 * each group's calls to the rating engine (rating.c).  The price book
 * (service prices, service_price periods, customers' markets) is loaded
 * once before the scan, so a call's price is a step in an array.  When a group ends
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
#include "nodes/params.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/tuplestore.h"

#include "overage.h"
#include "month.h"
#include "rating.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(rate_month);

/* does the text Datum equal the C string s of length len */
static inline bool
text_eq(Datum d, const char *s, int len)
{
	text	   *t = (text *) DatumGetPointer(d);

	return (int) VARSIZE_ANY_EXHDR(t) == len && memcmp(VARDATA_ANY(t), s, len) == 0;
}

/*
 * The calls are not fetched into SPI tuple tables (which copy every row
 * into a palloc'd heap tuple); a DestReceiver takes each row from the
 * executor's slot and feeds it to the rating engine at once.
 */
typedef struct RateReceiver
{
	DestReceiver pub;
	ReturnSetInfo *rsinfo;
	RatingSet  *set;
	RateGroup  *group;			/* the group being rated, NULL before the first */
	int			clen;			/* strlen of group->customer, group->service */
	int			slen;
} RateReceiver;

/*
 * the lines of a finished group: one per (holder subscription, reseller,
 * price), and one unassigned line per price.  1.0 and 1.1 declare five
 * columns (no price, no reseller); 1.2 eight.
 */
static void
emit_group(RateReceiver *r, RateGroup *g)
{
	ReturnSetInfo *rsinfo = r->rsinfo;
	Datum		values[8];
	bool		nulls[8];
	bool		with_prices = rsinfo->setDesc->natts >= 7;
	bool		with_reseller = rsinfo->setDesc->natts >= 8;

	if (g == NULL || g->overage == 0)
		return;
	values[0] = CStringGetTextDatum(g->customer);
	values[1] = CStringGetTextDatum(g->service);
	for (int i = 0; i < g->ntotals; i++)
	{
		HolderTotal *t = &g->totals[i];

		memset(nulls, 0, sizeof(nulls));
		if (t->partner != NULL)
		{
			values[2] = CStringGetTextDatum(t->partner);
			values[3] = UUIDPGetDatum(&t->subscription);
		}
		else
			nulls[2] = nulls[3] = true;
		values[4] = Int64GetDatum(t->seconds);
		if (!with_prices)
			;					/* 1.1's _rate_month: five columns */
		else if (t->price >= 0)
		{
			values[5] = r->set->prices[t->price].unit_price;
			values[6] = CStringGetTextDatum(r->set->prices[t->price].currency);
		}
		else
			nulls[5] = nulls[6] = true;
		if (with_reseller && t->partner != NULL && t->reseller != NULL)
			values[7] = CStringGetTextDatum(t->reseller);
		else
			nulls[7] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

static bool
rate_receive(TupleTableSlot *slot, DestReceiver *self)
{
	RateReceiver *r = (RateReceiver *) self;
	Datum		c;
	Datum		s;
	TimestampTz t;
	int32		d;

	slot_getallattrs(slot);
	c = slot->tts_values[0];
	s = slot->tts_values[1];
	t = DatumGetTimestampTz(slot->tts_values[2]);
	d = DatumGetInt32(slot->tts_values[3]);

	if (r->group == NULL || !text_eq(c, r->group->customer, r->clen) ||
		!text_eq(s, r->group->service, r->slen))
	{
		char	   *cs = TextDatumGetCString(c);
		char	   *ss = TextDatumGetCString(s);

		emit_group(r, r->group);
		r->group = rating_group(r->set, cs, ss);
		pfree(cs);
		pfree(ss);
		r->clen = strlen(r->group->customer);
		r->slen = strlen(r->group->service);
		rating_group_prices(r->set, r->group);
		rating_begin(r->group);
	}
	rating_call(r->group, t, d);
	return true;
}

static void
rate_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
rate_shutdown(DestReceiver *self)
{
}

static void
rate_destroy(DestReceiver *self)
{
}

/*
 * rate_month(month date) RETURNS TABLE(customer_id text, service_id text,
 *		partner_id text, subscription_id uuid, overage_seconds bigint,
 *		unit_price numeric, currency text, reseller_id text)
 *
 * The overage seconds of the calendar month (UTC) that holds the date, per
 * (customer, service, holder subscription, reseller, price), and unassigned
 * (partner, subscription and reseller NULL) per price.  The library also
 * serves the 1.0/1.1 declaration of five columns (no price, no reseller)
 * until ALTER EXTENSION UPDATE.  Only groups with overage give lines.
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
	RateReceiver receiver;
	ParamListInfo params;
	SPIExecuteOptions options;
	int			rc;
	Oid			argtypes[1] = {TIMESTAMPOID};

	if (DATE_NOT_FINITE(month))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("month must be a finite date")));

	overage_init_materialized_srf(fcinfo);

	month = overage_month_of((TimestampTz) month * USECS_PER_DAY, &mstart, &mend);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	set = rating_set_create(CurrentMemoryContext);
	rating_load_pools(set, mstart, mend, NULL, NULL);
	rating_load_holders(set, mstart, mend, NULL, NULL);
	/* the prices, unless called by 1.1's SQL (five columns, no prices) */
	if (rsinfo->setDesc->natts >= 7)
		rating_load_prices(set, mstart, mend, month);

	/* $1: the month start as a timestamp without time zone, as in the index */
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
	receiver.pub.receiveSlot = rate_receive;
	receiver.pub.rStartup = rate_startup;
	receiver.pub.rShutdown = rate_shutdown;
	receiver.pub.rDestroy = rate_destroy;
	receiver.pub.mydest = DestNone;
	receiver.rsinfo = rsinfo;
	receiver.set = set;
	receiver.group = NULL;

	params = makeParamList(1);
	params->params[0].value = TimestampGetDatum((Timestamp) mstart);
	params->params[0].isnull = false;
	params->params[0].pflags = PARAM_FLAG_CONST;
	params->params[0].ptype = TIMESTAMPOID;

	memset(&options, 0, sizeof(options));
	options.params = params;
	options.read_only = false;	/* a fresh snapshot, as the history loads */
	options.dest = (DestReceiver *) &receiver;

	/* SPI reports SPI_OK_UTILITY for a SELECT whose rows go to a DestNone receiver */
	rc = SPI_execute_plan_extended(calls_plan, &options);
	if (rc < 0)
		elog(ERROR, "rate_month: calls query failed: %s", SPI_result_code_string(rc));
	emit_group(&receiver, receiver.group);
	SPI_finish();

	return (Datum) 0;
}
