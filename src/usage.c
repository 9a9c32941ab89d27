/*-------------------------------------------------------------------------
 *
 * usage.c
 *	  Ingest of calls into overage.usage: the statement-level trigger that
 *	  validates a statement's rows and keeps the running figures.
 *
 * usage_ingest runs AFTER INSERT, UPDATE and DELETE FOR EACH STATEMENT with
 * transition tables, so a COPY of a million rows pays a handful of SPI
 * round trips, not one per row.  For one statement it
 *
 *	  1. reads the transition table(s) once, checking each new row against
 *		 the bounds (duration at most 86400 s, started_at finite and at most
 *		 one day after the transaction's now()), and aggregates the rows in
 *		 a hash table per (customer, service, month): calls, seconds, first
 *		 and last start (old rows of UPDATE/DELETE count negatively);
 *	  2. checks that every distinct customer and service exists (one
 *		 query for both): in READ COMMITTED only the ids this backend has
 *		 not found before (party_cache.c), otherwise all of them, locked
 *		 FOR KEY SHARE as a foreign key would lock them;
 *	  3. locks the billing_month rows of the months touched FOR SHARE in
 *		 month order (creating missing ones first), refusing any closed
 *		 month (OV006).
 *		 close_month locks the month FOR UPDATE, so a close waits for this
 *		 transaction and an ingest after a close sees it closed: a call is
 *		 in the closed month's lines or refused, never lost;
 *	  4. records the statement's figures as calls not rated yet: one
 *		 overage.usage_pending row per month, the groups in parallel
 *		 arrays (1.2).  An insert, never an update of a shared row, so
 *		 loaders of the same customers never wait for each other's commit;
 *		 rate_pending() (live.c) adds them to usage_month and rates them.
 *		 A database still at 1.0/1.1 upserts usage_month itself, once per
 *		 group in key order (two loads cannot deadlock).
 *
 * Any error aborts the statement, so nothing of a refused statement stays.
 * pg_dump's reload of the calls is taken as it is (restore.c): usage_month
 * is restored with them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "overage.h"
#include "restore.h"
#include "guard.h"
#include "month.h"
#include "party_cache.h"
#include "citus.h"
#include "rating.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(usage_ingest);
PG_FUNCTION_INFO_V1(party_delete_guard);

/* one (customer, service, month) of the statement */
typedef struct UsageKey
{
	const char *customer;
	const char *service;
	int			clen;
	int			slen;
	DateADT		month;
} UsageKey;

typedef struct UsageGroup
{
	UsageKey	key;
	uint32		hash;			/* of the key, kept by simplehash */
	char		status;			/* simplehash's */
	int64		calls;
	int64		seconds;
	TimestampTz first_at;
	TimestampTz last_at;
} UsageGroup;

static inline uint32
usage_key_hash(const UsageKey *k)
{
	uint32		h;

	h = hash_bytes((const unsigned char *) k->customer, k->clen);
	h = hash_combine(h, hash_bytes((const unsigned char *) k->service, k->slen));
	return hash_combine(h, murmurhash32((uint32) k->month));
}

static inline bool
usage_key_equal(const UsageKey *a, const UsageKey *b)
{
	return a->month == b->month && a->clen == b->clen && a->slen == b->slen &&
		memcmp(a->customer, b->customer, a->clen) == 0 &&
		memcmp(a->service, b->service, a->slen) == 0;
}

/*
 * The statement's groups: simplehash (open addressing, the hash kept in the
 * entry, everything inlined) rather than dynahash, whose chained buckets and
 * calls through function pointers cost a lookup per row of the statement.
 */
#define SH_PREFIX			groups
#define SH_ELEMENT_TYPE		UsageGroup
#define SH_KEY_TYPE			UsageKey
#define SH_KEY				key
#define SH_HASH_KEY(tb, k)	usage_key_hash(&(k))
#define SH_EQUAL(tb, a, b)	usage_key_equal(&(a), &(b))
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a)	((a)->hash)
#define SH_SCOPE			static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

