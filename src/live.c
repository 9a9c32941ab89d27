/*-------------------------------------------------------------------------
 *
 * live.c
 *	  Live rating (SPEC 1.2 "Live rating"): the rated state of every
 *	  (customer, service, month), brought up to date by rate_pending() and
 *	  read, with the calls not rated yet, by close_month, preview_month
 *	  (close.c) and pool_status (pool_status.c).
 *
 * The rated state of a group (overage.rated_group and its rated_line
 * rows) is what the attribution engine (rating.c) holds after walking
 * every call of the group that starts before rated_to: included_before,
 * the seconds used, the overage per (holder subscription, reseller,
 * price), the pool thresholds reached.  Walking is forward only, so the
 * engine can go on from a stored state exactly as if it had walked those
 * calls itself -- provided nothing before rated_to has changed since:
 *
 *	  usage_pending	the calls not rated yet, one row per ingest statement
 *					and month (the usage trigger, usage.c): per group the
 *					earliest start (of removed calls too);
 *	  rating_stale	dated changes of licences, holders, prices, markets
 *					(trigger rating_mark_stale below): per customer and
 *					service (NULL: all) the instant from which they act.
 *
 * A group whose state has no pending call or change before rated_to is
 * current: with no pending call it is DONE (nothing is read), with only
 * later ones it RESUMEs from the state over the calls from rated_to on.
 * Otherwise -- a late call, a dated change inside the rated stretch, or
 * no state at all -- it is rated in FULL from the start of its month.
 * Every reader applies the same rule to what its snapshot sees, and a
 * pending row is deleted in the same transaction that writes the state
 * covering it, so the figures are the same whether and whenever
 * rate_pending ran.
 *
 * Why a pending row cannot be lost: rate_pending deletes the pending
 * rows (DELETE ... RETURNING) before it reads the calls, each statement
 * with a fresh snapshot, so the calls of every row it deleted are among
 * the calls it reads (they committed together).  Calls committed after
 * the delete leave their pending row behind; if they start before the
 * new rated_to, that row makes the group stale, which is only extra work.
 *
 * Writers never wait for each other: ingest inserts pending rows, never
 * updates a shared one; rate_pending (and close_month's rating of its
 * month) take turns on a transaction-level advisory lock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/itup.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/tupmacs.h"
#include "access/visibilitymap.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "storage/bufmgr.h"
#include "tcop/dest.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"

#include "overage.h"
#include "guard.h"
#include "month.h"
#include "rating.h"
#include "citus.h"
#include "restore.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(rate_pending);

static bool overage_table_exists(const char *name);
PG_FUNCTION_INFO_V1(rating_mark_stale);

/* the advisory lock rate_pending and close_month's rating take turns on */
#define LIVE_LOCK_SQL "SELECT pg_catalog.pg_advisory_xact_lock(1870030194, 1)"

/*
 * live_rating_installed
 *		Does the extension's SQL have the live-rating tables (1.2 on)?  The
 *		library also serves a database still at 1.0 or 1.1.  On a Citus
 *		cluster (overage.distribute()) live rating is off: usage_pending
 *		and rating_stale are not keyed by customer, so the shards' triggers
 *		could not write them; the triggers keep usage_month as 1.1 did and
 *		every reading rates the month from its calls (README "Scaling out").
 */
bool
live_rating_installed(void)
{
	return overage_table_exists("usage_pending") && !overage_is_distributed();
}

/* has the extension's schema a table of that name (the SQL's version)? */
static bool
overage_table_exists(const char *name)
{
	Oid			nsp = get_namespace_oid("overage", true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid(name, nsp));
}

/* the instant one microsecond after t */
TimestampTz
live_next_us(TimestampTz t)
{
	return t + 1;
}

/* a dated change: the groups it matches are stale from `from` */
struct StaleMark
{
	char	   *customer;		/* NULL: every customer */
	char	   *service;		/* NULL: every service */
	TimestampTz from;
};

static TimestampTz
spi_time(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;

	return DatumGetTimestampTz(SPI_getbinval(tup, desc, col, &isnull));
}

static int64
spi_int8(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/* run a cached plan with $1 = month and, for one group, $2, $3 */
static void
month_query(SPIPlanPtr *all_plan, const char *all_sql,
			SPIPlanPtr *one_plan, const char *one_sql,
			DateADT month, const char *customer, const char *service,
			bool write)
{
	Oid			argtypes[3] = {DATEOID, TEXTOID, TEXTOID};
	Datum		values[3];

	values[0] = DateADTGetDatum(month);
	if (customer == NULL)
	{
		if (write)
			overage_history_exec(all_plan, all_sql, 1, argtypes, values, NULL);
		else
			overage_spi_exec(all_plan, all_sql, 1, argtypes, values, NULL, 0);
	}
	else
	{
		values[1] = CStringGetTextDatum(customer);
		values[2] = CStringGetTextDatum(service);
		overage_spi_exec(one_plan, one_sql, 3, argtypes, values, NULL, 0);
	}
}

/* the stored rated states of the month (or of one group) */
static void
load_rated(RatingSet *set, DateADT month, const char *customer,
		   const char *service)
{
	static SPIPlanPtr all_groups = NULL;
	static SPIPlanPtr one_group = NULL;
	static SPIPlanPtr all_lines = NULL;
	static SPIPlanPtr one_line = NULL;
	RateGroup  *g = NULL;

#define RATED_SQL \
	"SELECT r.customer_id, r.service_id, r.rated_to, r.calls, r.used_s," \
	" r.included_s, r.overage_s, r.unassigned_s, r.reached, r.rated_at" \
	" FROM overage.rated_group r WHERE r.month = $1"
	month_query(&all_groups, RATED_SQL,
				&one_group, RATED_SQL " AND r.customer_id = $2 AND r.service_id = $3",
				month, customer, service, false);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *c = overage_spi_text(tup, desc, 1);
		char	   *s = overage_spi_text(tup, desc, 2);

		g = rating_group(set, c, s);
		g->rated = true;
		g->mode = LIVE_FULL;	/* known; the plan decides */
		g->rated_to = spi_time(tup, desc, 3);
		g->r_calls = spi_int8(tup, desc, 4);
		g->r_used = spi_int8(tup, desc, 5);
		g->r_included = spi_int8(tup, desc, 6);
		g->r_overage = spi_int8(tup, desc, 7);
		g->r_unassigned = spi_int8(tup, desc, 8);
		g->r_reached = DatumGetInt16(SPI_getbinval(tup, desc, 9, &isnull));
		g->r_rated_at = spi_time(tup, desc, 10);
		pfree(c);
		pfree(s);
	}
	SPI_freetuptable(SPI_tuptable);

#define LINES_SQL \
	"SELECT l.customer_id, l.service_id, l.partner_id, l.subscription_id," \
	" l.reseller_id, l.unit_price, l.currency, l.overage_s" \
	" FROM overage.rated_line l WHERE l.month = $1"
	month_query(&all_lines, LINES_SQL " ORDER BY l.customer_id, l.service_id",
				&one_line, LINES_SQL " AND l.customer_id = $2 AND l.service_id = $3",
				month, customer, service, false);
	g = NULL;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *c = overage_spi_text(tup, desc, 1);
		char	   *s = overage_spi_text(tup, desc, 2);
		char	   *partner = overage_spi_text(tup, desc, 3);
		char	   *reseller = overage_spi_text(tup, desc, 5);
		char	   *currency = overage_spi_text(tup, desc, 7);
		HolderTotal *t;
		Datum		d;

		if (g == NULL || strcmp(g->customer, c) != 0 || strcmp(g->service, s) != 0)
			g = rating_group(set, c, s);
		if (g->r_totals == NULL)
			g->r_totals = MemoryContextAllocZero(g->cxt, sizeof(HolderTotal) * 4);
		else if (g->r_ntotals % 4 == 0)
			g->r_totals = repalloc(g->r_totals, sizeof(HolderTotal) * (g->r_ntotals + 4));
		t = &g->r_totals[g->r_ntotals++];
		memset(t, 0, sizeof(HolderTotal));
		if (partner != NULL)
		{
			t->partner = MemoryContextStrdup(g->cxt, partner);
			d = SPI_getbinval(tup, desc, 4, &isnull);
			memcpy(&t->subscription, DatumGetUUIDP(d), sizeof(pg_uuid_t));
			if (reseller != NULL)
				t->reseller = MemoryContextStrdup(g->cxt, reseller);
		}
		t->price = rating_price_index(set, SPI_getbinval(tup, desc, 6, &isnull),
									  currency);
		t->seconds = spi_int8(tup, desc, 8);
	}
	SPI_freetuptable(SPI_tuptable);
}

