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
 * For the month's lines (close.c) each group also gets its prices from a
 * price book loaded once per computation (rating_load_prices, three
 * queries, never one per call or per group): the periods of
 * overage.service_price for the customer's market and the service's own
 * price where no period applies.  Each distinct (unit price, currency)
 * is an index into the book, so totals are kept per (holder subscription,
 * reseller, price).
 *
 * The calls of the group are then fed in order of (started_at, usage_id)
 * to rating_call(), which keeps included_before (the included seconds of
 * the earlier calls: overage seconds never consume the pool, SPEC 1.2),
 * computes
 *		included = clamp(pool(t) - included_before, 0, d),  overage = d - included
 * and adds the overage to the (subscription, reseller) holding the
 * overage at t, or to the unassigned seconds, at the price in effect at t.
 * (Version 1.1 subtracted all earlier seconds, used_before; the rule
 * changed in 1.2, months closed before keep their lines.)  Walking is
 * forward only, so a call costs O(1) amortised and the memory of a group
 * is the size of its histories, never the number of its calls.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

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

	memset(set, 0, sizeof(RatingSet));
	set->cxt = cxt;
	set->groups = hash_create("overage rating groups", 1024, &ctl,
							  HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	return set;
}

/* an entry of the price book's tables, keyed by two strings */
typedef struct BookEntry
{
	GroupKey	key;			/* must be first */
	char	   *market;			/* markets: the customer's market */
	int			fallback;		/* fallbacks: the service's own price */
	PricePeriod *periods;		/* schedules */
	int			nperiods;
	int			maxperiods;
} BookEntry;

static HTAB *
book_table(MemoryContext cxt, const char *name)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(GroupKey);
	ctl.entrysize = sizeof(BookEntry);
	ctl.hash = group_hash;
	ctl.match = group_match;
	ctl.hcxt = cxt;
	return hash_create(name, 256, &ctl,
					   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}