static int
bytes_cmp(const char *a, int alen, const char *b, int blen)
{
	int			c = memcmp(a, b, Min(alen, blen));

	if (c != 0)
		return c;
	return (alen > blen) - (alen < blen);
}

/* qsort order of groups: customer, service, month (bytewise) */
static int
usage_group_cmp(const void *p1, const void *p2)
{
	const UsageGroup *a = *(UsageGroup *const *) p1;
	const UsageGroup *b = *(UsageGroup *const *) p2;
	int			c;

	c = bytes_cmp(a->key.customer, a->key.clen, b->key.customer, b->key.clen);
	if (c == 0)
		c = bytes_cmp(a->key.service, a->key.slen, b->key.service, b->key.slen);
	if (c == 0)
		c = (a->key.month > b->key.month) - (a->key.month < b->key.month);
	return c;
}

static int
date_cmp_q(const void *p1, const void *p2)
{
	DateADT		a = *(const DateADT *) p1;
	DateADT		b = *(const DateADT *) p2;

	return (a > b) - (a < b);
}

static int
cstr_cmp_q(const void *p1, const void *p2)
{
	return strcmp(*(char *const *) p1, *(char *const *) p2);
}

typedef struct IngestState
{
	groups_hash *groups;
	int			att_customer;
	int			att_service;
	int			att_user;
	int			att_started;
	int			att_duration;
	int			att_last;		/* the last of the four ingest_store reads */
	TimestampTz latest;			/* now() + 1 day */
	/* month cache: the month of the previous row */
	TimestampTz mstart;
	TimestampTz mend;
	DateADT		month;
} IngestState;

/* refusal of one row: the statement fails */
static void
refuse_row(TupleTableSlot *slot, IngestState *st, const char *msg,
		   const char *detail)
{
	bool		isnull;
	char	   *customer = TextDatumGetCString(slot_getattr(slot, st->att_customer, &isnull));
	char	   *user = TextDatumGetCString(slot_getattr(slot, st->att_user, &isnull));
	char	   *started = pstrdup(timestamptz_to_str(DatumGetTimestampTz(slot_getattr(slot, st->att_started, &isnull))));
	int32		duration = DatumGetInt32(slot_getattr(slot, st->att_duration, &isnull));

	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", msg),
			 errdetail("%s The call of user \"%s\" of customer \"%s\" started at %s and lasted %d s.",
					   detail, user, customer, started, duration),
			 errhint("Nothing of the statement was written; correct or remove the call and load again.")));
}

/* a NUL-terminated copy of len bytes */
static char *
copy_bytes(MemoryContext cxt, const char *p, int len)
{
	char	   *r = MemoryContextAlloc(cxt, len + 1);

	memcpy(r, p, len);
	r[len] = '\0';
	return r;
}

