/*-------------------------------------------------------------------------
 *
 * rating.h
 *	  The attribution engine (SPEC "Attributing a call"), shared by
 *	  pool_status, preview_month and close_month.
 *
 *-------------------------------------------------------------------------
 */
#ifndef OVERAGE_RATING_H
#define OVERAGE_RATING_H

#include "utils/date.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

/* a change of the pool: from instant at on, the pool changes by delta s */
typedef struct PoolEvent
{
	TimestampTz at;
	int64		delta;
} PoolEvent;

/* the holder during [from, to) (to_open: no end); partner NULL = None */
typedef struct HolderSpan
{
	TimestampTz from;
	TimestampTz to;
	bool		to_open;
	char	   *partner;
	pg_uuid_t	subscription;
	char	   *reseller;		/* the indirect reseller, NULL = direct */
} HolderSpan;

/* overage seconds of one (holder subscription, reseller) (or unassigned:
 * partner NULL) at one price within a group */
typedef struct HolderTotal
{
	char	   *partner;
	pg_uuid_t	subscription;
	char	   *reseller;
	int			price;			/* index into RatingSet.prices; -1: none loaded */
	int64		seconds;
} HolderTotal;

/* one distinct (unit price, currency) of the month's prices */
typedef struct RatePrice
{
	Datum		unit_price;		/* numeric, in the set's context */
	char	   *currency;
} RatePrice;

/* the price of a service in a market during [from, to) (to_open: no end) */
typedef struct PricePeriod
{
	TimestampTz from;
	TimestampTz to;
	bool		to_open;
	int			price;
} PricePeriod;

/* a pool threshold (80 or 100 % of the pool) reached by a call (live.c) */
typedef struct PoolCrossing
{
	int			percent;
	TimestampTz at;				/* start of the call that reached it */
	int64		included;		/* included seconds after that call */
	int64		pool;			/* the pool at that instant */
	char	   *partner;		/* holder at that instant, NULL: none */
} PoolCrossing;

/* overage billed to a holder by one call, for budgets (live.c) */
typedef struct SpendEvent
{
	TimestampTz at;
	int			total;			/* index into the group's totals */
	int64		seconds;
} SpendEvent;

/* how live.c brings a group up to date */
typedef enum LiveMode
{
	LIVE_NONE = 0,				/* no calls known (a group of the histories only) */
	LIVE_DONE,					/* its rated state is current: no call is read */
	LIVE_RESUME,				/* rated state, then the calls from rated_to on */
	LIVE_FULL					/* every call of the month, from the start */
} LiveMode;

/* one (customer, service) of a month: its step functions and its totals */
typedef struct RateGroup
{
	char	   *customer;		/* hash key: customer, service */
	char	   *service;
	MemoryContext cxt;

	PoolEvent  *events;
	int			nevents;
	int			maxevents;
	HolderSpan *spans;
	int			nspans;
	int			maxspans;
	bool		sorted;

	/* prices (rating_group_prices): periods of the customer's market, in
	 * order; fallback = the service's own price; -1 when none are loaded */
	PricePeriod *periods;
	int			nperiods;
	int			fallback;

	/* walking state, reset by rating_begin */
	int			evpos;
	int			spanpos;
	int			pricepos;
	int64		pool;			/* pool (seconds) at the last instant seen */
	int64		used;			/* seconds of the calls so far */
	int64		included;		/* of which the pool covered */
	int64		overage;		/* overage seconds so far, all holders */
	int64		unassigned;		/* of which unassigned */
	HolderTotal *totals;
	int			ntotals;
	int			maxtotals;
	int64		calls;			/* calls so far */
	TimestampTz last_at;		/* start of the last call so far */

	/* live rating (live.c): the stored rated state and what outdates it */
	LiveMode	mode;
	bool		rated;			/* has a stored rated state */
	TimestampTz rated_to;		/* it covers every call starting before this */
	int64		r_calls;
	int64		r_used;
	int64		r_included;
	int64		r_overage;
	int64		r_unassigned;
	int			r_reached;		/* pool thresholds reached (bits: 1 = 80 %, 2 = 100 %) */
	HolderTotal *r_totals;
	int			r_ntotals;
	TimestampTz pending_from;	/* earliest unrated call (DT_NOEND: none) */
	TimestampTz stale_from;		/* earliest dated change since (DT_NOEND: none) */
	bool		has_pending;	/* unrated calls (or removals) exist */

	/* pool thresholds: watched only when alerts are raised */
	bool		watch;
	int			reached;
	PoolCrossing *crossings;
	int			ncrossings;

	/* budgets: the overage billed by each call, when its customer has one */
	bool		spend;
	SpendEvent *spends;
	int			nspends;
	int			maxspends;
	TimestampTz r_rated_at;		/* when the stored state was rated */
} RateGroup;