static BookEntry *
book_entry(HTAB *table, MemoryContext cxt, const char *a, const char *b,
		   HASHACTION action)
{
	GroupKey	key;
	BookEntry  *e;
	bool		found;

	key.customer = (char *) a;
	key.service = (char *) b;
	e = (BookEntry *) hash_search(table, &key, action, &found);
	if (e != NULL && !found)
	{
		memset(e, 0, sizeof(BookEntry));
		e->key.customer = MemoryContextStrdup(cxt, a);
		e->key.service = MemoryContextStrdup(cxt, b);
		e->fallback = -1;
	}
	return e;
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
		g->fallback = -1;
		g->pending_from = DT_NOEND;	/* nothing pending, nothing stale */
		g->stale_from = DT_NOEND;
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
	/* [1]: 1.2's license_quantity, joined on customer_id too (co-located
	 * on a Citus cluster); [0]: a database at 1.0 or 1.1, which has none */
	static SPIPlanPtr all_plan[2] = {NULL, NULL};
	static SPIPlanPtr one_plan[2] = {NULL, NULL};
	int			v = overage_has_column("license_quantity", "customer_id") ? 1 : 0;
#define POOL_SQL(JOIN_CUSTOMER) \
	"SELECT s.customer_id, ss.service_id, lq.valid_from, lq.valid_to," \
	" lq.quantity::int8 * ss.minutes_per_license * 60" \
	" FROM overage.license_quantity lq" \
	" JOIN overage.subscription s ON " JOIN_CUSTOMER "s.subscription_id = lq.subscription_id" \
	" JOIN overage.sku_service ss ON ss.product_id = s.product_id" \
	"  AND ss.sku_id = s.sku_id" \
	" WHERE s.kind = 'license' AND ss.minutes_per_license > 0" \
	"  AND lq.valid_from < $2 AND (lq.valid_to IS NULL OR lq.valid_to > $1)"
	static const char *const all_sql[2] = {
		POOL_SQL(""), POOL_SQL("s.customer_id = lq.customer_id AND ")
	};
	static const char *const one_sql[2] = {
		POOL_SQL("") " AND s.customer_id = $3 AND ss.service_id = $4",
		POOL_SQL("s.customer_id = lq.customer_id AND ") " AND s.customer_id = $3 AND ss.service_id = $4"
	};

	history_query(&all_plan[v], all_sql[v],
				  &one_plan[v], one_sql[v],
				  from, to, customer, service);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *c = overage_spi_text(tup, desc, 1);
		char	   *s = overage_spi_text(tup, desc, 2);
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
 *		or only the one given.  The reseller is 1.2's column; a 1.0 or 1.1
 *		schema, which the library also serves, has none ([0]: NULL).
 */
void
rating_load_holders(RatingSet *set, TimestampTz from, TimestampTz to,
					const char *customer, const char *service)
{
	static SPIPlanPtr all_plan[2] = {NULL, NULL};
	static SPIPlanPtr one_plan[2] = {NULL, NULL};
	int			v = overage_has_column("holder_period", "reseller_id") ? 1 : 0;
#define HOLDER_SQL(RESELLER) \
	"SELECT hp.customer_id, hp.service_id, hp.valid_from, hp.valid_to," \
	" hp.partner_id, hp.subscription_id, " RESELLER \
	" FROM overage.holder_period hp" \
	" WHERE hp.valid_from < $2 AND (hp.valid_to IS NULL OR hp.valid_to > $1)" \
	"  AND (hp.valid_to IS NULL OR hp.valid_to > hp.valid_from)"
	static const char *const all_sql[2] = {
		HOLDER_SQL("NULL::text"), HOLDER_SQL("hp.reseller_id")
	};
	static const char *const one_sql[2] = {
		HOLDER_SQL("NULL::text") " AND hp.customer_id = $3 AND hp.service_id = $4",
		HOLDER_SQL("hp.reseller_id") " AND hp.customer_id = $3 AND hp.service_id = $4"
	};

	history_query(&all_plan[v], all_sql[v], &one_plan[v], one_sql[v],
				  from, to, customer, service);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *c = overage_spi_text(tup, desc, 1);
		char	   *s = overage_spi_text(tup, desc, 2);
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

static int
period_cmp(const void *a, const void *b)
{
	TimestampTz x = ((const PricePeriod *) a)->from;
	TimestampTz y = ((const PricePeriod *) b)->from;

	return (x > y) - (x < y);
}

/*
 * rating_load_prices
 *		The price book of [from, to) (the month whose first day is month):
 *		every distinct (unit price, currency) of the service prices and of
 *		the service_price periods overlapping the month, the periods per
 *		(service, market) in order, and the market of every customer (its
 *		calls of the month may still be pending, see live.c).  Three queries per computation,
 *		whatever the number of calls.  Markets are compared in upper case.
 */
void
rating_load_prices(RatingSet *set, TimestampTz from, TimestampTz to,
				   DateADT month)
{
	static SPIPlanPtr prices_plan = NULL;
	static SPIPlanPtr markets_plan = NULL;
	MemoryContext old;
	Oid			argtypes[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[2];
	Oid			dtype[1] = {DATEOID};
	Datum		dvalue[1];
	HASH_SEQ_STATUS seq;
	BookEntry  *e;

	set->schedules = book_table(set->cxt, "overage price schedules");
	set->fallbacks = book_table(set->cxt, "overage service prices");
	set->markets = book_table(set->cxt, "overage customer markets");

	values[0] = TimestampTzGetDatum(from);
	values[1] = TimestampTzGetDatum(to);
	overage_spi_exec(&prices_plan,
					 "WITH p AS ("
					 " SELECT sp.service_id, upper(sp.market) AS market, sp.effective_from,"
					 "  sp.effective_to, sp.unit_price, sp.currency"
					 " FROM overage.service_price sp"
					 " WHERE sp.effective_from < $2"
					 "  AND (sp.effective_to IS NULL OR sp.effective_to > $1)"
					 " UNION ALL"
					 " SELECT s.service_id, NULL, NULL, NULL, s.unit_price, s.currency"
					 " FROM overage.service s)"
					 " SELECT p.service_id, p.market, p.effective_from, p.effective_to,"
					 "  p.unit_price, p.currency,"
					 "  (dense_rank() OVER (ORDER BY p.unit_price, p.currency))::int4 - 1"
					 " FROM p ORDER BY 7",
					 2, argtypes, values, NULL, 0);

	old = MemoryContextSwitchTo(set->cxt);
	set->maxprices = SPI_processed + 4;
	set->prices = palloc0(sizeof(RatePrice) * set->maxprices);
	set->nprices = 0;
	MemoryContextSwitchTo(old);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *service = overage_spi_text(tup, desc, 1);
		char	   *market = overage_spi_text(tup, desc, 2);
		bool		isnull;
		int			price = DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull));

		if (price == set->nprices)
		{
			Datum		d = SPI_getbinval(tup, desc, 5, &isnull);

			old = MemoryContextSwitchTo(set->cxt);
			set->prices[price].unit_price = datumCopy(d, false, -1);
			set->prices[price].currency = overage_spi_text(tup, desc, 6);
			MemoryContextSwitchTo(old);
			set->nprices++;
		}
		if (market == NULL)
		{
			e = book_entry(set->fallbacks, set->cxt, service, "", HASH_ENTER);
			e->fallback = price;
		}
		else
		{
			PricePeriod *p;
			Datum		d;

			e = book_entry(set->schedules, set->cxt, service, market, HASH_ENTER);
			if (e->nperiods == e->maxperiods)
			{
				e->maxperiods = e->maxperiods ? e->maxperiods * 2 : 4;
				e->periods = e->periods ?
					repalloc(e->periods, sizeof(PricePeriod) * e->maxperiods) :
					MemoryContextAlloc(set->cxt, sizeof(PricePeriod) * e->maxperiods);
			}
			p = &e->periods[e->nperiods++];
			p->from = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));
			d = SPI_getbinval(tup, desc, 4, &isnull);
			p->to_open = isnull;
			p->to = isnull ? DT_NOEND : DatumGetTimestampTz(d);
			p->price = price;
		}
	}
	SPI_freetuptable(SPI_tuptable);

	hash_seq_init(&seq, set->schedules);
	while ((e = (BookEntry *) hash_seq_search(&seq)) != NULL)
		if (e->nperiods > 1)
			qsort(e->periods, e->nperiods, sizeof(PricePeriod), period_cmp);

	dvalue[0] = DateADTGetDatum(month);
	overage_spi_exec(&markets_plan,
					 "SELECT c.customer_id, upper(c.country) FROM overage.customer c"
					 " WHERE c.country IS NOT NULL AND $1 IS NOT NULL",
					 1, dtype, dvalue, NULL, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *customer = overage_spi_text(tup, desc, 1);

		e = book_entry(set->markets, set->cxt, customer, "", HASH_ENTER);
		e->market = MemoryContextStrdup(set->cxt, overage_spi_text(tup, desc, 2));
	}
	SPI_freetuptable(SPI_tuptable);
	set->prices_loaded = true;
}

