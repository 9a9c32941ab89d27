/*-------------------------------------------------------------------------
 *
 * charge_guard.c
 *	  Keeps the charge lines of a closed month immutable.
 *
 *	  AFTER INSERT FOR EACH STATEMENT (transition table): no line may be
 *		inserted into a month that is closed (or that has no billing_month
 *		row); one query per statement, whatever the number of lines.
 *	  BEFORE UPDATE OR DELETE FOR EACH ROW: a line of a closed month cannot
 *		be changed or deleted, nor moved into a closed month.
 *	  BEFORE TRUNCATE: refused (lines of closed months would go).
 *
 * close_month inserts its lines before it marks the month closed, so its
 * own inserts pass; once the month is closed nothing passes but pg_dump's
 * reload of the lines (restore.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "overage.h"
#include "restore.h"
#include "month.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(charge_guard);

static void
refuse_closed(Datum month, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_OVERAGE_MONTH_CLOSED),
			 errmsg("month %s is closed",
					overage_date_str(DatumGetDateADT(month))),
			 errdetail("Charge lines of a closed month cannot be %s.", what),
			 errhint("A closed month is final; correct it in a later month.")));
}

/* is the month closed (true), open (false); error when unknown */
static bool
month_closed(Datum month)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {DATEOID};
	Datum		values[1];
	bool		isnull;
	bool		closed;

	values[0] = month;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	overage_spi_exec(&plan,
					 "SELECT b.closed_at IS NOT NULL FROM overage.billing_month b"
					 " WHERE b.month = $1",
					 1, argtypes, values, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("month %s is not a billing month",
						overage_date_str(DatumGetDateADT(month))),
				 errdetail("Charge lines are written by overage.close_month().")));
	closed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return closed;
}

Datum
charge_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerEvent event;
	TupleDesc	desc;
	int			att_month;
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "charge_guard: not called by trigger manager");
	event = trigdata->tg_event;
	desc = RelationGetDescr(trigdata->tg_relation);
	att_month = SPI_fnumber(desc, "month");
	if (att_month <= 0)
		elog(ERROR, "charge_guard: overage.charge lacks column \"month\"");

	if (TRIGGER_FIRED_BY_TRUNCATE(event))
		ereport(ERROR,
				(errcode(ERRCODE_OVERAGE_MONTH_CLOSED),
				 errmsg("table \"overage.charge\" cannot be truncated"),
				 errdetail("It holds the charge lines of closed months, which are final.")));

	if (TRIGGER_FIRED_BY_INSERT(event) && TRIGGER_FIRED_AFTER(event) &&
		TRIGGER_FIRED_FOR_STATEMENT(event))
	{
		Tuplestorestate *store = trigdata->tg_newtable;
		TupleTableSlot *slot;
		DateADT		prev = DATEVAL_NOBEGIN;

		if (store == NULL)
			elog(ERROR, "charge_guard: no transition table");
		/* pg_dump's reload of the lines of closed months (restore.c) */
		if (overage_restoring(trigdata->tg_relation))
			return PointerGetDatum(NULL);
		slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
		tuplestore_rescan(store);
		/* lines come month by month: check each new month once */
		while (tuplestore_gettupleslot(store, true, false, slot))
		{
			DateADT		m = DatumGetDateADT(slot_getattr(slot, att_month, &isnull));

			if (m == prev)
				continue;
			prev = m;
			if (month_closed(DateADTGetDatum(m)))
				refuse_closed(DateADTGetDatum(m), "added");
		}
		ExecDropSingleTupleTableSlot(slot);
		return PointerGetDatum(NULL);
	}

	if (!TRIGGER_FIRED_BEFORE(event) || !TRIGGER_FIRED_FOR_ROW(event) ||
		!(TRIGGER_FIRED_BY_UPDATE(event) || TRIGGER_FIRED_BY_DELETE(event)))
		elog(ERROR, "charge_guard: unsupported trigger event");

	{
		Datum		m = heap_getattr(trigdata->tg_trigtuple, att_month, desc, &isnull);

		if (month_closed(m))
			refuse_closed(m, TRIGGER_FIRED_BY_UPDATE(event) ? "changed" : "deleted");
		if (TRIGGER_FIRED_BY_UPDATE(event))
		{
			Datum		nm = heap_getattr(trigdata->tg_newtuple, att_month, desc, &isnull);

			if (month_closed(nm))
				refuse_closed(nm, "added");
			return PointerGetDatum(trigdata->tg_newtuple);
		}
	}
	return PointerGetDatum(trigdata->tg_trigtuple);
}