/* the groups of the month with calls already in usage_month */
static void
load_known(RatingSet *set, DateADT month)
{
	static SPIPlanPtr plan = NULL;

	month_query(&plan, "SELECT f.customer_id, f.service_id FROM overage.usage_month f"
				" WHERE f.month = $1", NULL, NULL, month, NULL, NULL, false);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		char	   *c = overage_spi_text(tup, SPI_tuptable->tupdesc, 1);
		char	   *s = overage_spi_text(tup, SPI_tuptable->tupdesc, 2);
		RateGroup  *g = rating_group(set, c, s);

		if (g->mode == LIVE_NONE)
			g->mode = LIVE_FULL;
		pfree(c);
		pfree(s);
	}
	SPI_freetuptable(SPI_tuptable);
}

/*
 * load_pending
 *		The calls not rated yet of the month (or of one group): per group
 *		the earliest start.  consume: delete the pending rows and add their
 *		figures to usage_month, in one statement (rate_pending and
 *		close_month, under the advisory lock).
 */
static void
load_pending(RatingSet *set, DateADT month, const char *customer,
			 const char *service, bool consume)
{
	static SPIPlanPtr consume_plan[2] = {NULL, NULL};
	static SPIPlanPtr all_plan = NULL;
	static SPIPlanPtr one_plan = NULL;
	static SPIPlanPtr figures_plan = NULL;

	/*
	 * [0]: the month has figures already, which the pending calls add to
	 * (ON CONFLICT DO UPDATE); [1]: it has none, so plain inserts, without
	 * ON CONFLICT's speculative insertion of every group: a fresh month's
	 * first consumption.  Only a consumption writes figures, under the
	 * advisory lock, with a snapshot taken after it (as write_states).
	 */
#define CONSUME_SQL(UPSERT) \
	"WITH d AS (DELETE FROM overage.usage_pending p WHERE p.month = $1" \
	"  RETURNING p.*)," \
	" a AS (SELECT u.c, u.s, min(u.f) AS f, max(u.l) AS l," \
	"  sum(u.n)::int8 AS n, sum(u.secs)::int8 AS secs" \
	"  FROM d, unnest(d.customer_id, d.service_id, d.first_at, d.last_at," \
	"   d.calls, d.seconds) AS u(c, s, f, l, n, secs)" \
	"  GROUP BY u.c, u.s)," \
	" f AS (INSERT INTO overage.usage_month AS f" \
	"  (customer_id, service_id, month, calls, seconds, first_at, last_at)" \
	"  SELECT a.c, a.s, $1, a.n, a.secs, a.f, a.l FROM a ORDER BY a.c, a.s" \
	UPSERT ")" \
	" SELECT a.c, a.s, a.f FROM a"
	static const char *const consume_sql[2] = {
		CONSUME_SQL("  ON CONFLICT (month, customer_id, service_id) DO UPDATE"
					"  SET calls = f.calls + excluded.calls,"
					"   seconds = f.seconds + excluded.seconds,"
					"   first_at = least(f.first_at, excluded.first_at),"
					"   last_at = greatest(f.last_at, excluded.last_at)"),
		CONSUME_SQL("")
	};

	if (consume)
	{
		Oid			argtypes[1] = {DATEOID};
		Datum		values[1] = {DateADTGetDatum(month)};
		bool		isnull;
		int			fresh;

		overage_spi_exec(&figures_plan,
						 "SELECT NOT EXISTS (SELECT FROM overage.usage_month f"
						 " WHERE f.month = $1)",
						 1, argtypes, values, NULL, 0);
		fresh = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull)) ? 1 : 0;
		SPI_freetuptable(SPI_tuptable);
		month_query(&consume_plan[fresh], consume_sql[fresh],
					NULL, NULL, month, NULL, NULL, true);
	}
	else
		month_query(&all_plan,
					"SELECT u.c, u.s, min(u.f) FROM overage.usage_pending p,"
					" unnest(p.customer_id, p.service_id, p.first_at) AS u(c, s, f)"
					" WHERE p.month = $1 GROUP BY u.c, u.s",
					&one_plan,
					"SELECT u.c, u.s, min(u.f) FROM overage.usage_pending p,"
					" unnest(p.customer_id, p.service_id, p.first_at) AS u(c, s, f)"
					" WHERE p.month = $1 AND u.c = $2 AND u.s = $3 GROUP BY u.c, u.s",
					month, customer, service, false);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *c = overage_spi_text(tup, desc, 1);
		char	   *s = overage_spi_text(tup, desc, 2);
		RateGroup  *g = rating_group(set, c, s);
		TimestampTz f = spi_time(tup, desc, 3);

		if (g->mode == LIVE_NONE)
			g->mode = LIVE_FULL;
		g->has_pending = true;
		if (f < g->pending_from)
			g->pending_from = f;
		pfree(c);
		pfree(s);
	}
	SPI_freetuptable(SPI_tuptable);
}

/*
 * load_marks
 *		The dated changes not taken in yet (or those matching one group);
 *		consume: delete them (rate_pending of every open month).
 */
static StaleMark *
load_marks(const char *customer, const char *service, bool consume, int *nmarks)
{
	static SPIPlanPtr consume_plan = NULL;
	static SPIPlanPtr all_plan = NULL;
	static SPIPlanPtr one_plan = NULL;
	StaleMark  *marks;

	if (consume)
		overage_history_exec(&consume_plan,
							 "DELETE FROM overage.rating_stale x"
							 " RETURNING x.customer_id, x.service_id, x.from_at",
							 0, NULL, NULL, NULL);
	else if (customer == NULL)
		overage_spi_exec(&all_plan,
						 "SELECT x.customer_id, x.service_id, min(x.from_at)"
						 " FROM overage.rating_stale x GROUP BY 1, 2",
						 0, NULL, NULL, NULL, 0);
	else
	{
		Oid			argtypes[2] = {TEXTOID, TEXTOID};
		Datum		values[2];

		values[0] = CStringGetTextDatum(customer);
		values[1] = CStringGetTextDatum(service);
		overage_spi_exec(&one_plan,
						 "SELECT x.customer_id, x.service_id, min(x.from_at)"
						 " FROM overage.rating_stale x"
						 " WHERE (x.customer_id IS NULL OR x.customer_id = $1)"
						 "  AND (x.service_id IS NULL OR x.service_id = $2)"
						 " GROUP BY 1, 2",
						 2, argtypes, values, NULL, 0);
	}
	marks = palloc(sizeof(StaleMark) * (SPI_processed + 1));
	*nmarks = (int) SPI_processed;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		marks[i].customer = overage_spi_text(tup, desc, 1);
		marks[i].service = overage_spi_text(tup, desc, 2);
		marks[i].from = spi_time(tup, desc, 3);
	}
	SPI_freetuptable(SPI_tuptable);
	return marks;
}

/* customer-wide marks sorted by customer, for bsearch */
static int
mark_customer_cmp(const void *a, const void *b)
{
	return strcmp(((const StaleMark *) a)->customer, ((const StaleMark *) b)->customer);
}

/*
 * make the groups the marks match stale from their instants: a mark of
 * one (customer, service) is a hash lookup; the marks of every service of
 * a customer (a licence, a holder, the customer's market) are sorted by
 * customer and looked up per group; the marks of every customer (a price,
 * a SKU's minutes, a service) are few and go over every group.  A month's
 * marks can be tens of thousands (every dated change of the month), its
 * groups as many: nothing here is groups x marks.
 */
static void
apply_marks(RatingSet *set, StaleMark *marks, int nmarks)
{
	HASH_SEQ_STATUS seq;
	RateGroup  *g;
	StaleMark  *bycust = NULL;
	StaleMark  *global = NULL;
	int			ncust = 0;
	int			nglobal = 0;

	for (int i = 0; i < nmarks; i++)
	{
		struct
		{
			char	   *customer;
			char	   *service;
		}			key;

		if (marks[i].customer == NULL)
		{
			if (global == NULL)
				global = palloc(sizeof(StaleMark) * nmarks);
			global[nglobal++] = marks[i];
			continue;
		}
		if (marks[i].service == NULL)
		{
			if (bycust == NULL)
				bycust = palloc(sizeof(StaleMark) * nmarks);
			bycust[ncust++] = marks[i];
			continue;
		}
		key.customer = marks[i].customer;
		key.service = marks[i].service;
		g = (RateGroup *) hash_search(set->groups, &key, HASH_FIND, NULL);
		if (g != NULL && marks[i].from < g->stale_from)
			g->stale_from = marks[i].from;
	}
	if (ncust == 0 && nglobal == 0)
		return;

	/* one customer-wide mark per customer: the earliest */
	if (ncust > 1)
	{
		int			n = 1;

		qsort(bycust, ncust, sizeof(StaleMark), mark_customer_cmp);
		for (int i = 1; i < ncust; i++)
		{
			if (strcmp(bycust[i].customer, bycust[n - 1].customer) == 0)
			{
				if (bycust[i].from < bycust[n - 1].from)
					bycust[n - 1].from = bycust[i].from;
			}
			else
				bycust[n++] = bycust[i];
		}
		ncust = n;
	}

	hash_seq_init(&seq, set->groups);
	while ((g = (RateGroup *) hash_seq_search(&seq)) != NULL)
	{
		if (ncust > 0)
		{
			StaleMark	key;
			StaleMark  *m;

			key.customer = g->customer;
			m = bsearch(&key, bycust, ncust, sizeof(StaleMark), mark_customer_cmp);
			if (m != NULL && m->from < g->stale_from)
				g->stale_from = m->from;
		}
		for (int i = 0; i < nglobal; i++)
			if ((global[i].service == NULL || strcmp(global[i].service, g->service) == 0) &&
				global[i].from < g->stale_from)
				g->stale_from = global[i].from;
	}
}

