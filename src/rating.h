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

#endif							/* OVERAGE_RATING_H */