/* read one transition table into the groups; sign +1 (new) or -1 (old) */
static void
ingest_store(Tuplestorestate *store, TupleDesc desc, IngestState *st,
			 int sign, MemoryContext keycxt)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);

	tuplestore_rescan(store);
	while (tuplestore_gettupleslot(store, true, false, slot))
	{
		Datum		cd;
		Datum		sd;
		TimestampTz t;
		int32		d;
		text	   *ct;
		text	   *stx;
		UsageKey	key;
		UsageGroup *g;
		bool		found;

		CHECK_FOR_INTERRUPTS();

		/* one deform for the four columns; NOT NULL ran before us */
		slot_getsomeattrs(slot, st->att_last);
		cd = slot->tts_values[st->att_customer - 1];
		sd = slot->tts_values[st->att_service - 1];
		t = DatumGetTimestampTz(slot->tts_values[st->att_started - 1]);
		d = DatumGetInt32(slot->tts_values[st->att_duration - 1]);

		/* CHECK (duration_s > 0) ran before us */
		if (sign > 0)
		{
			if (TIMESTAMP_NOT_FINITE(t))
				refuse_row(slot, st, "started_at of a call must be a finite instant",
						   "Calls are billed in the calendar month of their start.");
			if (d > SECS_PER_DAY)
				refuse_row(slot, st, "a call cannot last longer than 24 hours",
						   "duration_s is at most 86400.");
			if (t > st->latest)
				refuse_row(slot, st, "a call cannot start more than one day in the future",
						   "started_at must not be later than now() + 1 day.");
		}

		if (t < st->mstart || t >= st->mend)
			st->month = overage_month_of(t, &st->mstart, &st->mend);

		ct = (text *) DatumGetPointer(cd);
		stx = (text *) DatumGetPointer(sd);
		if (VARATT_IS_EXTENDED(ct))
			ct = pg_detoast_datum_packed(ct);
		if (VARATT_IS_EXTENDED(stx))
			stx = pg_detoast_datum_packed(stx);
		key.customer = VARDATA_ANY(ct);
		key.clen = VARSIZE_ANY_EXHDR(ct);
		key.service = VARDATA_ANY(stx);
		key.slen = VARSIZE_ANY_EXHDR(stx);
		key.month = st->month;

		g = groups_insert(st->groups, key, &found);
		if (!found)
		{
			/* the key points into the slot: copy it for good */
			g->key.customer = copy_bytes(keycxt, key.customer, key.clen);
			g->key.service = copy_bytes(keycxt, key.service, key.slen);
			g->calls = 0;
			g->seconds = 0;
			g->first_at = t;
			g->last_at = t;
		}
		g->calls += sign;
		g->seconds += (int64) sign * d;
		if (t < g->first_at)
			g->first_at = t;
		if (t > g->last_at)
			g->last_at = t;
	}
	ExecDropSingleTupleTableSlot(slot);
}

static Datum
text_array(char **items, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = CStringGetTextDatum(items[i]);
	return overage_array(d, NULL, n, TEXTOID);
}

/* sorted distinct strings of a sorted-by-pointer-content array */
static int
distinct_strings(char **items, int n)
{
	int			k = 0;

	qsort(items, n, sizeof(char *), cstr_cmp_q);
	for (int i = 0; i < n; i++)
		if (k == 0 || strcmp(items[k - 1], items[i]) != 0)
			items[k++] = items[i];
	return k;
}

/* the first id of ids that names no row, for the message */
static void
report_missing(SPIPlanPtr *plan, const char *sql, const char *what,
			   Datum ids)
{
	Oid			argtypes[1] = {TEXTARRAYOID};
	Datum		values[1];
	bool		isnull;
	char	   *id;

	values[0] = ids;
	overage_spi_exec(plan, sql, 1, argtypes, values, NULL, 1);
	if (SPI_processed == 0)
		elog(ERROR, "%s check disagrees with itself", what);
	id = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	ereport(ERROR,
			(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
			 errmsg("%s \"%s\" does not exist", what, id),
			 errdetail("Usage can only be recorded for a known %s.", what),
			 errhint("Nothing of the statement was written.")));
}

/* the ids of items[0..n) this backend has not found in relid before */
static int
unknown_parties(Oid relid, char **items, int n, char **unknown)
{
	int			k = 0;

	for (int i = 0; i < n; i++)
		if (!party_cache_known(relid, items[i], strlen(items[i])))
			unknown[k++] = items[i];
	return k;
}

/*
 * check_parties
 *		Every customer and service exists, in one round trip; a second one
 *		only to name the missing id.  Neither can be deleted before we
 *		commit: in READ COMMITTED because their deletes wait for the loads
 *		(party_delete_guard), otherwise because the rows are locked FOR KEY
 *		SHARE, as a foreign key check would.
 */
