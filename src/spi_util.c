/*-------------------------------------------------------------------------
 *
 * spi_util.c
 *	  Small helpers around SPI for the extension's control paths: cached
 *	  plans, reading columns of trigger tuples, and text for messages.
 *
 * Plans are prepared once per backend and kept (SPI_keepplan).  The C
 * functions that use them are declared with a pinned search_path, and every
 * statement names the extension's schema, so a caller's search_path cannot
 * change what a cached statement means.
 *
 * On a Citus worker, the rating of one shard (overage._rate_shard, shard.c)
 * runs the same statements against the shard's co-located tables: while a
 * relation map is set (overage_spi_map), every "overage.<table>" the map
 * names is rewritten to its shard, and the plan is prepared for that call
 * only, never cached.  Without a map nothing changes (one pointer test).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "catalog/namespace.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/tuplestore.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "overage.h"
#include "spi_util.h"

/* the snapshot every statement runs with, while pinned */
static Snapshot pinned_snapshot = NULL;

/* the relation map of overage_spi_map, NULL when none is set */
static const OverageRelMap *rel_map = NULL;

/*
 * overage_spi_map
 *		Set (or, with NULL, clear) the relation map: the statements run
 *		through overage_spi_exec and overage_spi_prepare name map's
 *		relations instead of the extension's tables.  The caller clears it
 *		on error too (PG_FINALLY).
 */
void
overage_spi_map(const OverageRelMap *map)
{
	rel_map = map;
}

bool
overage_spi_mapped(void)
{
	return rel_map != NULL;
}

static inline bool
ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '_' || c == '$';
}

/*
 * map_sql
 *		sql with every "overage.<table>" of the relation map replaced by its
 *		relation: a whole name only ("overage.usage" is not a prefix of
 *		"overage.usage_month").
 */
static char *
map_sql(const char *sql)
{
	StringInfoData buf;
	const char *p = sql;

	initStringInfo(&buf);
	while (*p)
	{
		bool		done = false;

		if (strncmp(p, "overage.", 8) == 0 && (p == sql || !ident_char(p[-1])))
		{
			for (int i = 0; i < rel_map->n; i++)
			{
				size_t		len = strlen(rel_map->from[i]);

				if (strncmp(p + 8, rel_map->from[i], len) == 0 &&
					!ident_char(p[8 + len]))
				{
					appendStringInfoString(&buf, rel_map->to[i]);
					p += 8 + len;
					done = true;
					break;
				}
			}
		}
		if (!done)
			appendStringInfoChar(&buf, *p++);
	}
	return buf.data;
}

/*
 * overage_spi_prepare
 *		A plan of sql, cached in *cache (prepared on first use and kept), or
 *		while a relation map is set, of the mapped statement, for this SPI
 *		connection only.
 */
SPIPlanPtr
overage_spi_prepare(SPIPlanPtr *cache, const char *sql, int nargs,
					Oid *argtypes)
{
	SPIPlanPtr	plan;

	if (rel_map != NULL)
	{
		char	   *mapped = map_sql(sql);

		plan = SPI_prepare(mapped, nargs, argtypes);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s",
				 mapped, SPI_result_code_string(SPI_result));
		return plan;
	}
	if (*cache == NULL)
	{
		plan = SPI_prepare(sql, nargs, argtypes);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s",
				 sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*cache = plan;
	}
	return *cache;
}

/*
 * overage_spi_pin / overage_spi_unpin
 *		Run every statement of overage_spi_exec (and the executor reads of
 *		the caller, through the active snapshot) with one snapshot, taken
 *		now, instead of a fresh one per statement: the live rating reads
 *		the rated state, the pending calls and the calls as of one instant,
 *		and rate_pending deletes exactly the pending rows whose calls it
 *		reads.  Statements still see the transaction's own writes (the
 *		command id is advanced).  The caller unpins in PG_FINALLY.
 */
void
overage_spi_pin(void)
{
	Assert(pinned_snapshot == NULL);
	pinned_snapshot = RegisterSnapshot(GetTransactionSnapshot());
	PushActiveSnapshot(pinned_snapshot);
}

