/*-------------------------------------------------------------------------
 *
 * alerts.c
 *	  overage._raise_alerts: stores the alerts a rating found, each once
 *	  per (month, kind, partner, customer, service, threshold), and
 *	  announces every row it stored on the NOTIFY channel overage_alert,
 *	  the row as JSON (what row_to_json makes of it).
 *
 *	  In C rather than PL/pgSQL for the announcement: a fresh month of a
 *	  large operator raises tens of thousands of alerts in one rating, and
 *	  row_to_json looks up every column's type and output function again
 *	  for every row (about a third of the alerts' cost at 40,000 alerts).
 *	  Here the columns are classified once per call and each row's JSON is
 *	  written straight into one buffer.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "common/jsonapi.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"

#include "spi_util.h"

PG_FUNCTION_INFO_V1(raise_alerts);

#define ALERT_CHANNEL "overage_alert"
#define NARRAYS 9				/* kind .. known_new: arguments 2 to 10 */

/* how a column of overage.alert is written in JSON, as row_to_json does */
typedef enum AlertJsonKind
{
	AJ_TEXT,					/* a string, escaped */
	AJ_NUMBER,					/* its output, bare when a valid number */
	AJ_DATETIME					/* ISO 8601, as JsonEncodeDateTime */
} AlertJsonKind;

typedef struct AlertColumn
{
	const char *name;
	Oid			type;
	AlertJsonKind kind;
	FmgrInfo	out;
} AlertColumn;

static AlertColumn *
alert_columns(TupleDesc desc)
{
	AlertColumn *cols = palloc0(sizeof(AlertColumn) * desc->natts);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Oid			out;
		bool		varlena;

		cols[i].name = NameStr(att->attname);
		cols[i].type = att->atttypid;
		switch (att->atttypid)
		{
			case INT8OID:
			case NUMERICOID:
				cols[i].kind = AJ_NUMBER;
				break;
			case DATEOID:
			case TIMESTAMPTZOID:
				cols[i].kind = AJ_DATETIME;
				break;
			case TEXTOID:
				cols[i].kind = AJ_TEXT;
				break;
			default:
				elog(ERROR, "_raise_alerts: column \"%s\" of overage.alert has type %s, which it cannot announce",
					 cols[i].name, format_type_be(att->atttypid));
		}
		getTypeOutputInfo(att->atttypid, &out, &varlena);
		fmgr_info(out, &cols[i].out);
	}
	return cols;
}

/* the row as JSON, as row_to_json(row) writes it, into buf */
static void
alert_json(StringInfo buf, HeapTuple tup, TupleDesc desc, AlertColumn *cols)
{
	resetStringInfo(buf);
	appendStringInfoChar(buf, '{');
	for (int i = 0; i < desc->natts; i++)
	{
		bool		isnull;
		Datum		v = heap_getattr(tup, i + 1, desc, &isnull);

		if (i > 0)
			appendStringInfoChar(buf, ',');
		escape_json(buf, cols[i].name);
		appendStringInfoChar(buf, ':');
		if (isnull)
		{
			appendStringInfoString(buf, "null");
			continue;
		}
		switch (cols[i].kind)
		{
			case AJ_NUMBER:
				{
					char	   *s = OutputFunctionCall(&cols[i].out, v);

					if (IsValidJsonNumber(s, strlen(s)))
						appendStringInfoString(buf, s);
					else
						escape_json(buf, s);
					pfree(s);
				}
				break;
			case AJ_DATETIME:
				{
					char		dt[MAXDATELEN + 1];

					JsonEncodeDateTime(dt, v, cols[i].type, NULL);
					appendStringInfoChar(buf, '"');
					appendStringInfoString(buf, dt);
					appendStringInfoChar(buf, '"');
				}
				break;
			case AJ_TEXT:
				{
					char	   *s = TextDatumGetCString(v);

					escape_json(buf, s);
					pfree(s);
				}
				break;
		}
	}
	appendStringInfoChar(buf, '}');
}

/* announce the rows the last statement returned, in their order */
static void
announce(void)
{
	TupleDesc	desc = SPI_tuptable->tupdesc;
	AlertColumn *cols = alert_columns(desc);
	StringInfoData buf;

	initStringInfo(&buf);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		alert_json(&buf, SPI_tuptable->vals[i], desc, cols);
		Async_Notify(ALERT_CHANNEL, buf.data);
	}
	pfree(buf.data);
	SPI_freetuptable(SPI_tuptable);
}

/*
 * store
 *		One INSERT of the rows (the arguments' arrays, in their order) that
 *		plainly is true for: with ON CONFLICT DO NOTHING or without.  The
 *		stored rows are returned in alert_id order (the order of the
 *		arrays) and announced.  Returns how many were stored.
 */