static void
check_parties(char **customers, int nc, char **services, int ns)
{
	static SPIPlanPtr lock_plan = NULL;
	static SPIPlanPtr find_plan = NULL;
	static SPIPlanPtr cust_missing = NULL;
	static SPIPlanPtr svc_missing = NULL;
	Oid			argtypes[2] = {TEXTARRAYOID, TEXTARRAYOID};
	Datum		values[2];
	bool		isnull;
	int64		found_c;
	int64		found_s;
	Oid			customer_rel = InvalidOid;
	Oid			service_rel = InvalidOid;

	if (overage_is_distributed())
	{
		/*
		 * On a Citus cluster this runs on a worker's shard: the rows are
		 * locked in this node's placements of the reference tables (a
		 * delete of a customer writes every placement, so it waits as for
		 * the foreign key); through Citus the locks would need every node
		 * from every shard's trigger, and deadlock (README "Scaling out").
		 */
		static SPIPlanPtr cluster_plan = NULL;
		static Oid	plan_rel = InvalidOid;
		Oid			rel = get_relname_relid("customer",
											get_namespace_oid("overage", false));

		values[0] = text_array(customers, nc);
		values[1] = text_array(services, ns);
		if (cluster_plan != NULL && plan_rel != rel)
		{
			SPI_freeplan(cluster_plan);
			cluster_plan = NULL;
		}
		if (cluster_plan == NULL)
		{
			char	   *sql = psprintf("SELECT (SELECT count(*) FROM (SELECT 1 FROM %s c"
									   "  WHERE c.customer_id = ANY ($1) FOR KEY SHARE) l),"
									   " (SELECT count(*) FROM (SELECT 1 FROM %s s"
									   "  WHERE s.service_id = ANY ($2) FOR KEY SHARE) l)",
									   overage_local_placement("customer"),
									   overage_local_placement("service"));

			cluster_plan = SPI_prepare(sql, 2, argtypes);
			if (cluster_plan == NULL || SPI_keepplan(cluster_plan) != 0)
				elog(ERROR, "could not prepare the party check of the cluster");
			plan_rel = rel;
		}
		if (SPI_execute_plan(cluster_plan, values, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "party check failed");
	}
	else if (IsolationUsesXactSnapshot())
	{
		/*
		 * REPEATABLE READ or SERIALIZABLE: the statement reads an older
		 * snapshot, which may still show a party deleted since; locking the
		 * rows fails then (a serialization failure), as a foreign key check
		 * would.
		 */
		values[0] = text_array(customers, nc);
		values[1] = text_array(services, ns);
		overage_spi_exec(&lock_plan,
						 "SELECT (SELECT count(*) FROM (SELECT 1 FROM overage.customer c"
						 "  WHERE c.customer_id = ANY ($1) FOR KEY SHARE) l),"
						 " (SELECT count(*) FROM (SELECT 1 FROM overage.service s"
						 "  WHERE s.service_id = ANY ($2) FOR KEY SHARE) l)",
						 2, argtypes, values, NULL, 1);
	}
	else
	{
		/*
		 * READ COMMITTED: the rows are only looked up, not locked.  A party
		 * cannot be deleted under us: its delete takes overage.usage in
		 * SHARE mode first (party_delete_guard), so it waits for this
		 * statement's transaction, then finds its calls and refuses; and a
		 * delete that came first holds this statement off (its ROW
		 * EXCLUSIVE lock on usage) until it commits, after which this fresh
		 * snapshot no longer finds the party.  Locking the rows cost the
		 * loads a WAL record per customer and, with several loaders at
		 * once, a MultiXact per shared customer.
		 *
		 * Only the ids this backend has not found before are looked up:
		 * the delete also tells every backend to forget the ids it found
		 * (party_cache.c), before this statement could miss it.
		 */
		Oid			nsp = get_namespace_oid("overage", false);
		char	  **uc = palloc(sizeof(char *) * Max(nc, 1));
		char	  **us = palloc(sizeof(char *) * Max(ns, 1));

		customer_rel = get_relname_relid("customer", nsp);
		service_rel = get_relname_relid("service", nsp);
		if (!OidIsValid(customer_rel) || !OidIsValid(service_rel))
			elog(ERROR, "overage.customer or overage.service is missing");
		nc = unknown_parties(customer_rel, customers, nc, uc);
		ns = unknown_parties(service_rel, services, ns, us);
		if (nc == 0 && ns == 0)
			return;
		customers = uc;
		services = us;
		values[0] = text_array(customers, nc);
		values[1] = text_array(services, ns);
		overage_spi_exec(&find_plan,
						 "SELECT (SELECT count(*) FROM overage.customer c"
						 "  WHERE c.customer_id = ANY ($1)),"
						 " (SELECT count(*) FROM overage.service s"
						 "  WHERE s.service_id = ANY ($2))",
						 2, argtypes, values, NULL, 1);
	}
	found_c = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
	found_s = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 2, &isnull));
	if (found_c != nc)
		report_missing(&cust_missing,
					   "SELECT u.id FROM unnest($1::text[]) u(id)"
					   " WHERE NOT EXISTS (SELECT 1 FROM overage.customer c"
					   " WHERE c.customer_id = u.id) ORDER BY 1",
					   "customer", values[0]);
	if (found_s != ns)
		report_missing(&svc_missing,
					   "SELECT u.id FROM unnest($1::text[]) u(id)"
					   " WHERE NOT EXISTS (SELECT 1 FROM overage.service s"
					   " WHERE s.service_id = u.id) ORDER BY 1",
					   "service", values[1]);

	/* READ COMMITTED: remember what was found */
	if (OidIsValid(customer_rel))
	{
		for (int i = 0; i < nc; i++)
			party_cache_add(customer_rel, customers[i], strlen(customers[i]));
		for (int i = 0; i < ns; i++)
			party_cache_add(service_rel, services[i], strlen(services[i]));
	}
}

