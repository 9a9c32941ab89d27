/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  Live rating (SPEC 1.2): the settings overage.rate_interval and
 *	  overage.database, and the background worker that calls
 *	  <schema>.rate_pending() in that database every interval.
 *
 * The worker is a thin driver, as pg_partman's is: a latch loop that runs
 * one SQL function per pass, in a transaction of its own.  The rating is
 * in that function, which also runs without the worker (by hand, or
 * before a close).  The worker is registered only when the library is in
 * shared_preload_libraries; with overage.rate_interval = 0 (the default)
 * it idles until a reload sets an interval.  It connects to
 * overage.database as the bootstrap superuser when it starts; a reload
 * that changes overage.database makes it exit, and the postmaster starts
 * it again (after its restart time, 10 s) in the new database.
 *
 * A pass first looks the extension up (pg_extension.extnamespace) and
 * checks that its version has rate_pending(); a database without the
 * extension, or with a version older than 1.2's live rating, is skipped
 * quietly (DEBUG1) and looked at again next interval.  An error in a pass
 * is reported to the server log, the pass's transaction is aborted and
 * the worker waits for the next interval: it does not exit.  The interval
 * runs from the end of a pass, so a pass longer than the interval does
 * not pile passes up.
 *
 * Every pass logs at DEBUG1 the calls it rated, how long it took, and the
 * memory the worker's TopMemoryContext holds (its children included),
 * and leaves the same in pg_stat_activity.query of the worker while it
 * waits.  What a pass allocates goes with its transaction, or with the
 * pass's own context, which is reset before the next pass, so the
 * worker's memory stays bounded however many passes it runs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "worker.h"

/* the longest overage.rate_interval: one day */
#define OVERAGE_RATE_INTERVAL_MAX	86400
/* how long an idle worker (rate_interval = 0) sleeps between wake-ups */
#define OVERAGE_IDLE_TIMEOUT_MS		(3600 * 1000L)
/* seconds the postmaster waits before starting a worker that exited */
#define OVERAGE_WORKER_RESTART_S	10

/*
 * GUC variables.  overage.database cannot be PGC_POSTMASTER: a backend
 * that loads the library after startup (CREATE EXTENSION, any call of its
 * C functions without the preload) may not define such a variable (FATAL),
 * and defining it only when preloaded would leave the prefix unreserved.
 */
static int	overage_rate_interval = 0;
static char *overage_database = NULL;

/* the database the worker connected to (overage.database at its start) */
static char *worker_database = NULL;

/* finds the extension's schema, version and whether it has rate_pending() */
static const char *const lookup_sql =
"SELECT n.nspname, e.extversion,"
" pg_catalog.to_regprocedure(pg_catalog.quote_ident(n.nspname)"
" OPERATOR(pg_catalog.||) '.rate_pending()') IS NOT NULL"
" FROM pg_catalog.pg_extension e"
" JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace"
" WHERE e.extname OPERATOR(pg_catalog.=) 'overage'";

/*
 * overage_worker_init
 *		Defines the settings in every process that loads the library (so
 *		SHOW works and SET of a misspelt overage.* name is refused), and
 *		registers the worker when the library is being preloaded.
 */
void
overage_worker_init(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("overage.rate_interval",
							"Seconds between passes of the background rating worker.",
							"0 turns live rating off.  The worker runs only when "
							"the library is in shared_preload_libraries.",
							&overage_rate_interval,
							0, 0, OVERAGE_RATE_INTERVAL_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomStringVariable("overage.database",
							   "Database in which the background rating worker rates calls.",
							   "The worker connects to it when it starts; after a "
							   "reload that changes it, the worker exits and the "
							   "postmaster starts it again in the new database.",
							   &overage_database,
							   "postgres",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("overage");
#else
	EmitWarningsOnPlaceholders("overage");
#endif

	if (!process_shared_preload_libraries_in_progress)
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = OVERAGE_WORKER_RESTART_S;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "overage");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "overage_rating_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "overage rating worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "overage rating worker");
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&worker);
}

/* names the pass in the context of every error it reports */
static void
rating_pass_error_context(void *arg)
{
	errcontext("background rating pass of the overage rating worker in database \"%s\"",
			   (const char *) arg);
}

/*
 * rating_pass
 *		One pass, in a transaction of its own: look the extension up and,
 *		when its version has it, call rate_pending().  Returns the summary
 *		that pg_stat_activity shows until the next pass, allocated in the
 *		caller's memory context.  Errors propagate to the caller.
 */
