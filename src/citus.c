/*-------------------------------------------------------------------------
 *
 * citus.c
 *	  What the C side needs to know about a Citus cluster (README "Scaling
 *	  out"): whether overage.distribute() made the extension's tables Citus
 *	  tables, and the local placement of a reference table.
 *
 * The library does not link against Citus: it reads Citus' catalog tables
 * (pg_dist_partition, pg_dist_shard) by name, so the same build serves a
 * single node without Citus.  On a cluster every node (coordinator and
 * workers) has the metadata, so the triggers that fire on the workers'
 * shards see the same answer as the coordinator.
 *
 * Once distributed, overage.usage stays a Citus table (there is no way
 * back in the API), so a true answer is remembered for that table; a false
 * one is asked again (a scan of pg_dist_partition, and nothing at all
 * without Citus).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "citus.h"

/* does pg_catalog.pg_dist_partition have a row for relation relid? */
static bool
citus_table(Oid relid)
{
	Oid			dist = get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE);
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	if (!OidIsValid(dist))
		return false;
	rel = table_open(dist, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (!found && (tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, 1, RelationGetDescr(rel), &isnull);

		/* logicalrelid, the first column */
		found = !isnull && DatumGetObjectId(d) == relid;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * overage_is_distributed
 *		Has overage.distribute() run in this database: is overage.usage a
 *		Citus table?  False without the citus extension.
 */
bool
overage_is_distributed(void)
{
	static Oid	distributed_usage = InvalidOid;
	Oid			nsp;
	Oid			usage;

	if (!OidIsValid(get_extension_oid("citus", true)))
		return false;
	nsp = get_namespace_oid("overage", true);
	usage = OidIsValid(nsp) ? get_relname_relid("usage", nsp) : InvalidOid;
	if (!OidIsValid(usage))
		return false;
	/* the answer is kept for this overage.usage (DROP and CREATE EXTENSION
	 * make another) */
	if (usage == distributed_usage)
		return true;
	if (!citus_table(usage))
		return false;
	distributed_usage = usage;
	return true;
}

/*
 * overage_local_placement
 *		The qualified name of this node's placement of a reference table of
 *		the extension ("overage.billing_month_102008"), for a trigger on a
 *		worker's shard that must read (and lock) the local copy only: a
 *		query naming the reference table itself would be a distributed
 *		query, which Citus refuses inside a shard's trigger when it needs
 *		another node.  Needs SPI connected.
 */
char *
overage_local_placement(const char *relname)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	char	   *name;

	values[0] = CStringGetTextDatum(psprintf("overage.%s", relname));
	if (SPI_execute_with_args("SELECT s.shardid FROM pg_catalog.pg_dist_shard s"
							  " WHERE s.logicalrelid = $1::regclass",
							  1, argtypes, values, NULL, true, 2) != SPI_OK_SELECT
		|| SPI_processed != 1)
		elog(ERROR, "no single shard of reference table overage.%s", relname);
	name = psprintf("overage.%s_%s", relname,
					SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	return name;
}

PG_FUNCTION_INFO_V1(overage_distributed);

/*
 * overage._distributed() RETURNS boolean: overage_is_distributed for the
 * SQL functions that work differently on a cluster (close_month).
 */
Datum
overage_distributed(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(overage_is_distributed());
}