/*
 * group_arrays
 *		The figures of groups[0..n) as six parallel arrays, in the order of
 *		usage_pending's columns: customer, service, first_at, last_at,
 *		calls, seconds.
 */
static void
group_arrays(UsageGroup **groups, int n, Datum arrays[6])
{
	Datum	   *cols[6];

	for (int c = 0; c < 6; c++)
		cols[c] = palloc(sizeof(Datum) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		UsageGroup *g = groups[i];

		cols[0][i] = PointerGetDatum(cstring_to_text_with_len(g->key.customer, g->key.clen));
		cols[1][i] = PointerGetDatum(cstring_to_text_with_len(g->key.service, g->key.slen));
		cols[2][i] = TimestampTzGetDatum(g->first_at);
		cols[3][i] = TimestampTzGetDatum(g->last_at);
		cols[4][i] = Int64GetDatum(g->calls);
		cols[5][i] = Int64GetDatum(g->seconds);
	}
	arrays[0] = overage_array(cols[0], NULL, n, TEXTOID);
	arrays[1] = overage_array(cols[1], NULL, n, TEXTOID);
	arrays[2] = overage_array(cols[2], NULL, n, TIMESTAMPTZOID);
	arrays[3] = overage_array(cols[3], NULL, n, TIMESTAMPTZOID);
	arrays[4] = overage_array(cols[4], NULL, n, INT8OID);
	arrays[5] = overage_array(cols[5], NULL, n, INT8OID);
}

/*
 * insert_pending
 *		One usage_pending row per month of the statement, its groups as
 *		parallel arrays, built here: the groups are already sorted, and the
 *		readers only unnest and aggregate them (an ordered array_agg per
 *		column in SQL sorted them six times again, with the collation: a
 *		fifth of a 1,000-call statement).
 */