static int
budget_cmp(const void *a, const void *b)
{
	const LiveBudget *x = (const LiveBudget *) a;
	const LiveBudget *y = (const LiveBudget *) b;
	int			c = strcmp(x->customer, y->customer);

	return c != 0 ? c : strcmp(x->partner, y->partner);
}

/* the first budget of the customer in run's sorted budgets, or -1 */
static int
find_budget(LiveRun *run, const char *customer)
{
	int			lo = 0;
	int			hi = run->nbudgets;

	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (strcmp(run->budgets[mid].customer, customer) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (lo < run->nbudgets && strcmp(run->budgets[lo].customer, customer) == 0) ? lo : -1;
}

/*
 * watch_budgets
 *		The groups of customers with a budget record the overage each call
 *		bills (rating.c).  A budget set after a group was rated makes the
 *		group rated again from the start, so that the call that crossed a
 *		threshold is found even when it was rated before the budget existed.
 */
static void
watch_budgets(LiveRun *run)
{
	HASH_SEQ_STATUS seq;
	RateGroup  *g;

	if (run->nbudgets == 0)
		return;
	hash_seq_init(&seq, run->set->groups);
	while ((g = (RateGroup *) hash_seq_search(&seq)) != NULL)
	{
		int			b = find_budget(run, g->customer);

		if (b < 0)
			continue;
		g->spend = true;
		for (; b < run->nbudgets && strcmp(run->budgets[b].customer, g->customer) == 0; b++)
			if (g->rated && g->r_rated_at < run->budgets[b].set_at)
				g->stale_from = DT_NOBEGIN;
	}
}

/* the walking state of a group set to its stored rated state */
void
live_restore(RateGroup *g)
{
	rating_begin(g);
	g->calls = g->r_calls;
	g->used = g->r_used;
	g->included = g->r_included;
	g->overage = g->r_overage;
	g->unassigned = g->r_unassigned;
	g->reached = g->r_reached;
	if (g->r_ntotals > g->maxtotals)
	{
		g->maxtotals = g->r_ntotals;
		g->totals = g->totals ?
			repalloc(g->totals, sizeof(HolderTotal) * g->maxtotals) :
			MemoryContextAlloc(g->cxt, sizeof(HolderTotal) * g->maxtotals);
	}
	if (g->r_ntotals > 0)
		memcpy(g->totals, g->r_totals, sizeof(HolderTotal) * g->r_ntotals);
	g->ntotals = g->r_ntotals;
}

/* the mode of a group for the calls before `at` (DT_NOEND: all) */
static void
plan_group(RateGroup *g, TimestampTz at)
{
	if (g->mode == LIVE_NONE)
		return;
	if (!g->rated || g->pending_from < g->rated_to ||
		g->stale_from < g->rated_to || g->rated_to > at)
		g->mode = LIVE_FULL;
	else if (g->has_pending)
		g->mode = LIVE_RESUME;
	else
		g->mode = LIVE_DONE;
}

/*
 * The calls are streamed from the executor into the engine (no SPI tuple
 * table): columns customer_id, service_id, started_at, duration_s, in
 * order of (customer, service, started_at, usage_id).
 */
typedef struct LiveReceiver
{
	DestReceiver pub;
	LiveRun    *run;
	RateGroup  *group;
	int			clen;
	int			slen;
} LiveReceiver;

static inline bool
text_eq(Datum d, const char *s, int len)
{
	text	   *t = (text *) DatumGetPointer(d);

	return (int) VARSIZE_ANY_EXHDR(t) == len && memcmp(VARDATA_ANY(t), s, len) == 0;
}

/* start a group's walk as its mode says */
static void
start_group(LiveRun *run, RateGroup *g)
{
	if (g->mode == LIVE_NONE)
		g->mode = LIVE_FULL;	/* calls of a group nobody knew of */
	g->watch = run->watch;
	if (g->mode == LIVE_FULL)
		rating_begin(g);
	else
		live_restore(g);
	if (run->set->prices_loaded)
		rating_group_prices(run->set, g);
}

/* one call (customer c, service s as text datums) into the engine */
static inline void
live_call(LiveReceiver *r, Datum c, Datum s, TimestampTz t, int32 duration)
{
	RateGroup  *g = r->group;

	if (g == NULL || !text_eq(c, g->customer, r->clen) ||
		!text_eq(s, g->service, r->slen))
	{
		char	   *cs = TextDatumGetCString(c);
		char	   *ss = TextDatumGetCString(s);

		g = rating_group(r->run->set, cs, ss);
		if (g->mode == LIVE_NONE)
			start_group(r->run, g);
		pfree(cs);
		pfree(ss);
		r->group = g;
		r->clen = strlen(g->customer);
		r->slen = strlen(g->service);
	}
	if (g->mode == LIVE_DONE)
		return;
	if (g->mode == LIVE_RESUME && t < g->rated_to)
		return;
	rating_call(g, t, duration);
	r->run->walked++;
}

static bool
live_receive(TupleTableSlot *slot, DestReceiver *self)
{
	slot_getallattrs(slot);
	live_call((LiveReceiver *) self, slot->tts_values[0], slot->tts_values[1],
			  DatumGetTimestampTz(slot->tts_values[2]),
			  DatumGetInt32(slot->tts_values[3]));
	return true;
}

static void
live_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
live_shutdown(DestReceiver *self)
{
}

static void
live_destroy(DestReceiver *self)
{
}

/* stream the calls of plan into the receiver */
static void
stream_calls(LiveRun *run, SPIPlanPtr plan, int nparams, Datum *values,
			 Oid *types)
{
	LiveReceiver receiver;
	ParamListInfo params = makeParamList(nparams);
	SPIExecuteOptions options;
	int			rc;

	memset(&receiver, 0, sizeof(receiver));
	receiver.pub.receiveSlot = live_receive;
	receiver.pub.rStartup = live_startup;
	receiver.pub.rShutdown = live_shutdown;
	receiver.pub.rDestroy = live_destroy;
	receiver.pub.mydest = DestNone;
	receiver.run = run;

	for (int i = 0; i < nparams; i++)
	{
		params->params[i].value = values[i];
		params->params[i].isnull = false;
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = types[i];
	}
	memset(&options, 0, sizeof(options));
	options.params = params;
	/* pinned: the active snapshot, the one the states and pending rows
	 * were read with; else a fresh one */
	options.read_only = overage_spi_pinned();
	options.dest = (DestReceiver *) &receiver;
	/* SPI reports SPI_OK_UTILITY for a SELECT whose rows go to a DestNone receiver */
	rc = SPI_execute_plan_extended(plan, &options);
	if (rc < 0)
		elog(ERROR, "live rating: calls query failed: %s", SPI_result_code_string(rc));
}

/*
 * walk_month_index
 *		Every call of the month in rating order, read straight from the
 *		index usage_rating (month, customer, service, started_at, usage_id
 *		INCLUDE duration_s) as an index-only scan does, without the
 *		executor.  What it saves at 10M calls is mostly the visibility map:
 *		in index order the calls' heap blocks come at random, and the
 *		executor's scan keeps one map page pinned, so it re-reads a map
 *		page (a buffer lookup and pin) for most calls; here every map page
 *		met stays pinned until the end.  Returns false, having read
 *		nothing, where the executor must do it: no pinned snapshot (every
 *		reader pins one: live_read, rate_pending), a Citus table (the calls
 *		are on the workers) or a relation map (a worker's shard), a
 *		serializable transaction (predicate locks), or an index not of the
 *		expected shape or not valid.
 */
#define WALK_VM_SLOTS 64
/* heap blocks per visibility map page (visibilitymap.c's
 * HEAPBLOCKS_PER_PAGE); only picks the slot, a wrong value costs re-reads */
#define WALK_HEAPBLOCKS_PER_VM_PAGE \
	((BLCKSZ - MAXALIGN(SizeOfPageHeaderData)) * (BITS_PER_BYTE / BITS_PER_HEAPBLOCK))

static bool
walk_month_index(LiveRun *run)
{
	Oid			nsp = get_namespace_oid("overage", true);
	Oid			relid;
	Oid			idxid;
	Relation	heap;
	Relation	index;
	TupleDesc	idesc;
	IndexScanDesc scan;
	ScanKeyData key;
	Snapshot	snap;
	TupleTableSlot *hslot;
	Buffer		vmbuf[WALK_VM_SLOTS];
	LiveReceiver r;
	ItemPointer tid;
	long		n = 0;

	if (!overage_spi_pinned() || overage_spi_mapped() || IsolationIsSerializable() ||
		!OidIsValid(nsp) || overage_is_distributed())
		return false;
	relid = get_relname_relid("usage", nsp);
	idxid = get_relname_relid("usage_rating", nsp);
	if (!OidIsValid(relid) || !OidIsValid(idxid))
		return false;
	heap = table_open(relid, AccessShareLock);
	index = index_open(idxid, AccessShareLock);
	idesc = RelationGetDescr(index);
	if (index->rd_index->indrelid != relid || !index->rd_index->indisvalid ||
		index->rd_rel->relam != BTREE_AM_OID ||
		IndexRelationGetNumberOfAttributes(index) != 6 ||
		IndexRelationGetNumberOfKeyAttributes(index) != 5 ||
		TupleDescAttr(idesc, 0)->atttypid != TIMESTAMPOID ||
		TupleDescAttr(idesc, 1)->atttypid != TEXTOID ||
		TupleDescAttr(idesc, 2)->atttypid != TEXTOID ||
		TupleDescAttr(idesc, 3)->atttypid != TIMESTAMPTZOID ||
		TupleDescAttr(idesc, 4)->atttypid != INT8OID ||
		TupleDescAttr(idesc, 5)->atttypid != INT4OID)
	{
		index_close(index, NoLock);
		table_close(heap, NoLock);
		return false;
	}

	/* the pinned snapshot, the one stream_calls reads with */
	snap = GetActiveSnapshot();

	memset(&r, 0, sizeof(r));
	r.run = run;
	for (int i = 0; i < WALK_VM_SLOTS; i++)
		vmbuf[i] = InvalidBuffer;
	hslot = table_slot_create(heap, NULL);
#if PG_VERSION_NUM >= 180000
	scan = index_beginscan(heap, index, snap, NULL, 1, 0);
#else
	scan = index_beginscan(heap, index, snap, 1, 0);
#endif
	scan->xs_want_itup = true;
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TIMESTAMP_EQ,
				TimestampGetDatum((Timestamp) run->mstart));
	index_rescan(scan, &key, 1, NULL, 0);

	while ((tid = index_getnext_tid(scan, ForwardScanDirection)) != NULL)
	{
		BlockNumber blk = ItemPointerGetBlockNumber(tid);
		Datum		values[6];
		bool		isnull[6];

		if ((++n & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		/* as nodeIndexonlyscan.c: the heap only when the page is not all visible */
		if (!VM_ALL_VISIBLE(heap, blk,
							&vmbuf[(blk / WALK_HEAPBLOCKS_PER_VM_PAGE) % WALK_VM_SLOTS]))
		{
			bool		visible = index_fetch_heap(scan, hslot);

			ExecClearTuple(hslot);
			if (scan->xs_heap_continue)
				elog(ERROR, "non-MVCC snapshots are not supported in index-only scans");
			if (!visible)
				continue;
		}
		Assert(scan->xs_itup != NULL);
		if (!IndexTupleHasNulls(scan->xs_itup))
		{
			/* the columns' layout is fixed by their types (checked above) */
			char	   *tp = (char *) scan->xs_itup +
				IndexInfoFindDataOffset(scan->xs_itup->t_info);
			uintptr_t	off = sizeof(Timestamp);	/* past the month */
			Datum		c;
			Datum		s;
			TimestampTz t;
			int32		d;

			off = att_align_pointer(off, TYPALIGN_INT, -1, tp + off);
			c = PointerGetDatum(tp + off);
			off = att_addlength_pointer(off, -1, tp + off);
			off = att_align_pointer(off, TYPALIGN_INT, -1, tp + off);
			s = PointerGetDatum(tp + off);
			off = att_addlength_pointer(off, -1, tp + off);
			off = att_align_nominal(off, TYPALIGN_DOUBLE);
			memcpy(&t, tp + off, sizeof(t));
			off = att_align_nominal(off + sizeof(t), TYPALIGN_DOUBLE) + sizeof(int64);
			off = att_align_nominal(off, TYPALIGN_INT);
			memcpy(&d, tp + off, sizeof(d));
			live_call(&r, c, s, t, d);
			continue;
		}
		index_deform_tuple(scan->xs_itup, scan->xs_itupdesc, values, isnull);
		live_call(&r, values[1], values[2], DatumGetTimestampTz(values[3]),
				  DatumGetInt32(values[5]));
	}

	index_endscan(scan);
	ExecDropSingleTupleTableSlot(hslot);
	for (int i = 0; i < WALK_VM_SLOTS; i++)
		if (BufferIsValid(vmbuf[i]))
			ReleaseBuffer(vmbuf[i]);
	index_close(index, NoLock);
	table_close(heap, NoLock);
	return true;
}

/* every call of the month, in rating order ($1: the month start as a
 * timestamp without time zone, as in the index) */
static void
scan_month(LiveRun *run)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[1] = {TIMESTAMPOID};
	Datum		values[1];
	SPIPlanPtr	p;

	if (walk_month_index(run))
		return;
	p = overage_spi_prepare(&plan,
			  "SELECT u.customer_id, u.service_id, u.started_at, u.duration_s"
			  " FROM overage.usage u"
			  " WHERE date_trunc('month', u.started_at AT TIME ZONE 'UTC') = $1"
			  " ORDER BY date_trunc('month', u.started_at AT TIME ZONE 'UTC'),"
			  " u.customer_id, u.service_id, u.started_at, u.usage_id",
			  1, types);
	values[0] = TimestampGetDatum((Timestamp) run->mstart);
	stream_calls(run, p, 1, values, types);
}

/* the calls of one group starting in [from, to) */
static void
scan_group(LiveRun *run, RateGroup *g, TimestampTz from, TimestampTz to)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[5] = {TIMESTAMPOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[5];
	SPIPlanPtr	p;

	p = overage_spi_prepare(&plan,
			  "SELECT u.customer_id, u.service_id, u.started_at, u.duration_s"
			  " FROM overage.usage u"
			  " WHERE date_trunc('month', u.started_at AT TIME ZONE 'UTC') = $1"
			  " AND u.customer_id = $2 AND u.service_id = $3"
			  " AND u.started_at >= $4 AND u.started_at < $5"
			  " ORDER BY u.started_at, u.usage_id",
			  5, types);
	values[0] = TimestampGetDatum((Timestamp) run->mstart);
	values[1] = CStringGetTextDatum(g->customer);
	values[2] = CStringGetTextDatum(g->service);
	values[3] = TimestampTzGetDatum(from);
	values[4] = TimestampTzGetDatum(to);
	stream_calls(run, p, 5, values, types);
}

/*
 * live_run
 *		Bring the groups of run's month (or its one group, as of run->at)
 *		to the figures of the data the statement sees: the stored rated
 *		states, the pending calls and the dated changes decide each group's
 *		mode (above); the groups that need it are walked.  The caller has
 *		connected SPI and, for the month's lines, loaded the price book;
 *		run->marks are the dated changes (loaded here when run->load_marks).
 */
void
live_run(LiveRun *run)
{
	RatingSet  *set = run->set;
	HASH_SEQ_STATUS seq;
	RateGroup  *g;
	long		ngroups = 0;
	long		nscan = 0;
	long		nfull = 0;
	bool		live = live_rating_installed();

	if (live && !run->fresh)
		load_rated(set, run->month, run->customer, run->service);
	if (live && !run->consume && hash_get_num_entries(set->groups) == 0)
	{
		/*
		 * A reading of a month (or group) with no rated state, as always
		 * without the worker: every group is rated from the start, so what
		 * is pending or stale does not matter.  One pass over the month,
		 * finding its groups, as before 1.2.
		 */
		rating_load_pools(set, run->mstart, run->mend, run->customer, run->service);
		rating_load_holders(set, run->mstart, run->mend, run->customer, run->service);
		if (run->customer == NULL)
			scan_month(run);
		else
		{
			g = rating_group(set, run->customer, run->service);
			g->mode = LIVE_FULL;
			start_group(run, g);
			scan_group(run, g, run->mstart, run->at);
		}
		return;
	}
	if (live)
	{
		if (run->customer == NULL)
			load_known(set, run->month);
		load_pending(set, run->month, run->customer, run->service, run->consume);
		if (run->load_marks)
			run->marks = load_marks(run->customer, run->service, false, &run->nmarks);
		apply_marks(set, run->marks, run->nmarks);
		watch_budgets(run);
	}
	else if (run->customer == NULL)
		load_known(set, run->month);

	if (run->customer != NULL)
	{
		g = rating_group(set, run->customer, run->service);
		if (g->mode == LIVE_NONE)
			g->mode = LIVE_FULL;
	}

	hash_seq_init(&seq, set->groups);
	while ((g = (RateGroup *) hash_seq_search(&seq)) != NULL)
	{
		if (g->mode == LIVE_NONE)
			continue;
		plan_group(g, run->at);
		ngroups++;
		if (g->mode == LIVE_FULL)
			nfull++;
		if (g->mode != LIVE_DONE)
			nscan++;
	}
	run->ngroups = ngroups;
	run->nscan = nscan;

	/* the histories are needed by the groups that are walked, and for
	 * one group (its pool at `at`) */
	if (nscan > 0 || run->customer != NULL)
	{
		rating_load_pools(set, run->mstart, run->mend, run->customer, run->service);
		rating_load_holders(set, run->mstart, run->mend, run->customer, run->service);
	}

	hash_seq_init(&seq, set->groups);
	while ((g = (RateGroup *) hash_seq_search(&seq)) != NULL)
		if (g->mode != LIVE_NONE)
			start_group(run, g);

	if (nscan == 0)
		return;
	if (run->customer == NULL && nfull > ngroups / 4)
	{
		/* most of the month from the start: one pass in index order (a
		 * group extended from its state skips its rated calls) */
		scan_month(run);
		return;
	}
	hash_seq_init(&seq, set->groups);
	while ((g = (RateGroup *) hash_seq_search(&seq)) != NULL)
	{
		if (g->mode == LIVE_RESUME)
			scan_group(run, g, g->rated_to, run->at);
		else if (g->mode == LIVE_FULL)
			scan_group(run, g, run->mstart, run->at);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * live_read
 *		live_run for a reader (preview_month, pool_status): every statement
 *		with one snapshot (overage_spi_pin), so the states, the pending calls,
 *		the dated changes and the calls it reads are of one instant.
 */
void
live_read(LiveRun *run)
{
	overage_spi_pin();
	PG_TRY();
	{
		live_run(run);
	}
	PG_CATCH();
	{
		overage_spi_unpin(false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	overage_spi_unpin(true);
}

/* ---------------------------------------------------------------------
 * rate_pending: write the states back
 * ---------------------------------------------------------------------
 */

static Datum
text_array(List *items)
{
	int			n = list_length(items);
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, items)
	{
		char	   *s = (char *) lfirst(lc);

		nulls[i] = (s == NULL);
		d[i] = s ? CStringGetTextDatum(s) : (Datum) 0;
		i++;
	}
	return overage_array(d, nulls, n, TEXTOID);
}

static Datum
int8_array(int64 *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(v[i]);
	return overage_array(d, NULL, n, INT8OID);
}

static Datum
time_array(TimestampTz *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = TimestampTzGetDatum(v[i]);
	return overage_array(d, NULL, n, TIMESTAMPTZOID);
}

/*
 * minutes_array
 *		Seconds as minutes, each what round(seconds / 60.0, 6) gives (scale
 *		6), computed exactly: the fraction of a minute is r/60 of whole
 *		seconds r < 60, so its millionths are r * 50000 / 3, rounded half
 *		away from zero (a third is never a half, so the division's own
 *		rounding at 16 digits cannot change the sixth).
 */
static Datum
minutes_array(int64 *secs, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	char		buf[64];

	for (int i = 0; i < n; i++)
	{
		uint64		a = secs[i] < 0 ? -(uint64) secs[i] : (uint64) secs[i];
		uint64		r = a % 60;
		uint64		micro = (r * 50000 * 2 + 3) / 6;	/* rounded half up */

		snprintf(buf, sizeof(buf), "%s" UINT64_FORMAT ".%06u",
				 secs[i] < 0 ? "-" : "", a / 60, (unsigned) micro);
		d[i] = DirectFunctionCall3(numeric_in, CStringGetDatum(buf),
								   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	}
	return overage_array(d, NULL, n, NUMERICOID);
}

static Datum
bool_array(bool *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = BoolGetDatum(v[i]);
	return overage_array(d, NULL, n, BOOLOID);
}

/* groups by (customer, service), byte order */
static int
group_order_cmp(const void *a, const void *b)
{
	const RateGroup *ga = *(RateGroup *const *) a;
	const RateGroup *gb = *(RateGroup *const *) b;
	int			c = strcmp(ga->customer, gb->customer);

	return c != 0 ? c : strcmp(ga->service, gb->service);
}

/*
 * write_states
 *		Store the state of every group walked in this run: rated_group
 *		inserted (a new group) or updated, an updated group's rated_line
 *		rows replaced.  At most four statements whatever the number of
 *		groups.
 */
static void
write_states(LiveRun *run)
{
	static SPIPlanPtr insert_plan = NULL;
	static SPIPlanPtr update_plan = NULL;
	static SPIPlanPtr delete_plan = NULL;
	static SPIPlanPtr lines_plan = NULL;
	RatingSet  *set = run->set;
	HASH_SEQ_STATUS seq;
	RateGroup  *g;
	RateGroup **groups;
	long		ngroups;
	List	   *cust = NIL;
	List	   *svc = NIL;
	int			n = 0;
	int			cap = 64;
	TimestampTz *rated_to = palloc(sizeof(TimestampTz) * cap);
	bool	   *had = palloc(sizeof(bool) * cap);
	int			nhad = 0;
	int64	   *fig[6];
	List	   *lcust = NIL;
	List	   *lsvc = NIL;
	List	   *lpartner = NIL;
	List	   *lsub = NIL;
	List	   *lres = NIL;
	List	   *lcur = NIL;
	int			nl = 0;
	int			lcap = 64;
	int64	   *lsecs = palloc(sizeof(int64) * lcap);
	Datum	   *lprice = palloc(sizeof(Datum) * lcap);

	for (int k = 0; k < 6; k++)
		fig[k] = palloc(sizeof(int64) * cap);
	/*
	 * The groups in (customer, service) order, so that the states and the
	 * lines are stored in the order of their indexes, which close_month
	 * and the readers scan them by (byte order: the DB's collation may
	 * differ a little; only the physical order is at stake).
	 */
	ngroups = hash_get_num_entries(set->groups);
	groups = palloc(sizeof(RateGroup *) * Max(ngroups, 1));
	ngroups = 0;
	hash_seq_init(&seq, set->groups);
	while ((g = (RateGroup *) hash_seq_search(&seq)) != NULL)
		if (g->mode == LIVE_FULL || g->mode == LIVE_RESUME)
			groups[ngroups++] = g;
	if (ngroups > 1)
		qsort(groups, ngroups, sizeof(RateGroup *), group_order_cmp);
	for (long gi = 0; gi < ngroups; gi++)
	{
		TimestampTz to;

		g = groups[gi];

		if (g->last_at != DT_NOBEGIN)
			to = live_next_us(g->last_at);
		else if (g->mode == LIVE_RESUME)
			to = g->rated_to;
		else
			to = run->mstart;
		if (n == cap)
		{
			cap *= 2;
			rated_to = repalloc(rated_to, sizeof(TimestampTz) * cap);
			had = repalloc(had, sizeof(bool) * cap);
			for (int k = 0; k < 6; k++)
				fig[k] = repalloc(fig[k], sizeof(int64) * cap);
		}
		cust = lappend(cust, g->customer);
		svc = lappend(svc, g->service);
		rated_to[n] = to;
		had[n] = g->rated;
		if (g->rated)
			nhad++;
		fig[0][n] = g->calls;
		fig[1][n] = g->used;
		fig[2][n] = g->included;
		fig[3][n] = g->overage;
		fig[4][n] = g->unassigned;
		fig[5][n] = g->reached;
		n++;
		for (int i = 0; i < g->ntotals; i++)
		{
			HolderTotal *t = &g->totals[i];

			if (t->seconds == 0)
				continue;
			if (nl == lcap)
			{
				lcap *= 2;
				lsecs = repalloc(lsecs, sizeof(int64) * lcap);
				lprice = repalloc(lprice, sizeof(Datum) * lcap);
			}
			lcust = lappend(lcust, g->customer);
			lsvc = lappend(lsvc, g->service);
			lpartner = lappend(lpartner, t->partner);
			lsub = lappend(lsub, t->partner ?
						   DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&t->subscription))) :
						   NULL);
			lres = lappend(lres, t->partner ? t->reseller : NULL);
			if (t->price < 0)
				elog(ERROR, "live rating: a line of \"%s\"/\"%s\" has no price",
					 g->customer, g->service);
			lprice[nl] = set->prices[t->price].unit_price;
			lcur = lappend(lcur, set->prices[t->price].currency);
			lsecs[nl] = t->seconds;
			nl++;
		}
	}
	if (n == 0)
		return;

	{
		Oid			types[11] = {DATEOID, TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID,
			INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID,
		BOOLARRAYOID};
		Datum		values[11];

		values[0] = DateADTGetDatum(run->month);
		values[1] = text_array(cust);
		values[2] = text_array(svc);
		values[3] = time_array(rated_to, n);
		for (int k = 0; k < 6; k++)
			values[4 + k] = int8_array(fig[k], n);
		values[10] = bool_array(had, n);

		/*
		 * Under the advisory lock, with a snapshot taken after it, the
		 * groups without a stored state have no row: a plain INSERT (a
		 * fresh month is all new groups; ON CONFLICT's speculative
		 * insertion would cost as much again), and an UPDATE of those that
		 * had one, whose lines alone are replaced.
		 */
		if (nhad < n)
			overage_history_exec(&insert_plan,
								 "INSERT INTO overage.rated_group"
								 " (month, customer_id, service_id, rated_to, calls, used_s,"
								 "  included_s, overage_s, unassigned_s, reached, rated_at)"
								 " SELECT $1, u.c, u.s, u.t, u.n, u.used, u.inc, u.over, u.un,"
								 "  u.reached::int2, pg_catalog.now()"
								 " FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::int8[],"
								 "  $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[],"
								 "  $11::bool[])"
								 "  AS u(c, s, t, n, used, inc, over, un, reached, had)"
								 " WHERE NOT u.had"
								 " ORDER BY u.c, u.s",
								 11, types, values, NULL);
		if (nhad > 0)
		{
			overage_history_exec(&update_plan,
								 "UPDATE overage.rated_group r"
								 " SET rated_to = u.t, calls = u.n, used_s = u.used,"
								 "  included_s = u.inc, overage_s = u.over, unassigned_s = u.un,"
								 "  reached = u.reached::int2, rated_at = pg_catalog.now()"
								 " FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::int8[],"
								 "  $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[],"
								 "  $11::bool[])"
								 "  AS u(c, s, t, n, used, inc, over, un, reached, had)"
								 " WHERE u.had AND r.month = $1 AND r.customer_id = u.c"
								 "  AND r.service_id = u.s",
								 11, types, values, NULL);
			if ((int64) SPI_processed != nhad)
				elog(ERROR, "live rating: %lld of %d rated groups of %s found to update",
					 (long long) SPI_processed, nhad, overage_date_str(run->month));
			overage_history_exec(&delete_plan,
								 "DELETE FROM overage.rated_line l"
								 " USING unnest($2::text[], $3::text[], $11::bool[]) AS u(c, s, had)"
								 " WHERE u.had AND l.month = $1 AND l.customer_id = u.c"
								 "  AND l.service_id = u.s",
								 11, types, values, NULL);
		}
	}
	if (nl > 0)
	{
		Oid			types[9] = {DATEOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
			TEXTARRAYOID, TEXTARRAYOID, NUMERICARRAYOID, TEXTARRAYOID, INT8ARRAYOID};
		Datum		values[9];

		values[0] = DateADTGetDatum(run->month);
		values[1] = text_array(lcust);
		values[2] = text_array(lsvc);
		values[3] = text_array(lpartner);
		values[4] = text_array(lsub);
		values[5] = text_array(lres);
		values[6] = overage_array(lprice, NULL, nl, NUMERICOID);
		values[7] = text_array(lcur);
		values[8] = int8_array(lsecs, nl);
		overage_history_exec(&lines_plan,
							 "INSERT INTO overage.rated_line"
							 " (month, customer_id, service_id, partner_id, subscription_id,"
							 "  reseller_id, unit_price, currency, overage_s)"
							 " SELECT $1, u.c, u.s, u.p, u.sub::uuid, u.r, u.price, u.cur, u.secs"
							 " FROM unnest($2::text[], $3::text[], $4::text[], $5::text[],"
							 "  $6::text[], $7::numeric[], $8::text[], $9::int8[])"
							 "  AS u(c, s, p, sub, r, price, cur, secs)",
							 9, types, values, NULL);
	}
}

/*
 * raise_pool_alerts
 *		The pool thresholds the walked groups reached (rating.c watches
 *		them), through overage._raise_alerts, which stores each alert once
 *		and notifies overage_alert.  Values are minutes.
 */
static int64
raise_pool_alerts(LiveRun *run)
{
	static SPIPlanPtr plan = NULL;
	HASH_SEQ_STATUS seq;
	RateGroup  *g;
	List	   *kind = NIL;
	List	   *partner = NIL;
	List	   *cust = NIL;
	List	   *svc = NIL;
	int			n = 0;
	int			cap = 16;
	int64	   *pct = palloc(sizeof(int64) * cap);
	int64	   *inc = palloc(sizeof(int64) * cap);
	int64	   *pool = palloc(sizeof(int64) * cap);
	TimestampTz *at = palloc(sizeof(TimestampTz) * cap);
	bool	   *known_new = palloc(sizeof(bool) * cap);
	Oid			types[10] = {DATEOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		TEXTARRAYOID, INT8ARRAYOID, NUMERICARRAYOID, NUMERICARRAYOID,
	TIMESTAMPTZARRAYOID, BOOLARRAYOID};
	Datum		values[10];
	bool		isnull;

	hash_seq_init(&seq, run->set->groups);
	while ((g = (RateGroup *) hash_seq_search(&seq)) != NULL)
		for (int i = 0; i < g->ncrossings; i++)
		{
			PoolCrossing *c = &g->crossings[i];

			if (n == cap)
			{
				cap *= 2;
				pct = repalloc(pct, sizeof(int64) * cap);
				inc = repalloc(inc, sizeof(int64) * cap);
				pool = repalloc(pool, sizeof(int64) * cap);
				at = repalloc(at, sizeof(TimestampTz) * cap);
				known_new = repalloc(known_new, sizeof(bool) * cap);
			}
			kind = lappend(kind, "pool");
			partner = lappend(partner, c->partner);
			cust = lappend(cust, g->customer);
			svc = lappend(svc, g->service);
			pct[n] = c->percent;
			inc[n] = c->included;
			pool[n] = c->pool;
			at[n] = c->at;

			/*
			 * a group without a stored rated state has never been rated,
			 * so none of its alerts is stored: ratings take turns (the
			 * advisory lock) and store a group's alerts with its state
			 */
			known_new[n] = !g->rated;
			n++;
		}
	if (n == 0)
		return 0;
	values[0] = DateADTGetDatum(run->month);
	values[1] = text_array(kind);
	values[2] = text_array(partner);
	values[3] = text_array(cust);
	values[4] = text_array(svc);
	values[5] = int8_array(pct, n);
	values[6] = minutes_array(inc, n);
	values[7] = minutes_array(pool, n);
	values[8] = time_array(at, n);
	values[9] = bool_array(known_new, n);
	overage_spi_exec(&plan,
					 "SELECT overage._raise_alerts($1, $2, $3, $4, $5, $6::numeric[],"
					 " $7, $8, $9, $10)",
					 10, types, values, NULL, 0);
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
									   1, &isnull));
}

