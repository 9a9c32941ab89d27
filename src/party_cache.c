/*-------------------------------------------------------------------------
 *
 * party_cache.c
 *	  The customers and services a backend has already found, so that a
 *	  load in READ COMMITTED looks up only the ones it has not seen
 *	  (usage.c, check_parties).
 *
 * A statement of 1,000 calls names some 1,000 customers; looking each up
 * in customer_pkey was an eighth of the statement.  A backend remembers
 * the ids it found, per relation, and asks the table only for the others.
 *
 * A remembered id stays true because a customer or a service is only
 * removed through _party_delete_guard (usage.c), which fires on a delete
 * and on a change of the key, and which invalidates the relation's
 * relcache entry (CacheInvalidateRelcache).  Every backend then forgets
 * the relation's ids, in the relcache callback below:
 *
 *	  - another backend's delete sends the invalidation when it commits,
 *		before it releases its SHARE lock on overage.usage.  A load either
 *		holds ROW EXCLUSIVE on usage already, and the delete waits for the
 *		load's transaction, or takes it afterwards, and taking a lock (like
 *		starting a transaction) reads the invalidations first;
 *	  - this backend's own delete is forgotten at the next command
 *		(CommandCounterIncrement processes the transaction's own
 *		invalidations);
 *	  - a lost invalidation (the shared queue overflowed) resets every
 *		cache, and the callback is called with InvalidOid.
 *
 * An id found in a transaction that has not committed may rest on a row
 * that transaction inserted itself: it is kept apart, tagged with the
 * subtransaction that found it, and joins the remembered ids at commit;
 * an abort of the (sub)transaction drops it.  PREPARE TRANSACTION drops
 * it too (the prepared transaction may still be rolled back).
 *
 * Not used in REPEATABLE READ or SERIALIZABLE (the load locks the rows
 * there), nor on a Citus cluster; a superuser who deletes customers with
 * session_replication_role = replica or with the trigger disabled goes
 * around the guard, the cache and the rule alike (README "Ingest").
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/hashfn.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"

#include "party_cache.h"

/* more ids than this and the cache starts over (about 100 bytes each) */
#define PARTY_CACHE_MAX		200000

typedef struct PartyKey
{
	Oid			relid;
	int			len;
	const char *id;
} PartyKey;

typedef struct PartyEntry
{
	PartyKey	key;			/* must be first */
	SubTransactionId subid;		/* found by this subtransaction, not yet
								 * committed; InvalidSubTransactionId once
								 * committed */
} PartyEntry;

static MemoryContext cache_cxt = NULL;	/* made once, with the callbacks */
static HTAB *cache = NULL;

/* the relations of the entries (customer, service) */
#define PARTY_CACHE_RELS	4
static Oid	cache_rels[PARTY_CACHE_RELS];
static int	ncache_rels = 0;

/* the entries not committed yet, in the order they were found */
static PartyEntry **pending = NULL;
static int	npending = 0;
static int	maxpending = 0;

static uint32
party_key_hash(const void *key, Size keysize)
{
	const PartyKey *k = (const PartyKey *) key;

	return hash_combine(hash_uint32(k->relid),
						hash_bytes((const unsigned char *) k->id, k->len));
}

static int
party_key_match(const void *key1, const void *key2, Size keysize)
{
	const PartyKey *a = (const PartyKey *) key1;
	const PartyKey *b = (const PartyKey *) key2;

	if (a->relid != b->relid || a->len != b->len)
		return 1;
	return memcmp(a->id, b->id, a->len) != 0;
}

/* forget everything; the hash table is made again on first use */
static void
party_cache_reset(void)
{
	cache = NULL;
	ncache_rels = 0;
	pending = NULL;
	npending = 0;
	maxpending = 0;
	if (cache_cxt != NULL)
		MemoryContextReset(cache_cxt);
}