static void
insert_pending(UsageGroup **sorted, long ngroups)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[7] = {DATEOID, TEXTARRAYOID, TEXTARRAYOID,
	TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, INT8ARRAYOID, INT8ARRAYOID};
	UsageGroup **month_groups = palloc(sizeof(UsageGroup *) * ngroups);
	bool	   *done = palloc0(sizeof(bool) * ngroups);

	for (long i = 0; i < ngroups; i++)
	{
		DateADT		month;
		int			n = 0;
		Datum		values[7];

		if (done[i])
			continue;
		/* the groups of the month of the first one not written yet */
		month = sorted[i]->key.month;
		for (long j = i; j < ngroups; j++)
		{
			if (done[j] || sorted[j]->key.month != month)
				continue;
			done[j] = true;
			month_groups[n++] = sorted[j];
		}
		values[0] = DateADTGetDatum(month);
		group_arrays(month_groups, n, values + 1);
		overage_history_exec(&plan,
							 "INSERT INTO overage.usage_pending"
							 " (month, customer_id, service_id, first_at, last_at, calls, seconds)"
							 " VALUES ($1, $2, $3, $4, $5, $6, $7)",
							 7, argtypes, values, NULL);
	}
}

/*
 * upsert_figures
 *		1.1's running figures: one upsert per group of usage_month, in key
 *		order (a 1.0/1.1 schema, or a Citus cluster, where the shards'
 *		triggers cannot write usage_pending).
 */
static void
upsert_figures(UsageGroup **sorted, long ngroups)
{
	static SPIPlanPtr figures = NULL;
	Datum	   *mon = palloc(sizeof(Datum) * Max(ngroups, 1));
	Oid			argtypes[7] = {TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID,
	TIMESTAMPTZARRAYOID, INT8ARRAYOID, INT8ARRAYOID, DATEARRAYOID};
	Datum		values[7];

	for (long i = 0; i < ngroups; i++)
		mon[i] = DateADTGetDatum(sorted[i]->key.month);
	group_arrays(sorted, (int) ngroups, values);
	values[6] = overage_array(mon, NULL, (int) ngroups, DATEOID);

	overage_history_exec(&figures,
						 "INSERT INTO overage.usage_month AS f"
						 " (customer_id, service_id, month, calls, seconds, first_at, last_at)"
						 " SELECT u.c, u.s, u.m, u.n, u.sec, u.f, u.l"
						 "   FROM unnest($1::text[], $2::text[], $3::timestamptz[],"
						 " $4::timestamptz[], $5::int8[], $6::int8[], $7::date[])"
						 "   AS u(c, s, f, l, n, sec, m)"
						 " ON CONFLICT (month, customer_id, service_id) DO UPDATE"
						 " SET calls = f.calls + excluded.calls,"
						 " seconds = f.seconds + excluded.seconds,"
						 " first_at = least(f.first_at, excluded.first_at),"
						 " last_at = greatest(f.last_at, excluded.last_at)",
						 7, argtypes, values, NULL);
}