/* every budget, sorted by customer (a few per customer at most) */
static void
load_budgets(LiveRun *run)
{
	static SPIPlanPtr plan = NULL;

	overage_spi_exec(&plan,
					 "SELECT b.partner_id, b.customer_id, b.amount, b.currency, b.thresholds,"
					 " b.set_at FROM overage.budget b",
					 0, NULL, NULL, NULL, 0);
	run->nbudgets = (int) SPI_processed;
	run->budgets = palloc0(sizeof(LiveBudget) * (SPI_processed + 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		LiveBudget *b = &run->budgets[i];
		bool		isnull;

		b->partner = overage_spi_text(tup, desc, 1);
		b->customer = overage_spi_text(tup, desc, 2);
		b->amount = datumCopy(SPI_getbinval(tup, desc, 3, &isnull), false, -1);
		b->currency = overage_spi_text(tup, desc, 4);
		b->thresholds = datumCopy(SPI_getbinval(tup, desc, 5, &isnull), false, -1);
		b->set_at = spi_time(tup, desc, 6);
	}
	SPI_freetuptable(SPI_tuptable);
	if (run->nbudgets > 1)
		qsort(run->budgets, run->nbudgets, sizeof(LiveBudget), budget_cmp);
}

/*
 * raise_budget_alerts
 *		For each budget: the overage amount the partner will be billed for
 *		the customer in the month, in the budget's currency (the month's
 *		lines of the customer's groups, each rounded as a charge line is),
 *		call by call over the calls this run rated in time order; the first
 *		call at which it reaches a threshold crossed it.  The stored state
 *		of the groups not walked counts from the start ("as rated so far").
 *		One statement per budget whose customer had calls rated.
 */
static void
raise_budget_alerts(LiveRun *run)
{
	static SPIPlanPtr plan = NULL;
	RatingSet  *set = run->set;

	for (int b = 0; b < run->nbudgets; b++)
	{
		LiveBudget *bg = &run->budgets[b];
		HASH_SEQ_STATUS seq;
		RateGroup  *g;
		List	   *bkeys = NIL;
		List	   *ekeys = NIL;
		int			nb = 0;
		int			ne = 0;
		int			bcap = 16;
		int			ecap = 64;
		Datum	   *bprice = palloc(sizeof(Datum) * bcap);
		int64	   *bsecs = palloc(sizeof(int64) * bcap);
		Datum	   *eprice = palloc(sizeof(Datum) * ecap);
		int64	   *esecs = palloc(sizeof(int64) * ecap);
		TimestampTz *eat = palloc(sizeof(TimestampTz) * ecap);
		bool		walked = false;

		hash_seq_init(&seq, set->groups);
		while ((g = (RateGroup *) hash_seq_search(&seq)) != NULL)
		{
			bool		moved = (g->mode == LIVE_FULL || g->mode == LIVE_RESUME);

			if (g->mode == LIVE_NONE || strcmp(g->customer, bg->customer) != 0)
				continue;
			walked |= (moved && g->nspends > 0);
			for (int i = 0; i < g->ntotals; i++)
			{
				HolderTotal *t = &g->totals[i];
				int64		base;

				if (t->partner == NULL || strcmp(t->partner, bg->partner) != 0 ||
					t->price < 0 || strcmp(set->prices[t->price].currency, bg->currency) != 0)
					continue;
				/* its seconds before this run's calls */
				base = !moved ? t->seconds :
					(g->mode == LIVE_RESUME && i < g->r_ntotals) ? g->r_totals[i].seconds : 0;
				if (nb == bcap)
				{
					bcap *= 2;
					bprice = repalloc(bprice, sizeof(Datum) * bcap);
					bsecs = repalloc(bsecs, sizeof(int64) * bcap);
				}
				bkeys = lappend(bkeys, psprintf("%s/%d", g->service, i));
				bprice[nb] = set->prices[t->price].unit_price;
				bsecs[nb] = base;
				nb++;
			}
			if (!moved)
				continue;
			for (int i = 0; i < g->nspends; i++)
			{
				SpendEvent *e = &g->spends[i];
				HolderTotal *t = &g->totals[e->total];

				if (strcmp(t->partner, bg->partner) != 0 || t->price < 0 ||
					strcmp(set->prices[t->price].currency, bg->currency) != 0)
					continue;
				if (ne == ecap)
				{
					ecap *= 2;
					eprice = repalloc(eprice, sizeof(Datum) * ecap);
					esecs = repalloc(esecs, sizeof(int64) * ecap);
					eat = repalloc(eat, sizeof(TimestampTz) * ecap);
				}
				ekeys = lappend(ekeys, psprintf("%s/%d", g->service, e->total));
				eprice[ne] = set->prices[t->price].unit_price;
				esecs[ne] = e->seconds;
				eat[ne] = e->at;
				ne++;
			}
		}
		if (!walked || ne == 0)
			continue;
		{
			Oid			types[12] = {DATEOID, TEXTOID, TEXTOID, NUMERICOID, NUMERICARRAYOID,
				TEXTARRAYOID, NUMERICARRAYOID, INT8ARRAYOID,
			TIMESTAMPTZARRAYOID, TEXTARRAYOID, NUMERICARRAYOID, INT8ARRAYOID};
			Datum		values[12];

			values[0] = DateADTGetDatum(run->month);
			values[1] = CStringGetTextDatum(bg->partner);
			values[2] = CStringGetTextDatum(bg->customer);
			values[3] = bg->amount;
			values[4] = bg->thresholds;
			values[5] = text_array(bkeys);
			values[6] = overage_array(bprice, NULL, nb, NUMERICOID);
			values[7] = int8_array(bsecs, nb);
			values[8] = time_array(eat, ne);
			values[9] = text_array(ekeys);
			values[10] = overage_array(eprice, NULL, ne, NUMERICOID);
			values[11] = int8_array(esecs, ne);
			overage_spi_exec(&plan,
							 "WITH base AS (SELECT b.k, b.p, b.s FROM unnest($6, $7, $8) AS b(k, p, s)),"
							 " ev AS (SELECT e.t, e.k, e.p, e.s, e.o"
							 "  FROM unnest($9, $10, $11, $12) WITH ORDINALITY AS e(t, k, p, s, o)),"
							 " cum AS (SELECT ev.*, coalesce((SELECT b.s FROM base b WHERE b.k = ev.k), 0)"
							 "  + sum(ev.s) OVER (PARTITION BY ev.k ORDER BY ev.t, ev.o) AS c FROM ev),"
							 " run AS (SELECT cum.t, cum.o,"
							 "  (SELECT coalesce(sum(round(b.s * b.p / 60, 2)), 0) FROM base b)"
							 "  + sum(round(cum.c * cum.p / 60, 2) - round((cum.c - cum.s) * cum.p / 60, 2))"
							 "    OVER (ORDER BY cum.t, cum.o) AS amount FROM cum),"
							 " crossed AS (SELECT x.pct, r.t, r.amount"
							 "  FROM unnest($5) AS x(pct),"
							 "  LATERAL (SELECT run.t, run.amount FROM run"
							 "   WHERE run.amount >= x.pct * $4 / 100 ORDER BY run.t, run.o LIMIT 1) r)"
							 " SELECT overage._raise_alerts($1, array_agg('budget'::text ORDER BY c.pct),"
							 "  array_agg($2 ORDER BY c.pct), array_agg($3 ORDER BY c.pct),"
							 "  array_agg(NULL::text ORDER BY c.pct), array_agg(c.pct ORDER BY c.pct),"
							 "  array_agg(c.amount ORDER BY c.pct), array_agg($4 ORDER BY c.pct),"
							 "  array_agg(c.t ORDER BY c.pct))"
							 " FROM crossed c HAVING count(*) > 0",
							 12, types, values, NULL, 0);
		}
	}
}

/* rate one month and store what changed; returns the calls walked */
static int64
rate_month_pending(DateADT month, StaleMark *marks, int nmarks, bool own_marks)
{
	LiveRun		run;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "overage rate_pending",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	int64		walked;
	TimestampTz t0 = GetCurrentTimestamp();
	TimestampTz t1;
	TimestampTz t2;

	memset(&run, 0, sizeof(run));
	run.set = rating_set_create(cxt);
	run.month = overage_month_of((TimestampTz) month * USECS_PER_DAY,
								 &run.mstart, &run.mend);
	run.at = DT_NOEND;
	run.consume = true;
	run.watch = overage_table_exists("alert");
	run.marks = marks;
	run.nmarks = nmarks;
	run.load_marks = own_marks;
	if (run.watch)
		load_budgets(&run);
	rating_load_prices(run.set, run.mstart, run.mend, run.month);
	live_run(&run);
	t1 = GetCurrentTimestamp();
	write_states(&run);
	t2 = GetCurrentTimestamp();
	if (run.watch)
	{
		raise_pool_alerts(&run);
		raise_budget_alerts(&run);
	}
	ereport(DEBUG1,
			(errmsg_internal("overage rate_pending %s: %ld groups, %ld walked, %lld calls;"
							 " read and rated in %ld ms, states written in %ld ms,"
							 " alerts in %ld ms",
							 overage_date_str(run.month), run.ngroups, run.nscan,
							 (long long) run.walked,
							 (long) ((t1 - t0) / 1000), (long) ((t2 - t1) / 1000),
							 (long) ((GetCurrentTimestamp() - t2) / 1000))));
	walked = run.walked;
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return walked;
}

/*
 * month_dirty
 *		Has the month anything to rate: pending calls, (marks < 0: read
 *		them) dated changes, or a budget set after a group of its customer
 *		was rated (watch_budgets then rates the group from the start, to
 *		raise the alerts of calls rated before the budget existed)?
 *
 *		Every group with figures in usage_month has a rated state: the
 *		figures and the state are written together, by the rating that
 *		takes in the group's pending calls (load_pending, write_states),
 *		and a state is never deleted.  The groups of calls from before 1.2
 *		have figures but no state; the update to 1.2 records one dated
 *		change for them (src/rating.sql), so they count here as marked.
 *		Hence no look at the month's groups: after a rating, the close
 *		reads two tables that the rating emptied, whatever the month's
 *		size.  verify()'s rated_state check reports a group of an open
 *		month without a state while the month has no pending calls and
 *		no mark.
 */
static bool
month_dirty(DateADT month, int marks)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr budget_plan = NULL;
	Oid			types[2] = {DATEOID, BOOLOID};
	Datum		values[2];
	bool		isnull;
	bool		dirty;

	values[0] = DateADTGetDatum(month);
	values[1] = BoolGetDatum(marks < 0);
	overage_spi_exec(&plan,
					 "SELECT ($2 AND EXISTS (SELECT 1 FROM overage.rating_stale))"
					 " OR EXISTS (SELECT 1 FROM overage.usage_pending p WHERE p.month = $1)",
					 2, types, values, NULL, 1);
	dirty = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	if (!dirty && overage_table_exists("alert"))
	{
		overage_spi_exec(&budget_plan,
						 "SELECT EXISTS (SELECT 1 FROM overage.budget b"
						 " JOIN overage.rated_group r ON r.customer_id = b.customer_id"
						 " WHERE r.month = $1 AND r.rated_at < b.set_at)",
						 1, types, values, NULL, 1);
		dirty = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
		SPI_freetuptable(SPI_tuptable);
	}
	return dirty;
}

