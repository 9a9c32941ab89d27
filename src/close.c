/*-------------------------------------------------------------------------
 *
 * close.c
 *	  The month's attribution for preview_month and close_month: the C
 *	  function behind overage._rate_month(month).
 *
 * It reads the month through the live rating (live.c): the groups whose
 * stored rated state is current give their lines without a call being
 * read; the others are walked by the rating engine (rating.c) over the
 * pool and holder histories of the month (loaded for every group at once,
 * two queries) and the calls streamed straight from the executor in index
 * order -- one pass over the month when most groups need it (nothing
 * rated yet, as before 1.2 or without the worker), else one index range
 * per group.  The price book (service prices, service_price periods,
 * customers' markets) is loaded once, so a call's price is a step in an
 * array.  Memory is the size of the groups' histories and totals, never
 * the number of calls; the lines go to the result tuplestore (which spills
 * to disk past work_mem).
 *
 * The SQL side (preview_month) turns seconds into quantity and money;
 * close_month writes those lines.
 *
 * On a Citus cluster the same computation runs per shard on the workers
 * (_rate_shard, README "Scaling out"): the statements name the shard's
 * co-located tables and the node's placements of the reference tables
 * (a relation map, spi_util.c), so each worker rates its own customers;
 * the coordinator gathers the lines (_rate_month_shards, src/metering.sql).
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
#include "utils/guc.h"
#include "utils/tuplestore.h"

#include "overage.h"
#include "citus.h"
#include "month.h"
#include "rating.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(rate_month);
PG_FUNCTION_INFO_V1(rate_month_fresh);
PG_FUNCTION_INFO_V1(rate_shard);

/*
 * the lines of a finished group: one per (holder subscription, reseller,
 * price), and one unassigned line per price.  1.0 and 1.1 declare five
 * columns (no price, no reseller); 1.2 eight.
 */
static void
emit_group(ReturnSetInfo *rsinfo, RatingSet *set, RateGroup *g)
{
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
			values[5] = set->prices[t->price].unit_price;
			values[6] = CStringGetTextDatum(set->prices[t->price].currency);
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
static Datum rate_month_lines(FunctionCallInfo fcinfo, bool fresh, Oid shard);

Datum
rate_month(PG_FUNCTION_ARGS)
{
	return rate_month_lines(fcinfo, false, InvalidOid);
}

/*
 * rate_month_fresh(month date): the same lines, every group rated from the
 * start of its month, whatever rated state is stored (verify() compares
 * the two).
 */
Datum
rate_month_fresh(PG_FUNCTION_ARGS)
{
	return rate_month_lines(fcinfo, true, InvalidOid);
}

/*
 * rate_shard(month date, shard regclass): the lines of _rate_month for the
 * customers of one shard, rated on the node that holds it, from its
 * co-located tables: shard is the local placement of overage.usage
 * (run_command_on_shards names it).  Only on a distributed cluster; live
 * rating is off there, so every group is rated from its calls.
 */
Datum
rate_shard(PG_FUNCTION_ARGS)
{
	if (!overage_is_distributed())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("overage is not distributed in this database"),
				 errhint("_rate_shard rates a shard of a Citus cluster after overage.distribute(); on one node use preview_month.")));
	return rate_month_lines(fcinfo, false, PG_GETARG_OID(1));
}

static Datum
rate_month_lines(FunctionCallInfo fcinfo, bool fresh, Oid shard)
{
	DateADT		month = PG_GETARG_DATEADT(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	LiveRun		run;
	HASH_SEQ_STATUS seq;
	RateGroup  *g;
	volatile int guc_level = 0;

	if (DATE_NOT_FINITE(month))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("month must be a finite date")));

	overage_init_materialized_srf(fcinfo);

	memset(&run, 0, sizeof(run));
	run.month = overage_month_of((TimestampTz) month * USECS_PER_DAY,
								 &run.mstart, &run.mend);
	run.at = DT_NOEND;
	run.load_marks = !fresh;
	run.fresh = fresh;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (OidIsValid(shard))
	{
		overage_spi_map(overage_shard_relations(shard));

		/*
		 * No JIT: every shard is rated in a backend of its own, so a
		 * compilation (0.1 to 0.4 s, measured) would be paid once per
		 * shard, for statements that read a shard's share of the month.
		 * For this function call only (the transaction's end or the nest
		 * level below restores it).
		 */
		guc_level = NewGUCNestLevel();
		(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
	PG_TRY();
	{
		run.set = rating_set_create(CurrentMemoryContext);
		/* the prices, unless called by 1.1's SQL (five columns, no prices) */
		if (rsinfo->setDesc->natts >= 7)
			rating_load_prices(run.set, run.mstart, run.mend, run.month);
		live_read(&run);
	}
	PG_CATCH();
	{
		overage_spi_map(NULL);
		PG_RE_THROW();
	}
	PG_END_TRY();
	overage_spi_map(NULL);
	if (guc_level > 0)
		AtEOXact_GUC(true, guc_level);

	hash_seq_init(&seq, run.set->groups);
	while ((g = (RateGroup *) hash_seq_search(&seq)) != NULL)
		if (g->mode != LIVE_NONE)
			emit_group(rsinfo, run.set, g);
	SPI_finish();

	return (Datum) 0;
}