/* the group's prices from the book: its customer's market's periods and
 * its service's own price (a hash lookup per group, never per call) */
void
rating_group_prices(RatingSet *set, RateGroup *g)
{
	BookEntry  *e;

	if (!set->prices_loaded)
		return;
	e = book_entry(set->fallbacks, set->cxt, g->service, "", HASH_FIND);
	g->fallback = e ? e->fallback : -1;
	g->periods = NULL;
	g->nperiods = 0;
	e = book_entry(set->markets, set->cxt, g->customer, "", HASH_FIND);
	if (e != NULL)
	{
		e = book_entry(set->schedules, set->cxt, g->service, e->market, HASH_FIND);
		if (e != NULL)
		{
			g->periods = e->periods;
			g->nperiods = e->nperiods;
		}
	}
}

/*
 * rating_price_index
 *		The index of (unit price, currency) in the set's prices, added when
 *		missing: a stored rated state's line (live.c) finds the price the
 *		book gave it.  Prices are compared as numbers, as the book's
 *		dense_rank does.
 */
int
rating_price_index(RatingSet *set, Datum unit_price, const char *currency)
{
	MemoryContext old;

	for (int i = 0; i < set->nprices; i++)
		if (strcmp(set->prices[i].currency, currency) == 0 &&
			DatumGetInt32(DirectFunctionCall2(numeric_cmp,
											  set->prices[i].unit_price,
											  unit_price)) == 0)
			return i;
	old = MemoryContextSwitchTo(set->cxt);
	if (set->nprices == set->maxprices)
	{
		set->maxprices = set->maxprices ? set->maxprices * 2 : 8;
		set->prices = set->prices ?
			repalloc(set->prices, sizeof(RatePrice) * set->maxprices) :
			palloc0(sizeof(RatePrice) * set->maxprices);
	}
	set->prices[set->nprices].unit_price = datumCopy(unit_price, false, -1);
	set->prices[set->nprices].currency = pstrdup(currency);
	MemoryContextSwitchTo(old);
	return set->nprices++;
}

