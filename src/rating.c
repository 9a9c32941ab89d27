/*-------------------------------------------------------------------------
 *
 * rating.c
 *	  The attribution engine: SPEC "Attributing a call", written once and
 *	  used by pool_status (pool_status.c) and by preview_month/close_month
 *	  (close.c).
 *
 * A (customer, service) of a month is a RateGroup holding two step
 * functions read from the history tables:
 *
 *	  pool events	from license_quantity: each period of a licence whose SKU
 *					includes the service adds quantity * minutes * 60 s at
 *					valid_from and takes it away at valid_to, so the pool at
 *					t is the sum of the events at or before t (a change
 *					takes effect at exactly its instant);
 *	  holder spans	from holder_period: the holder during [from, to); the
 *					zero-length periods are dropped (they contain no
 *					instant); before the first span nobody holds it.
 *
 * The calls of the group are then fed in order of (started_at, usage_id)
 * to rating_call(), which keeps included_before (the included seconds of
 * the earlier calls: overage seconds never consume the pool, SPEC 1.2),
 * computes
 *		included = clamp(pool(t) - included_before, 0, d),  overage = d - included
 * and adds the overage to the subscription holding the overage at t, or to
 * the unassigned seconds.  (Version 1.1 subtracted all earlier seconds,
 * used_before; the rule changed in 1.2, months closed before keep their
 * lines.)  Walking is forward only, so a call costs O(1)
 * amortised and the memory of a group is the size of its histories, never
 * the number of its calls.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "overage.h"
#include "rating.h"
#include "spi_util.h"

typedef struct GroupKey
{
	char	   *customer;
	char	   *service;
} GroupKey;

static uint32
group_hash(const void *key, Size keysize)
{
	const GroupKey *k = (const GroupKey *) key;

	return hash_combine(string_hash(k->customer, 0), string_hash(k->service, 0));
}

static int
group_match(const void *key1, const void *key2, Size keysize)
{
	const GroupKey *a = (const GroupKey *) key1;
	const GroupKey *b = (const GroupKey *) key2;

	return strcmp(a->customer, b->customer) != 0 ||
		strcmp(a->service, b->service) != 0;
}

RatingSet *
rating_set_create(MemoryContext parent)
{
	HASHCTL		ctl;
	MemoryContext cxt = AllocSetContextCreate(parent, "overage rating",
											  ALLOCSET_DEFAULT_SIZES);
	RatingSet  *set = MemoryContextAlloc(cxt, sizeof(RatingSet));

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(GroupKey);
	ctl.entrysize = sizeof(RateGroup);
	ctl.hash = group_hash;
	ctl.match = group_match;
	ctl.hcxt = cxt;

	set->cxt = cxt;
	set->groups = hash_create("overage rating groups", 1024, &ctl,
							  HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	return set;
}

/* the group of (customer, service), created empty (pool 0, never held) */
RateGroup *
rating_group(RatingSet *set, const char *customer, const char *service)
{
	GroupKey	key;
	RateGroup  *g;
	bool		found;

	key.customer = (char *) customer;
	key.service = (char *) service;
	g = (RateGroup *) hash_search(set->groups, &key, HASH_ENTER, &found);
	if (!found)
	{
		memset(g, 0, sizeof(RateGroup));
		g->customer = MemoryContextStrdup(set->cxt, customer);
		g->service = MemoryContextStrdup(set->cxt, service);
		g->cxt = set->cxt;
	}
	return g;
}

static void
add_event(RateGroup *g, TimestampTz at, int64 delta)
{
	if (g->nevents == g->maxevents)
	{
		MemoryContext cxt = g->cxt;

		g->maxevents = g->maxevents ? g->maxevents * 2 : 4;
		g->events = g->events ?
			repalloc(g->events, sizeof(PoolEvent) * g->maxevents) :
			MemoryContextAlloc(cxt, sizeof(PoolEvent) * g->maxevents);
	}
	g->events[g->nevents].at = at;
	g->events[g->nevents].delta = delta;
	g->nevents++;
	g->sorted = false;
}

static void
add_span(RateGroup *g, HolderSpan *span)
{
	if (g->nspans == g->maxspans)
	{
		MemoryContext cxt = g->cxt;

		g->maxspans = g->maxspans ? g->maxspans * 2 : 4;
		g->spans = g->spans ?
			repalloc(g->spans, sizeof(HolderSpan) * g->maxspans) :
			MemoryContextAlloc(cxt, sizeof(HolderSpan) * g->maxspans);
	}
	g->spans[g->nspans++] = *span;
	g->sorted = false;
}

static int
event_cmp(const void *a, const void *b)
{
	TimestampTz x = ((const PoolEvent *) a)->at;
	TimestampTz y = ((const PoolEvent *) b)->at;

	return (x > y) - (x < y);
}