void
overage_spi_unpin(bool ok)
{
	if (pinned_snapshot == NULL)
		return;
	if (ok)
	{
		PopActiveSnapshot();
		UnregisterSnapshot(pinned_snapshot);
	}
	/* on error the transaction's abort releases both */
	pinned_snapshot = NULL;
}

bool
overage_spi_pinned(void)
{
	return pinned_snapshot != NULL;
}

/*
 * overage_spi_exec
 *		Run a statement through a plan cached in *cache, preparing it on
 *		first use.  Not read-only: in READ COMMITTED every call sees a fresh
 *		snapshot, which is what the callers want after taking row locks --
 *		unless a snapshot is pinned (above).
 */
int
overage_spi_exec(SPIPlanPtr *cache, const char *sql, int nargs,
				 Oid *argtypes, Datum *values, const char *nulls,
				 long count)
{
	SPIPlanPtr	plan = overage_spi_prepare(cache, sql, nargs, argtypes);
	int			rc;

	if (pinned_snapshot != NULL)
		rc = SPI_execute_snapshot(plan, values, nulls, pinned_snapshot,
								  InvalidSnapshot, false, true, count);
	else
		rc = SPI_execute_plan(plan, values, nulls, false, count);
	if (rc < 0)
		elog(ERROR, "SPI_execute_plan failed for \"%s\": %s",
			 sql, SPI_result_code_string(rc));
	return rc;
}

/*
 * overage_attr
 *		The value of column "name" of tuple, by name.  Column names are the
 *		extension's own, so a missing one is an internal error.
 */
Datum
overage_attr(HeapTuple tuple, TupleDesc desc, const char *name, bool *isnull)
{
	int			attnum = SPI_fnumber(desc, name);

	if (attnum <= 0)
		elog(ERROR, "column \"%s\" not found", name);
	return SPI_getbinval(tuple, desc, attnum, isnull);
}

/* Text of a text, uuid or timestamptz Datum for messages; "None" for NULL. */
/* column col of an SPI result row as a C string, NULL for NULL */
char *
overage_spi_text(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

char *
overage_text_str(Datum d, bool isnull)
{
	return isnull ? pstrdup("None") : TextDatumGetCString(d);
}

char *
overage_uuid_str(Datum d, bool isnull)
{
	return isnull ? pstrdup("None") :
		DatumGetCString(DirectFunctionCall1(uuid_out, d));
}

char *
overage_time_str(Datum d, bool isnull)
{
	return isnull ? pstrdup("-") :
		pstrdup(timestamptz_to_str(DatumGetTimestampTz(d)));
}

/*
 * overage_init_materialized_srf
 *		Set up a set-returning function for materialize mode: a tuplestore
 *		and the result descriptor in rsinfo.  InitMaterializedSRF from
 *		PostgreSQL 15 on; the same steps by hand before.
 */
void
overage_init_materialized_srf(FunctionCallInfo fcinfo)
{
#if PG_VERSION_NUM >= 150000
	InitMaterializedSRF(fcinfo, 0);
#else
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	tupdesc;
	MemoryContext old;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->setDesc = CreateTupleDescCopy(tupdesc);
	MemoryContextSwitchTo(old);
#endif
}

/*
 * overage_has_column
 *		Has the extension's table this column?  The library also serves a
 *		database still at 1.0 or 1.1, whose tables lack 1.2's columns
 *		(license_quantity.customer_id).
 */
bool
overage_has_column(const char *table, const char *column)
{
	Oid			nsp = get_namespace_oid("overage", true);
	Oid			rel = OidIsValid(nsp) ? get_relname_relid(table, nsp) : InvalidOid;

	return OidIsValid(rel) && get_attnum(rel, column) != InvalidAttrNumber;
}

/*
 * overage_array
 *		A one-dimensional array (from 1) of n datums of elemtype, NULL where
 *		nulls[i] (nulls may be NULL: none), for the statements that take
 *		their rows as parallel arrays.
 */
Datum
overage_array(Datum *values, bool *nulls, int n, Oid elemtype)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs, elemtype,
											  typlen, typbyval, typalign));
}
