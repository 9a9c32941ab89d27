/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  Keeps the history and audit tables append-only and written only by
 *	  the extension itself.
 *
 * license_quantity, holder_period and assignment_log are derived from the
 * changes of subscription and holder rows by the extension's triggers.  A
 * direct INSERT, UPDATE, DELETE or TRUNCATE by anybody else would make the
 * history disagree with what happened, so history_guard refuses it.  The
 * extension's own writes go through overage_history_exec(), which opens a
 * window (a backend-local depth counter) that is always closed again, on
 * error too.  pg_dump's reload of these rows is the other writer allowed
 * (restore.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/rel.h"

#include "overage.h"
#include "restore.h"
#include "guard.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(history_guard);

static int	history_write_depth = 0;

/* the extension's own writes of a history table, for statements run
 * without overage_history_exec (SPI_execute over transition tables) */
void
overage_history_begin(void)
{
	history_write_depth++;
}

void
overage_history_end(void)
{
	history_write_depth--;
}

/*
 * overage_history_exec
 *		overage_spi_exec() for a statement that writes a history table.
 */
int
overage_history_exec(SPIPlanPtr *cache, const char *sql, int nargs,
					 Oid *argtypes, Datum *values, const char *nulls)
{
	int			rc;

	history_write_depth++;
	PG_TRY();
	{
		rc = overage_spi_exec(cache, sql, nargs, argtypes, values, nulls, 0);
	}
	PG_FINALLY();
	{
		history_write_depth--;
	}
	PG_END_TRY();

	return rc;
}

/*
 * history_guard
 *		BEFORE INSERT/UPDATE/DELETE trigger, per row or per statement, and
 *		BEFORE STATEMENT TRUNCATE trigger.  The refusal does not depend on
 *		the rows, so a table the rating writes in bulk (tens of thousands of
 *		rows per statement) has it per statement.  Optional arguments
 *		replace the detail and the hint of the refusal (for tables whose
 *		rows are derived from something else).
 */
Datum
history_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerEvent event;
	const char *relname;
	const char *detail = "Its rows are derived from changes of subscriptions and overage holders.";
	const char *hint = "Use the overage functions (purchase, set_quantity, cancel, assign_overage, release_overage).";

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "history_guard: not called by trigger manager");
	event = trigdata->tg_event;
	if (!TRIGGER_FIRED_BEFORE(event))
		elog(ERROR, "history_guard: must be fired before the event");

	relname = RelationGetRelationName(trigdata->tg_relation);

	/* optional trigger arguments: the detail and the hint of the refusal */
	if (trigdata->tg_trigger->tgnargs >= 1)
		detail = trigdata->tg_trigger->tgargs[0];
	if (trigdata->tg_trigger->tgnargs >= 2)
		hint = trigdata->tg_trigger->tgargs[1];

	if (TRIGGER_FIRED_BY_TRUNCATE(event))
		ereport(ERROR,
				(errcode(ERRCODE_OVERAGE_HISTORY_READONLY),
				 errmsg("table \"overage.%s\" cannot be truncated", relname),
				 errdetail("It holds billing history that later month closes and audits rely on.")));

	if (!TRIGGER_FIRED_BY_INSERT(event) && !TRIGGER_FIRED_BY_UPDATE(event) &&
		!TRIGGER_FIRED_BY_DELETE(event))
		elog(ERROR, "history_guard: unsupported trigger event");

	/*
	 * The extension's own write, or pg_dump's reload of the rows it wrote
	 * (restore.c): COPY only inserts.
	 */
	if (history_write_depth == 0 &&
		!(TRIGGER_FIRED_BY_INSERT(event) &&
		  overage_restoring(trigdata->tg_relation)))
		ereport(ERROR,
				(errcode(ERRCODE_OVERAGE_HISTORY_READONLY),
				 errmsg("table \"overage.%s\" is written only by the overage extension", relname),
				 errdetail("%s", detail),
				 errhint("%s", hint)));

	if (!TRIGGER_FIRED_FOR_ROW(event))
		return PointerGetDatum(NULL);
	if (TRIGGER_FIRED_BY_UPDATE(event))
		return PointerGetDatum(trigdata->tg_newtuple);
	return PointerGetDatum(trigdata->tg_trigtuple);
}