static uint64
store(Datum *args, bool *argnulls, bool plainly, bool trust)
{
	static SPIPlanPtr plain_plan = NULL;
	static SPIPlanPtr others_plan = NULL;
	Oid			types[11] = {DATEOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		TEXTARRAYOID, NUMERICARRAYOID, NUMERICARRAYOID, NUMERICARRAYOID,
	TIMESTAMPTZARRAYOID, BOOLARRAYOID, BOOLOID};
	Datum		values[11];
	char		nulls[11];
	uint64		stored;

#define ALERT_INSERT \
	"INSERT INTO overage.alert AS x" \
	" (month, kind, partner_id, customer_id, service_id, threshold, value," \
	"  limit_value, crossed_at, raised_at)" \
	" SELECT $1, r.kind, r.partner_id, r.customer_id, r.service_id, r.threshold," \
	"  r.value, r.limit_value, r.crossed_at, pg_catalog.clock_timestamp()" \
	" FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4)," \
	"  pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7)," \
	"  pg_catalog.unnest($8), pg_catalog.unnest($9), pg_catalog.unnest($10))" \
	"  AS r(kind, partner_id, customer_id, service_id, threshold, value," \
	"   limit_value, crossed_at, known_new)"

	for (int i = 0; i < 10; i++)
	{
		values[i] = args[i];
		nulls[i] = argnulls[i] ? 'n' : ' ';
	}
	values[10] = BoolGetDatum(trust);
	nulls[10] = ' ';
	if (plainly)
		overage_spi_exec(&plain_plan,
						 ALERT_INSERT
						 " WHERE $11 AND r.known_new IS TRUE"
						 " RETURNING x.*",
						 11, types, values, nulls, 0);
	else
		overage_spi_exec(&others_plan,
						 ALERT_INSERT
						 " WHERE NOT ($11 AND r.known_new IS TRUE)"
						 " ON CONFLICT ON CONSTRAINT alert_once DO NOTHING"
						 " RETURNING x.*",
						 11, types, values, nulls, 0);
	stored = SPI_processed;
	announce();
	return stored;
}

/*
 * raise_alerts
 *		overage._raise_alerts(month, kind[], partner_id[], customer_id[],
 *		service_id[], threshold[], value[], limit_value[], crossed_at[],
 *		known_new[] DEFAULT NULL) RETURNS integer
 *
 *		Stored once: a row whose (month, kind, partner, customer, service,
 *		threshold) is stored already, by this call, an earlier rating or a
 *		concurrent one (which this one waits for), is skipped (ON CONFLICT
 *		DO NOTHING).  The rows the caller knows to be new (the pool alerts
 *		of groups that had no rated state: a fresh month's are all of them)
 *		are inserted plainly first, in a subtransaction, without ON
 *		CONFLICT's speculative insertion; should one be stored after all,
 *		the unique violation undoes that insert and its announcements, and
 *		every row goes the ON CONFLICT way.  The plain rows take the lower
 *		alert_ids, so the rows are announced in alert_id order; NOTIFY
 *		delivers at commit, so a rating rolled back announces nothing.
 */
Datum
raise_alerts(PG_FUNCTION_ARGS)
{
	Datum		args[10];
	bool		argnulls[10];
	int			card[NARRAYS];
	volatile bool trust = false;
	volatile bool all_new = false;	/* known_new true for every row */
	bool		same = true;
	volatile uint64 raised = 0;

	for (int i = 0; i < 10; i++)
	{
		argnulls[i] = PG_ARGISNULL(i);
		args[i] = argnulls[i] ? (Datum) 0 : PG_GETARG_DATUM(i);
	}
	for (int i = 0; i < NARRAYS; i++)
	{
		ArrayType  *a;

		card[i] = -1;
		if (argnulls[i + 1])
			continue;
		a = DatumGetArrayTypeP(args[i + 1]);
		args[i + 1] = PointerGetDatum(a);
		card[i] = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
		if (i == NARRAYS - 1)
		{
			/* is any element of known_new true? */
			Datum	   *b;
			bool	   *bn;
			int			n;

			deconstruct_array(a, BOOLOID, 1, true, TYPALIGN_CHAR, &b, &bn, &n);
			all_new = true;
			for (int j = 0; j < n; j++)
			{
				if (!bn[j] && DatumGetBool(b[j]))
					trust = true;
				else
					all_new = false;
			}
		}
	}
	for (int i = 1; i < NARRAYS; i++)
		if (card[i] != card[0] && !(i == NARRAYS - 1 && card[i] < 0))
			same = false;
	if (card[0] < 0 || !same)
	{
		StringInfoData d;
		const char *names[NARRAYS] = {"kind", "partner_id", "customer_id", "service_id",
			"threshold", "value", "limit_value", "crossed_at", "known_new"};

		initStringInfo(&d);
		for (int i = 0; i < NARRAYS; i++)
		{
			appendStringInfo(&d, "%s%s ", i > 0 ? ", " : "", names[i]);
			if (card[i] >= 0)
				appendStringInfo(&d, "%d", card[i]);
			else if (i == NARRAYS - 1)
				appendStringInfoString(&d, "NULL");
		}
		appendStringInfoChar(&d, '.');
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("_raise_alerts: the nine arguments' arrays differ in length"),
				 errdetail_internal("%s", d.data)));
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (trust)
	{
		MemoryContext cxt = CurrentMemoryContext;
		ResourceOwner owner = CurrentResourceOwner;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			raised = store(args, argnulls, true, true);
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
			if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION)
				ReThrowError(edata);
			FreeErrorData(edata);
			raised = 0;
			trust = false;
		}
		PG_END_TRY();
	}
	/* the other rows, unless every row was stored plainly */
	if (!(trust && all_new && card[NARRAYS - 1] == card[0]))
		raised += store(args, argnulls, false, trust);

	SPI_finish();
	PG_RETURN_INT32((int32) raised);
}