/* an invalidation of one relation, or of all (InvalidOid) */
static void
party_relcache_callback(Datum arg, Oid relid)
{
	if (cache == NULL)
		return;
	for (int i = 0; i < ncache_rels; i++)
	{
		if (relid == InvalidOid || relid == cache_rels[i])
		{
			party_cache_reset();
			return;
		}
	}
}

/* drop the pending entries found by subtransaction subid or a later one */
static void
drop_pending(SubTransactionId from)
{
	int			keep = 0;

	for (int i = 0; i < npending; i++)
	{
		PartyEntry *e = pending[i];

		if (e->subid >= from)
		{
			char	   *id = (char *) e->key.id;

			hash_search(cache, &e->key, HASH_REMOVE, NULL);
			pfree(id);
		}
		else
			pending[keep++] = e;
	}
	npending = keep;
}

static void
party_xact_callback(XactEvent event, void *arg)
{
	if (cache == NULL || npending == 0)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			for (int i = 0; i < npending; i++)
				pending[i]->subid = InvalidSubTransactionId;
			npending = 0;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			drop_pending(TopSubTransactionId);
			break;
		default:
			break;
	}
}

static void
party_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (cache != NULL && npending > 0 && event == SUBXACT_EVENT_ABORT_SUB)
		drop_pending(mySubid);
}

static void
party_cache_init(void)
{
	HASHCTL		ctl;

	if (cache_cxt == NULL)
	{
		cache_cxt = AllocSetContextCreate(TopMemoryContext, "overage party cache",
										  ALLOCSET_DEFAULT_SIZES);
		CacheRegisterRelcacheCallback(party_relcache_callback, (Datum) 0);
		RegisterXactCallback(party_xact_callback, NULL);
		RegisterSubXactCallback(party_subxact_callback, NULL);
	}
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(PartyKey);
	ctl.entrysize = sizeof(PartyEntry);
	ctl.hash = party_key_hash;
	ctl.match = party_key_match;
	ctl.hcxt = cache_cxt;
	cache = hash_create("overage party cache", 1024, &ctl,
						HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}

/*
 * party_cache_known
 *		Has this backend found id (len bytes) in relation relid, in a
 *		committed transaction or earlier in this one?
 */
bool
party_cache_known(Oid relid, const char *id, int len)
{
	PartyKey	key;

	if (cache == NULL)
		return false;
	key.relid = relid;
	key.len = len;
	key.id = id;
	return hash_search(cache, &key, HASH_FIND, NULL) != NULL;
}

/*
 * party_cache_add
 *		id (len bytes) was just found in relation relid by the current
 *		subtransaction.
 */
void
party_cache_add(Oid relid, const char *id, int len)
{
	PartyKey	key;
	PartyEntry *e;
	bool		found;
	char	   *copy;
	int			r;

	if (cache == NULL || hash_get_num_entries(cache) >= PARTY_CACHE_MAX)
	{
		party_cache_reset();
		party_cache_init();
	}
	for (r = 0; r < ncache_rels && cache_rels[r] != relid; r++)
		;
	if (r == ncache_rels)
	{
		if (ncache_rels == PARTY_CACHE_RELS)
			return;				/* not expected: two relations use it */
		cache_rels[ncache_rels++] = relid;
	}
	key.relid = relid;
	key.len = len;
	key.id = id;
	if (hash_search(cache, &key, HASH_FIND, NULL) != NULL)
		return;

	/* allocate first: an entry is never left half made */
	if (npending == maxpending)
	{
		int			n = Max(64, maxpending * 2);

		pending = pending == NULL
			? MemoryContextAlloc(cache_cxt, sizeof(PartyEntry *) * n)
			: repalloc(pending, sizeof(PartyEntry *) * n);
		maxpending = n;
	}
	copy = MemoryContextAlloc(cache_cxt, Max(len, 1));
	memcpy(copy, id, len);
	key.id = copy;
	e = (PartyEntry *) hash_search(cache, &key, HASH_ENTER, &found);
	e->subid = GetCurrentSubTransactionId();
	pending[npending++] = e;
}