Datum
usage_ingest(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerEvent event;
	TupleDesc	desc;
	IngestState st;
	MemoryContext cxt;
	MemoryContext old;
	groups_iterator iter;
	UsageGroup *g;
	UsageGroup **sorted;
	long		ngroups;
	int			i;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "usage_ingest: not called by trigger manager");
	event = trigdata->tg_event;
	if (!TRIGGER_FIRED_AFTER(event) || !TRIGGER_FIRED_FOR_STATEMENT(event))
		elog(ERROR, "usage_ingest: must be fired after the statement");
	if (!TRIGGER_FIRED_BY_INSERT(event) && !TRIGGER_FIRED_BY_UPDATE(event) &&
		!TRIGGER_FIRED_BY_DELETE(event))
		elog(ERROR, "usage_ingest: unsupported trigger event");

	/*
	 * pg_dump's reload of the calls: they were checked when ingested, and
	 * usage_month, which holds their figures, is restored with them
	 * (restore.c).
	 */
	if (TRIGGER_FIRED_BY_INSERT(event) &&
		overage_restoring(trigdata->tg_relation))
		return PointerGetDatum(NULL);

	cxt = AllocSetContextCreate(CurrentMemoryContext, "usage_ingest",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);

	desc = RelationGetDescr(trigdata->tg_relation);
	memset(&st, 0, sizeof(st));
	st.att_customer = SPI_fnumber(desc, "customer_id");
	st.att_service = SPI_fnumber(desc, "service_id");
	st.att_user = SPI_fnumber(desc, "user_id");
	st.att_started = SPI_fnumber(desc, "started_at");
	st.att_duration = SPI_fnumber(desc, "duration_s");
	if (st.att_customer <= 0 || st.att_service <= 0 || st.att_user <= 0 ||
		st.att_started <= 0 || st.att_duration <= 0)
		elog(ERROR, "usage_ingest: overage.usage lacks a column");
	st.att_last = Max(Max(st.att_customer, st.att_service),
					  Max(st.att_started, st.att_duration));
	st.latest = GetCurrentTransactionStartTimestamp() + USECS_PER_DAY;
	st.mstart = 1;
	st.mend = 0;				/* empty: the first row computes its month */

	st.groups = groups_create(cxt, 256, NULL);

	if (trigdata->tg_oldtable)
		ingest_store(trigdata->tg_oldtable, desc, &st, -1, cxt);
	if (trigdata->tg_newtable)
		ingest_store(trigdata->tg_newtable, desc, &st, +1, cxt);

	ngroups = st.groups->members;
	if (ngroups == 0)
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		return PointerGetDatum(NULL);
	}

	sorted = palloc(sizeof(UsageGroup *) * ngroups);
	i = 0;
	groups_start_iterate(st.groups, &iter);
	while ((g = groups_iterate(st.groups, &iter)) != NULL)
		sorted[i++] = g;
	qsort(sorted, ngroups, sizeof(UsageGroup *), usage_group_cmp);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* 2. customers and services exist */
	{
		char	  **customers = palloc(sizeof(char *) * ngroups);
		char	  **services = palloc(sizeof(char *) * ngroups);

		for (i = 0; i < ngroups; i++)
		{
			customers[i] = (char *) sorted[i]->key.customer;
			services[i] = (char *) sorted[i]->key.service;
		}
		check_parties(customers, distinct_strings(customers, ngroups),
					  services, distinct_strings(services, ngroups));
	}

	/* 3. the months exist, are open, and stay open until we commit */
	{
		DateADT    *months = palloc(sizeof(DateADT) * ngroups);
		int			nm = 0;

		for (i = 0; i < ngroups; i++)
			months[i] = sorted[i]->key.month;
		qsort(months, ngroups, sizeof(DateADT), date_cmp_q);
		for (i = 0; i < ngroups; i++)
			if (nm == 0 || months[nm - 1] != months[i])
				months[nm++] = months[i];
		overage_lock_months(months, nm,
					"Its charge lines are final, so usage dated in it is refused.",
					"Nothing of the statement was written; keep the record and settle it outside the closed month.");
	}

	/*
	 * 4. the figures: 1.2's pending row (rated later), or 1.1's running
	 * figures (a 1.0/1.1 schema, or a Citus cluster: no live rating)
	 */
	if (live_rating_installed())
		insert_pending(sorted, ngroups);
	else
		upsert_figures(sorted, ngroups);

	SPI_finish();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return PointerGetDatum(NULL);
}

/*
 * party_delete_guard
 *		BEFORE DELETE and BEFORE UPDATE OF the key row trigger of
 *		overage.customer and overage.service: a customer or a service with
 *		calls in overage.usage is kept (23503), under its id, as a foreign
 *		key from usage would keep it.  usage has no such key (its hot path
 *		stays one index; usage_ingest checks the parties once per
 *		statement).  Instead the delete takes usage in SHARE mode first: it
 *		waits for every load in flight to end and holds new ones off until
 *		the deleting transaction ends; then it looks for calls with the
 *		latest snapshot, so that a REPEATABLE READ delete also sees the
 *		loads that committed after its snapshot.  A delete that goes
 *		through invalidates the table's relcache entry, which makes every
 *		backend forget the ids it found (party_cache.c).  This is what lets
 *		a READ COMMITTED load check its parties without locking their rows,
 *		and mostly without looking them up.  A change of the id is a delete
 *		of the old one.  On a Citus cluster the loads lock the rows
 *		(check_parties), and this trigger, which fires on every placement
 *		of the reference tables, does nothing.
 */