/*
 * rate_pending(month date) RETURNS bigint
 *
 * month NULL: every open month, taking in (and deleting) every dated
 * change; a month: only that month (close_month), leaving the dated
 * changes for the other months.  Returns the calls (re)rated.
 */
static int64 rate_pending_pinned(FunctionCallInfo fcinfo);

Datum
rate_pending(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr lock_plan = NULL;
	volatile int64 walked = 0;

	if (overage_is_distributed())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("live rating is not available on a distributed cluster"),
				 errdetail("After overage.distribute() every reading and close_month rate the month from its calls; there is no rated state to bring up to date."),
				 errhint("Do not call rate_pending() or run the rating worker on a Citus cluster.")));
	if (!live_rating_installed())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("live rating needs version 1.2 of the extension"),
				 errhint("ALTER EXTENSION overage UPDATE;")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	overage_spi_exec(&lock_plan, LIVE_LOCK_SQL, 0, NULL, NULL, NULL, 0);

	/* one snapshot, taken once the previous run has committed */
	overage_spi_pin();
	PG_TRY();
	{
		walked = rate_pending_pinned(fcinfo);
	}
	PG_CATCH();
	{
		overage_spi_unpin(false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	overage_spi_unpin(true);
	SPI_finish();
	PG_RETURN_INT64(walked);
}

static int64
rate_pending_pinned(FunctionCallInfo fcinfo)
{
	static SPIPlanPtr months_plan = NULL;
	int64		walked = 0;

	if (!PG_ARGISNULL(0))
	{
		DateADT		month = PG_GETARG_DATEADT(0);
		TimestampTz s,
					e;

		if (DATE_NOT_FINITE(month))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("month must be a finite date")));
		month = overage_month_of((TimestampTz) month * USECS_PER_DAY, &s, &e);
		if (month_dirty(month, -1))
			walked = rate_month_pending(month, NULL, 0, true);
	}
	else
	{
		int			nmarks;
		StaleMark  *marks = load_marks(NULL, NULL, true, &nmarks);
		int			nmonths;
		DateADT    *months;

		/* the open months */
		overage_spi_exec(&months_plan,
						 "SELECT b.month FROM overage.billing_month b"
						 " WHERE b.closed_at IS NULL ORDER BY b.month",
						 0, NULL, NULL, NULL, 0);
		nmonths = (int) SPI_processed;
		months = palloc(sizeof(DateADT) * (nmonths + 1));
		for (int i = 0; i < nmonths; i++)
		{
			bool		isnull;

			months[i] = DatumGetDateADT(SPI_getbinval(SPI_tuptable->vals[i],
													  SPI_tuptable->tupdesc, 1, &isnull));
		}
		SPI_freetuptable(SPI_tuptable);

		for (int i = 0; i < nmonths; i++)
		{
			bool		dirty;

			/* anything to do: pending calls, dated changes, groups never rated? */
			dirty = nmarks > 0 || month_dirty(months[i], 0);
			if (dirty)
				walked += rate_month_pending(months[i], marks, nmarks, false);
			CHECK_FOR_INTERRUPTS();
		}
	}
	return walked;
}