static int
span_cmp(const void *a, const void *b)
{
	TimestampTz x = ((const HolderSpan *) a)->from;
	TimestampTz y = ((const HolderSpan *) b)->from;

	return (x > y) - (x < y);
}

static char *
spi_text(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/*
 * history_query
 *		Run one of the month's history queries ($1, $2: the month's
 *		bounds): for every (customer, service) with all_sql, or for the
 *		one given with one_sql, which adds $3 and $4.  The rows are in
 *		SPI_tuptable.
 */
static void
history_query(SPIPlanPtr *all_plan, const char *all_sql,
			  SPIPlanPtr *one_plan, const char *one_sql,
			  TimestampTz from, TimestampTz to,
			  const char *customer, const char *service)
{
	Oid			argtypes[4] = {TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, TEXTOID};
	Datum		values[4];

	values[0] = TimestampTzGetDatum(from);
	values[1] = TimestampTzGetDatum(to);
	if (customer == NULL)
		overage_spi_exec(all_plan, all_sql, 2, argtypes, values, NULL, 0);
	else
	{
		values[2] = CStringGetTextDatum(customer);
		values[3] = CStringGetTextDatum(service);
		overage_spi_exec(one_plan, one_sql, 4, argtypes, values, NULL, 0);
	}
}

/*
 * rating_load_pools
 *		Pool events of the licences active at some instant of [from, to),
 *		for every (customer, service), or only for the one given.  Runs SPI
 *		(the caller is connected); groups live in the hash's context.
 */
void
rating_load_pools(RatingSet *set, TimestampTz from, TimestampTz to,
				  const char *customer, const char *service)
{
	static SPIPlanPtr all_plan = NULL;
	static SPIPlanPtr one_plan = NULL;
#define POOL_SQL \
	"SELECT s.customer_id, ss.service_id, lq.valid_from, lq.valid_to," \
	" lq.quantity::int8 * ss.minutes_per_license * 60" \
	" FROM overage.license_quantity lq" \
	" JOIN overage.subscription s ON s.subscription_id = lq.subscription_id" \
	" JOIN overage.sku_service ss ON ss.product_id = s.product_id" \
	"  AND ss.sku_id = s.sku_id" \
	" WHERE s.kind = 'license' AND ss.minutes_per_license > 0" \
	"  AND lq.valid_from < $2 AND (lq.valid_to IS NULL OR lq.valid_to > $1)"
	history_query(&all_plan, POOL_SQL,
				  &one_plan, POOL_SQL " AND s.customer_id = $3 AND ss.service_id = $4",
				  from, to, customer, service);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *c = spi_text(tup, desc, 1);
		char	   *s = spi_text(tup, desc, 2);
		RateGroup  *g = rating_group(set, c, s);
		bool		isnull;
		bool		open_end;
		TimestampTz vf = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));
		Datum		vt = SPI_getbinval(tup, desc, 4, &open_end);
		int64		secs = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));

		add_event(g, vf, secs);
		if (!open_end)
			add_event(g, DatumGetTimestampTz(vt), -secs);
	}
	SPI_freetuptable(SPI_tuptable);
}

/*
 * rating_load_holders
 *		Holder spans that overlap [from, to), for every (customer, service)
 *		or only the one given.  The reseller (1.2) is read through to_jsonb
 *		so that the query also runs on a 1.0 or 1.1 schema, which has no
 *		such column (the library serves every version).
 */
void
rating_load_holders(RatingSet *set, TimestampTz from, TimestampTz to,
					const char *customer, const char *service)
{
	static SPIPlanPtr all_plan = NULL;
	static SPIPlanPtr one_plan = NULL;
#define HOLDER_SQL \
	"SELECT hp.customer_id, hp.service_id, hp.valid_from, hp.valid_to," \
	" hp.partner_id, hp.subscription_id," \
	" pg_catalog.to_jsonb(hp) OPERATOR(pg_catalog.->>) 'reseller_id'" \
	" FROM overage.holder_period hp" \
	" WHERE hp.valid_from < $2 AND (hp.valid_to IS NULL OR hp.valid_to > $1)" \
	"  AND (hp.valid_to IS NULL OR hp.valid_to > hp.valid_from)"
	history_query(&all_plan, HOLDER_SQL,
				  &one_plan, HOLDER_SQL " AND hp.customer_id = $3 AND hp.service_id = $4",
				  from, to, customer, service);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *c = spi_text(tup, desc, 1);
		char	   *s = spi_text(tup, desc, 2);
		RateGroup  *g = rating_group(set, c, s);
		HolderSpan	span;
		bool		isnull;
		Datum		d;

		memset(&span, 0, sizeof(span));
		span.from = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));
		d = SPI_getbinval(tup, desc, 4, &isnull);
		span.to_open = isnull;
		span.to = isnull ? DT_NOEND : DatumGetTimestampTz(d);
		d = SPI_getbinval(tup, desc, 5, &isnull);
		if (!isnull)
		{
			span.partner = MemoryContextStrdup(g->cxt,
											   TextDatumGetCString(d));
			d = SPI_getbinval(tup, desc, 6, &isnull);
			if (isnull)
				elog(ERROR, "holder period with a partner and no subscription");
			memcpy(&span.subscription, DatumGetUUIDP(d), sizeof(pg_uuid_t));
			d = SPI_getbinval(tup, desc, 7, &isnull);
			if (!isnull)
				span.reseller = MemoryContextStrdup(g->cxt,
													TextDatumGetCString(d));
		}
		add_span(g, &span);
	}
	SPI_freetuptable(SPI_tuptable);
}