/* the groups of one computation, in a memory context of their own; the
 * price book (rating_load_prices) is loaded once for all of them */
typedef struct RatingSet
{
	HTAB	   *groups;
	MemoryContext cxt;
	bool		prices_loaded;
	RatePrice  *prices;			/* distinct (unit price, currency) */
	int			nprices;
	int			maxprices;
	HTAB	   *schedules;		/* (service, market) -> its price periods */
	HTAB	   *fallbacks;		/* (service, "") -> the service's own price */
	HTAB	   *markets;		/* (customer, "") -> its market */
} RatingSet;

extern RatingSet *rating_set_create(MemoryContext parent);
extern RateGroup *rating_group(RatingSet *set, const char *customer,
							   const char *service);
extern void rating_load_pools(RatingSet *set, TimestampTz from, TimestampTz to,
							  const char *customer, const char *service);
extern void rating_load_holders(RatingSet *set, TimestampTz from, TimestampTz to,
								const char *customer, const char *service);
extern void rating_load_prices(RatingSet *set, TimestampTz from, TimestampTz to,
							   DateADT month);
extern void rating_group_prices(RatingSet *set, RateGroup *g);
extern void rating_begin(RateGroup *g);
extern int64 rating_pool_at(RateGroup *g, TimestampTz t);
extern int64 rating_min_pool(RateGroup *g, TimestampTz from, TimestampTz to);
extern void rating_call(RateGroup *g, TimestampTz t, int32 duration);
extern int	rating_price_index(RatingSet *set, Datum unit_price,
							   const char *currency);

/* live rating (live.c): one reading of a month, or of one group as of at */
typedef struct StaleMark StaleMark;

/* a partner's budget for a customer (overage.budget) */
typedef struct LiveBudget
{
	char	   *partner;
	char	   *customer;
	Datum		amount;			/* numeric */
	char	   *currency;
	Datum		thresholds;		/* numeric[] */
	TimestampTz set_at;
} LiveBudget;

typedef struct LiveRun
{
	RatingSet  *set;
	DateADT		month;
	TimestampTz mstart;
	TimestampTz mend;
	const char *customer;		/* one group, or NULL: every group */
	const char *service;
	TimestampTz at;				/* the calls before at (DT_NOEND: all) */
	bool		consume;		/* take the pending calls in (rate_pending) */
	bool		watch;			/* watch the pool thresholds */
	bool		load_marks;		/* read the dated changes (else: marks) */
	bool		fresh;			/* ignore the stored states: every group
								 * from the start of its month (verify) */
	StaleMark  *marks;
	int			nmarks;
	struct LiveBudget *budgets;	/* sorted by customer; their groups' spend is watched */
	int			nbudgets;
	long		ngroups;		/* groups with calls */
	long		nscan;			/* of which walked */
	int64		walked;			/* calls walked */
} LiveRun;

extern void live_run(LiveRun *run);
extern void live_read(LiveRun *run);

#define LIVE_REACHED_80		1
#define LIVE_REACHED_100	2

extern bool live_rating_installed(void);
extern void live_load(RatingSet *set, DateADT month, TimestampTz mstart,
					  const char *customer, const char *service, bool consume);
extern void live_restore(RateGroup *g);
extern TimestampTz live_next_us(TimestampTz t);

#endif							/* OVERAGE_RATING_H */