Datum
party_delete_guard(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr customer_plan = NULL;
	static SPIPlanPtr service_plan = NULL;
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	bool		is_customer;
	bool		is_update;
	HeapTuple	result;
	const char *column;
	int			attnum;
	bool		isnull;
	Datum		key;
	Oid			argtypes[1] = {TEXTOID};
	SPIPlanPtr	plan;
	int			rc;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "party_delete_guard: not called by trigger manager");
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!(TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ||
		  TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)))
		elog(ERROR, "party_delete_guard: must be fired before each deleted or updated row");
	is_update = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event);
	result = is_update ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	if (overage_is_distributed())
		return PointerGetDatum(result);

	rel = trigdata->tg_relation;
	is_customer = strcmp(RelationGetRelationName(rel), "customer") == 0;
	column = is_customer ? "customer_id" : "service_id";
	attnum = SPI_fnumber(RelationGetDescr(rel), column);
	if (attnum <= 0)
		elog(ERROR, "party_delete_guard: %s has no column %s",
			 RelationGetRelationName(rel), column);
	key = heap_getattr(trigdata->tg_trigtuple, attnum, RelationGetDescr(rel), &isnull);
	if (is_update)
	{
		bool		newnull;
		Datum		newkey = heap_getattr(trigdata->tg_newtuple, attnum,
										  RelationGetDescr(rel), &newnull);
		text	   *o = isnull ? NULL : DatumGetTextPP(key);
		text	   *n = newnull ? NULL : DatumGetTextPP(newkey);

		/* the id is kept: nothing to look at */
		if (isnull == newnull &&
			(isnull || bytes_cmp(VARDATA_ANY(o), VARSIZE_ANY_EXHDR(o),
								 VARDATA_ANY(n), VARSIZE_ANY_EXHDR(n)) == 0))
			return PointerGetDatum(result);
	}

	LockRelationOid(get_relname_relid("usage", RelationGetNamespace(rel)), ShareLock);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = is_customer ? customer_plan : service_plan;
	if (plan == NULL)
	{
		/*
		 * a customer: one probe of usage_rating per month that has calls
		 * (each has a billing_month row, made by its first load, and its
		 * figures in usage_month or usage_pending); a service is
		 * not a leading column of any index of usage: a scan, stopped at
		 * the first call (services are rarely deleted)
		 */
		plan = SPI_prepare(is_customer
						   ? "SELECT 1 FROM (SELECT b.month FROM overage.billing_month b"
						   "  UNION SELECT f.month FROM overage.usage_month f"
						   "  UNION SELECT p.month FROM overage.usage_pending p) b"
						   " WHERE EXISTS (SELECT 1 FROM overage.usage u"
						   "  WHERE date_trunc('month', u.started_at AT TIME ZONE 'UTC') = b.month"
						   "    AND u.customer_id = $1)"
						   " LIMIT 1"
						   : "SELECT 1 FROM overage.usage u WHERE u.service_id = $1 LIMIT 1",
						   1, argtypes);
		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "party_delete_guard: could not prepare its query");
		if (is_customer)
			customer_plan = plan;
		else
			service_plan = plan;
	}
	rc = SPI_execute_snapshot(plan, &key, isnull ? "n" : NULL,
							  GetLatestSnapshot(), InvalidSnapshot, true, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "party_delete_guard: its query failed: %s", SPI_result_code_string(rc));
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("%s \"%s\" has calls in overage.usage",
						is_customer ? "customer" : "service",
						isnull ? "" : TextDatumGetCString(key)),
				 errdetail("Calls are billing records: a %s with calls is kept under its id.",
						   is_customer ? "customer" : "service"),
				 errhint(is_update ? "Nothing was changed." : "Nothing was deleted.")));
	SPI_finish();

	/* every backend forgets the ids it found in this table, at our commit */
	CacheInvalidateRelcache(rel);
	return PointerGetDatum(result);
}