/* ---------------------------------------------------------------------
 * rating_mark_stale: the trigger that records dated changes
 * ---------------------------------------------------------------------
 */

/*
 * The changed rows' keys and the instants from which they act, as a
 * subquery of columns (keys..., at): an inserted row from its start; a
 * deleted one from its start; an updated period from the end it was given
 * (or, still open, from its start: a change at that instant) and from the
 * end it had; an updated row without an end (to NULL) from its start, old
 * and new.
 */
static char *
changed_instants(TriggerEvent event, const char *keys, const char *from,
				 const char *to)
{
	if (TRIGGER_FIRED_BY_INSERT(event))
		return psprintf("SELECT %s, %s AS at FROM new_rows", keys, from);
	if (TRIGGER_FIRED_BY_DELETE(event))
		return psprintf("SELECT %s, %s AS at FROM old_rows", keys, from);
	if (to == NULL)
		return psprintf("SELECT %s, %s AS at FROM new_rows"
						" UNION ALL SELECT %s, %s FROM old_rows",
						keys, from, keys, from);
	return psprintf("SELECT %s, coalesce(%s, %s) AS at FROM new_rows"
					" UNION ALL SELECT %s, %s FROM old_rows WHERE %s IS NOT NULL",
					keys, to, from, keys, to, to);
}

