/*-------------------------------------------------------------------------
 *
 * citus.c
 *	  What the C side needs to know about a Citus cluster (README "Scaling
 *	  out"): whether overage.distribute() made the extension's tables Citus
 *	  tables, the local placement of a reference table, and the relations
 *	  of one shard of the co-location group (the close per shard).
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
#include "spi_util.h"

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

/*
 * overage_shard_relations
 *		The relation map (spi_util.c) of the shard whose placement of
 *		overage.usage is the local relation shard: every table of the
 *		co-location group to its shard of the same hash range, every
 *		reference table to its placement, all on this node (else an
 *		error).  For _rate_shard, run by the coordinator on every shard's
 *		node (README "Scaling out": the close on the workers).  Needs SPI
 *		connected; the map lives in the current memory context.
 */
OverageRelMap *
overage_shard_relations(Oid shard)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	OverageRelMap *map;
	bool		found = false;

	values[0] = ObjectIdGetDatum(shard);
	if (SPI_execute_with_args(
							  "SELECT c.relname::text, pg_catalog.shard_name(s.logicalrelid, s.shardid),"
							  " pg_catalog.to_regclass(pg_catalog.shard_name(s.logicalrelid, s.shardid)) IS NOT NULL"
							  " FROM pg_catalog.pg_dist_shard u"
							  " JOIN pg_catalog.pg_dist_partition pu ON pu.logicalrelid = u.logicalrelid"
							  " JOIN pg_catalog.pg_dist_partition p"
							  "  ON p.colocationid = pu.colocationid OR p.partmethod = 'n'"
							  " JOIN pg_catalog.pg_dist_shard s ON s.logicalrelid = p.logicalrelid"
							  "  AND (p.partmethod = 'n' OR s.shardminvalue = u.shardminvalue)"
							  " JOIN pg_catalog.pg_class c ON c.oid = p.logicalrelid"
							  " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
							  " WHERE u.logicalrelid = 'overage.usage'::pg_catalog.regclass"
							  "  AND pg_catalog.to_regclass(pg_catalog.shard_name(u.logicalrelid, u.shardid)) = $1"
							  "  AND n.nspname = 'overage'",
							  1, argtypes, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "cannot read the shards of overage.usage");
	map = palloc0(sizeof(OverageRelMap));
	map->from = palloc0(sizeof(char *) * (SPI_processed + 1));
	map->to = palloc0(sizeof(char *) * (SPI_processed + 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *rel = SPI_getvalue(tup, desc, 1);
		char	   *name = SPI_getvalue(tup, desc, 2);
		bool		isnull;

		if (!DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull)))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("shard \"%s\" is not on this node", name),
					 errdetail("A shard is rated on the node that holds it, with the shards co-located with it and the node's placements of the reference tables.")));
		if (strcmp(rel, "usage") == 0)
			found = true;
		map->from[map->n] = rel;
		map->to[map->n] = name;
		map->n++;
	}
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("relation \"%s\" is not a shard of overage.usage on this node",
						get_rel_name(shard) ? get_rel_name(shard) : "?"),
				 errhint("Give the local shard of overage.usage, as run_command_on_shards('overage.usage', ...) names it.")));
	return map;
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