/* the price in effect at t; t must not go backwards between calls */
static int
price_at(RateGroup *g, TimestampTz t)
{
	while (g->pricepos < g->nperiods && !g->periods[g->pricepos].to_open &&
		   g->periods[g->pricepos].to <= t)
		g->pricepos++;
	if (g->pricepos < g->nperiods && g->periods[g->pricepos].from <= t)
		return g->periods[g->pricepos].price;
	return g->fallback;
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
	g->pricepos = 0;
	g->pool = 0;
	g->used = 0;
	g->included = 0;
	g->overage = 0;
	g->unassigned = 0;
	g->ntotals = 0;
	g->calls = 0;
	g->last_at = DT_NOBEGIN;
	g->reached = 0;
	g->ncrossings = 0;
	g->nspends = 0;
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

/*
 * add seconds to the total of a line of the group: its key is (holder
 * subscription, reseller, price); span NULL: unassigned, at that price
 */
static int
add_total(RateGroup *g, HolderSpan *span, int price, int64 seconds)
{
	for (int i = 0; i < g->ntotals; i++)
		if (g->totals[i].price == price &&
			(span == NULL ? g->totals[i].partner == NULL :
			 (g->totals[i].partner != NULL &&
			  memcmp(&g->totals[i].subscription, &span->subscription,
					 sizeof(pg_uuid_t)) == 0 &&
			  reseller_eq(g->totals[i].reseller, span->reseller))))
		{
			g->totals[i].seconds += seconds;
			return i;
		}
	if (g->ntotals == g->maxtotals)
	{
		MemoryContext cxt = g->cxt;

		g->maxtotals = g->maxtotals ? g->maxtotals * 2 : 2;
		g->totals = g->totals ?
			repalloc(g->totals, sizeof(HolderTotal) * g->maxtotals) :
			MemoryContextAlloc(cxt, sizeof(HolderTotal) * g->maxtotals);
	}
	memset(&g->totals[g->ntotals], 0, sizeof(HolderTotal));
	if (span != NULL)
	{
		g->totals[g->ntotals].partner = span->partner;
		g->totals[g->ntotals].subscription = span->subscription;
		g->totals[g->ntotals].reseller = span->reseller;
	}
	g->totals[g->ntotals].price = price;
	g->totals[g->ntotals].seconds = seconds;
	return g->ntotals++;
}

/* the holder span containing t, NULL when nobody holds it (None or never
 * assigned); t must not go backwards between calls */
static HolderSpan *
span_at(RateGroup *g, TimestampTz t)
{
	while (g->spanpos < g->nspans && !g->spans[g->spanpos].to_open &&
		   g->spans[g->spanpos].to <= t)
		g->spanpos++;
	if (g->spanpos < g->nspans && g->spans[g->spanpos].from <= t &&
		g->spans[g->spanpos].partner != NULL)
		return &g->spans[g->spanpos];
	return NULL;
}

/*
 * a watched group's pool thresholds (SPEC "Budgets and alerts"): the
 * included seconds reach 80 % or 100 % of the pool at the call's instant
 */
static void
watch_pool(RateGroup *g, TimestampTz t, int64 pool)
{
	static const int percents[2] = {80, 100};

	if (pool <= 0)
		return;
	for (int i = 0; i < 2; i++)
	{
		int			bit = 1 << i;
		PoolCrossing *c;
		HolderSpan *span;

		if ((g->reached & bit) || g->included * 100 < (int64) percents[i] * pool)
			continue;
		g->reached |= bit;
		if (g->crossings == NULL)
			g->crossings = MemoryContextAlloc(g->cxt, sizeof(PoolCrossing) * 2);
		span = span_at(g, t);
		c = &g->crossings[g->ncrossings++];
		c->percent = percents[i];
		c->at = t;
		c->included = g->included;
		c->pool = pool;
		c->partner = span ? span->partner : NULL;
	}
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
	int			price;
	HolderSpan *span;

	if (included < 0)
		included = 0;
	if (included > duration)
		included = duration;
	over = duration - included;
	g->calls++;
	g->last_at = t;
	g->used += duration;
	g->included += included;
	if (g->watch && g->reached != (LIVE_REACHED_80 | LIVE_REACHED_100))
		watch_pool(g, t, pool);
	if (over == 0)
		return;
	g->overage += over;
	price = price_at(g, t);

	span = span_at(g, t);
	if (span != NULL)
	{
		int			total = add_total(g, span, price, over);

		if (g->spend)
		{
			if (g->nspends == g->maxspends)
			{
				g->maxspends = g->maxspends ? g->maxspends * 2 : 16;
				g->spends = g->spends ?
					repalloc(g->spends, sizeof(SpendEvent) * g->maxspends) :
					MemoryContextAlloc(g->cxt, sizeof(SpendEvent) * g->maxspends);
			}
			g->spends[g->nspends].at = t;
			g->spends[g->nspends].total = total;
			g->spends[g->nspends].seconds = over;
			g->nspends++;
		}
	}
	else
	{
		g->unassigned += over;
		add_total(g, NULL, price, over);
	}
}