/* the statement recording the marks of a change of table */
static const char *
stale_sql(const char *table, TriggerEvent event)
{
#define STALE_INSERT \
	"INSERT INTO overage.rating_stale (customer_id, service_id, from_at, cause)"

	if (strcmp(table, "license_quantity") == 0)
		return psprintf(STALE_INSERT
						" SELECT s.customer_id, ss.service_id, min(x.at), 'license_quantity'"
						" FROM (%s) x"
						" JOIN overage.subscription s ON s.subscription_id = x.subscription_id"
						" JOIN overage.sku_service ss"
						"  ON ss.product_id = s.product_id AND ss.sku_id = s.sku_id"
						" WHERE ss.minutes_per_license > 0 GROUP BY 1, 2",
						changed_instants(event, "subscription_id", "valid_from", "valid_to"));
	if (strcmp(table, "holder_period") == 0)
		return psprintf(STALE_INSERT
						" SELECT x.customer_id, x.service_id, min(x.at), 'holder_period'"
						" FROM (%s) x GROUP BY 1, 2",
						changed_instants(event, "customer_id, service_id", "valid_from", "valid_to"));
	if (strcmp(table, "service_price") == 0)
		return psprintf(STALE_INSERT
						" SELECT NULL::text, x.service_id, min(x.at), 'service_price'"
						" FROM (%s) x GROUP BY 2",
						changed_instants(event, "service_id", "effective_from", NULL));
	if (strcmp(table, "sku_service") == 0)
		return psprintf(STALE_INSERT
						" SELECT DISTINCT NULL::text, x.service_id, '-infinity'::timestamptz,"
						"  'sku_service' FROM (%s) x",
						changed_instants(event, "service_id", "'-infinity'::timestamptz", NULL));
	if (strcmp(table, "service") == 0)
		return STALE_INSERT
			" SELECT DISTINCT NULL::text, n.service_id, '-infinity'::timestamptz, 'service'"
			" FROM new_rows n JOIN old_rows o ON o.service_id = n.service_id"
			" WHERE (o.unit_price, o.currency) IS DISTINCT FROM (n.unit_price, n.currency)";
	if (strcmp(table, "customer") == 0)
		return STALE_INSERT
			" SELECT DISTINCT n.customer_id, NULL::text, '-infinity'::timestamptz, 'customer'"
			" FROM new_rows n JOIN old_rows o ON o.customer_id = n.customer_id"
			" WHERE upper(o.country) IS DISTINCT FROM upper(n.country)";
	elog(ERROR, "rating_mark_stale: unknown table \"%s\"", table);
	return NULL;
#undef STALE_INSERT
}