static char *
rating_pass(void)
{
	MemoryContext pass_cxt = CurrentMemoryContext;
	ErrorContextCallback errcallback;
	TimestampTz start = GetCurrentTimestamp();
	bool		installed = false;
	bool		has_function = false;
	char	   *version = NULL;
	int64		rated = 0;
	long		elapsed_ms;
	Size		memory;
	char	   *summary;
	int			ret;

	errcallback.callback = rating_pass_error_context;
	errcallback.arg = worker_database;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());

	debug_query_string = lookup_sql;
	pgstat_report_activity(STATE_RUNNING, lookup_sql);
	ret = SPI_execute(lookup_sql, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "overage rating worker: looking up the extension failed: %s",
			 SPI_result_code_string(ret));

	if (SPI_processed > 0)
	{
		HeapTuple	tuple = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *schema = SPI_getvalue(tuple, desc, 1);
		bool		isnull;

		installed = true;
		version = MemoryContextStrdup(pass_cxt, SPI_getvalue(tuple, desc, 2));
		has_function = DatumGetBool(SPI_getbinval(tuple, desc, 3, &isnull));

		if (has_function)
		{
			char	   *sql = psprintf("SELECT %s.rate_pending()::pg_catalog.int8",
									   quote_identifier(schema));
			Datum		d;

			SetCurrentStatementStartTimestamp();
			debug_query_string = sql;
			pgstat_report_activity(STATE_RUNNING, sql);
			ret = SPI_execute(sql, false, 1);
			if (ret != SPI_OK_SELECT || SPI_processed != 1)
				elog(ERROR, "overage rating worker: %s failed: %s",
					 sql, SPI_result_code_string(ret));
			d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
							  1, &isnull);
			rated = isnull ? 0 : DatumGetInt64(d);
		}
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	debug_query_string = NULL;
	pgstat_report_stat(true);

	/* the commit left TopMemoryContext current: what follows is the pass's */
	MemoryContextSwitchTo(pass_cxt);
	error_context_stack = errcallback.previous;

	elapsed_ms = TimestampDifferenceMilliseconds(start, GetCurrentTimestamp());
	memory = MemoryContextMemAllocated(TopMemoryContext, true);

	if (!installed)
	{
		ereport(DEBUG1,
				(errmsg("overage rating worker: extension \"overage\" is not installed in database \"%s\", nothing to rate; worker memory %zu bytes",
						worker_database, memory)));
		summary = psprintf("overage rating worker: extension \"overage\" is not installed in this database; memory %zu bytes",
						   memory);
	}
	else if (!has_function)
	{
		ereport(DEBUG1,
				(errmsg("overage rating worker: extension \"overage\" version %s in database \"%s\" has no rate_pending(), nothing to rate; worker memory %zu bytes",
						version, worker_database, memory)));
		summary = psprintf("overage rating worker: extension \"overage\" version %s has no rate_pending(); memory %zu bytes",
						   version, memory);
	}
	else
	{
		ereport(DEBUG1,
				(errmsg("overage rating worker: pass rated %lld calls in %ld ms; worker memory %zu bytes",
						(long long) rated, elapsed_ms, memory)));
		summary = psprintf("overage rating worker: last pass rated %lld calls in %ld ms; memory %zu bytes",
						   (long long) rated, elapsed_ms, memory);
	}
	return summary;
}

/*
 * run_pass
 *		A pass that cannot end the worker: an error is reported to the
 *		server log and its transaction aborted.  pg_stat_activity shows the
 *		outcome until the next pass.  What the pass allocated outside its
 *		transaction is in pass_cxt, reset here before the next pass.
 */
static void
run_pass(MemoryContext pass_cxt)
{
	char	   *volatile summary = NULL;

	MemoryContextReset(pass_cxt);
	MemoryContextSwitchTo(pass_cxt);
	PG_TRY();
	{
		summary = rating_pass();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(pass_cxt);
		edata = CopyErrorData();
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		debug_query_string = NULL;
		MemoryContextSwitchTo(pass_cxt);
		summary = psprintf("overage rating worker: last pass failed: %s",
						   edata->message ? edata->message : "?");
		RESUME_INTERRUPTS();
	}
	PG_END_TRY();

	pgstat_report_activity(STATE_IDLE, summary);
	MemoryContextSwitchTo(TopMemoryContext);
}

/*
 * overage_rating_worker_main
 *		The worker: connect to overage.database as the bootstrap superuser
 *		and run a pass every overage.rate_interval seconds, measured from
 *		the end of the previous pass, until SIGTERM or postmaster death.
 */
void
overage_rating_worker_main(Datum main_arg)
{
	MemoryContext pass_cxt;
	TimestampTz last_pass_end;
	bool		idle_reported = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	worker_database = MemoryContextStrdup(TopMemoryContext, overage_database);
	BackgroundWorkerInitializeConnection(worker_database, NULL, 0);

	/*
	 * The call is schema-qualified; a fixed search_path keeps whatever a
	 * role or database setting puts first out of the pass as well.
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp",
					PGC_SUSET, PGC_S_OVERRIDE);

	pass_cxt = AllocSetContextCreate(TopMemoryContext,
									 "overage rating pass",
									 ALLOCSET_DEFAULT_SIZES);

	ereport(LOG,
			(errmsg("overage rating worker started in database \"%s\" with overage.rate_interval = %d s",
					worker_database, overage_rate_interval)));

	/* a first pass one interval after the start */
	last_pass_end = GetCurrentTimestamp();
	pgstat_report_activity(STATE_IDLE, "overage rating worker: started");

	for (;;)
	{
		long		timeout_ms;

		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			if (strcmp(overage_database, worker_database) != 0)
			{
				/* exit code 1: the postmaster restarts the worker */
				ereport(LOG,
						(errmsg("overage rating worker: overage.database changed from \"%s\" to \"%s\", restarting in the new database",
								worker_database, overage_database)));
				proc_exit(1);
			}
		}

		if (overage_rate_interval <= 0)
		{
			if (!idle_reported)
			{
				pgstat_report_activity(STATE_IDLE,
									   "overage rating worker: off (overage.rate_interval = 0)");
				idle_reported = true;
			}
			timeout_ms = OVERAGE_IDLE_TIMEOUT_MS;
		}
		else
		{
			TimestampTz now = GetCurrentTimestamp();
			TimestampTz due = TimestampTzPlusMilliseconds(last_pass_end,
														  overage_rate_interval * 1000L);

			idle_reported = false;
			if (now >= due)
			{
				run_pass(pass_cxt);
				MemoryContextSwitchTo(TopMemoryContext);
				last_pass_end = GetCurrentTimestamp();
				timeout_ms = overage_rate_interval * 1000L;
			}
			else
				timeout_ms = TimestampDifferenceMilliseconds(now, due);
		}

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout_ms,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