/* start walking the group's calls from the beginning of its month */
void
rating_begin(RateGroup *g)
{
	if (!g->sorted)
	{
		if (g->nevents > 1)
			qsort(g->events, g->nevents, sizeof(PoolEvent), event_cmp);
		if (g->nspans > 1)
			qsort(g->spans, g->nspans, sizeof(HolderSpan), span_cmp);
		g->sorted = true;
	}
	g->evpos = 0;
	g->spanpos = 0;
	g->pool = 0;
	g->used = 0;
	g->included = 0;
	g->overage = 0;
	g->unassigned = 0;
	g->ntotals = 0;
}

/* the pool at t; t must not go backwards between calls */
int64
rating_pool_at(RateGroup *g, TimestampTz t)
{
	while (g->evpos < g->nevents && g->events[g->evpos].at <= t)
		g->pool += g->events[g->evpos++].delta;
	return g->pool;
}

/*
 * rating_min_pool
 *		The least pool at any instant of [from, to] (the group must have
 *		been through rating_begin).  When the seconds of all calls starting
 *		in [from, to] are at most this, none of them has overage.
 */
int64
rating_min_pool(RateGroup *g, TimestampTz from, TimestampTz to)
{
	int64		pool = 0;
	int64		least;
	int			i = 0;

	while (i < g->nevents && g->events[i].at <= from)
		pool += g->events[i++].delta;
	least = pool;
	while (i < g->nevents && g->events[i].at <= to)
	{
		pool += g->events[i++].delta;
		if (pool < least)
			least = pool;
	}
	return least;
}

/* same reseller (both NULL for a direct partner)? */
static inline bool
reseller_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* the lines' key within a group: (holder subscription, reseller) */
static void
add_total(RateGroup *g, HolderSpan *span, int64 seconds)
{
	for (int i = 0; i < g->ntotals; i++)
		if (memcmp(&g->totals[i].subscription, &span->subscription,
				   sizeof(pg_uuid_t)) == 0 &&
			reseller_eq(g->totals[i].reseller, span->reseller))
		{
			g->totals[i].seconds += seconds;
			return;
		}
	if (g->ntotals == g->maxtotals)
	{
		MemoryContext cxt = g->cxt;

		g->maxtotals = g->maxtotals ? g->maxtotals * 2 : 2;
		g->totals = g->totals ?
			repalloc(g->totals, sizeof(HolderTotal) * g->maxtotals) :
			MemoryContextAlloc(cxt, sizeof(HolderTotal) * g->maxtotals);
	}
	g->totals[g->ntotals].partner = span->partner;
	g->totals[g->ntotals].subscription = span->subscription;
	g->totals[g->ntotals].reseller = span->reseller;
	g->totals[g->ntotals].seconds = seconds;
	g->ntotals++;
}

/*
 * rating_call
 *		Attribute one call starting at t lasting duration seconds; calls
 *		must come in order of (started_at, usage_id).
 */
void
rating_call(RateGroup *g, TimestampTz t, int32 duration)
{
	int64		pool = rating_pool_at(g, t);
	int64		included = pool - g->included;
	int64		over;

	if (included < 0)
		included = 0;
	if (included > duration)
		included = duration;
	over = duration - included;
	g->used += duration;
	g->included += included;
	if (over == 0)
		return;
	g->overage += over;

	/* the span containing t, if any */
	while (g->spanpos < g->nspans && !g->spans[g->spanpos].to_open &&
		   g->spans[g->spanpos].to <= t)
		g->spanpos++;
	if (g->spanpos < g->nspans && g->spans[g->spanpos].from <= t &&
		g->spans[g->spanpos].partner != NULL)
		add_total(g, &g->spans[g->spanpos], over);
	else
		g->unassigned += over;
}