Datum
rating_mark_stale(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerEvent event;
	const char *sql;
	volatile int rc = 0;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "rating_mark_stale: not called by trigger manager");
	event = trigdata->tg_event;
	if (!TRIGGER_FIRED_AFTER(event) || !TRIGGER_FIRED_FOR_STATEMENT(event) ||
		trigdata->tg_trigger->tgnargs != 1)
		elog(ERROR, "rating_mark_stale: must be fired after the statement, with the table's name");

	/* a restore loads rating_stale as it was dumped */
	if (TRIGGER_FIRED_BY_INSERT(event) && overage_restoring(trigdata->tg_relation))
		return PointerGetDatum(NULL);
	/* no rated state to make stale on a distributed cluster */
	if (overage_is_distributed())
		return PointerGetDatum(NULL);

	sql = stale_sql(trigdata->tg_trigger->tgargs[0], event);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_register_trigger_data(trigdata) != SPI_OK_TD_REGISTER)
		elog(ERROR, "rating_mark_stale: cannot register the transition tables");
	/* the history guard of rating_stale lets the extension's own writes in */
	overage_history_begin();
	PG_TRY();
	{
		rc = SPI_execute(sql, false, 0);
	}
	PG_FINALLY();
	{
		overage_history_end();
	}
	PG_END_TRY();
	if (rc < 0)
		elog(ERROR, "rating_mark_stale: %s", SPI_result_code_string(rc));
	SPI_finish();
	return PointerGetDatum(NULL);
}
