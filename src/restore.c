/*-------------------------------------------------------------------------
 *
 * restore.c
 *	  Tells pg_dump's reload of the extension's tables apart from an
 *	  application's write.
 *
 * The extension's tables are configuration tables (pg_extension_config_dump):
 * a restore first runs CREATE EXTENSION, which creates the tables with
 * their triggers, and then loads their rows with COPY.  Those rows were
 * judged by the triggers when they were first written, and they include
 * what the triggers derived from them (license_quantity, holder_period,
 * assignment_log, usage_month).  Judging them again would refuse history
 * that is only written by the extension, refuse rows dated in months that
 * the restored billing_month rows say are closed, and derive every piece of
 * history a second time.
 *
 * PostgreSQL has no "restoring" flag for an extension to read (pg_dump's
 * --disable-triggers is for data-only dumps, and session_replication_role
 * must be set by hand).  What it has is the session every pg_dump script and
 * every pg_restore connection sets up before loading data
 * (_doSetFixedOutputState in pg_backup_archiver.c), and the data itself,
 * which pg_dump writes as COPY ... FROM stdin.  A statement is taken as a
 * restore when all of these hold:
 *
 *	  - it is a top-level COPY FROM (the portal's command tag is COPY: an
 *		INSERT, or a COPY run from inside a function, is not);
 *	  - check_function_bodies is off (pg_dump: "SET check_function_bodies =
 *		false"; applications never turn it off);
 *	  - row_security is off (pg_dump: "SET row_security = off", unless
 *		--enable-row-security);
 *	  - the role the session acts as is a superuser (only a superuser
 *		restores a database whose history tables are written by the
 *		extension).  That is GetOuterUserId(), SET ROLE included, not the
 *		current user: the usage trigger is SECURITY DEFINER and runs as
 *		the extension's owner whoever loads calls.
 *
 * A superuser can bypass every trigger anyway (session_replication_role,
 * ALTER TABLE ... DISABLE TRIGGER), so this guards against accidents, not
 * against attackers: a hand-written INSERT or COPY, or one by any other
 * role, meets every rule as before.  The rows of a restore are taken as
 * they are; overage.verify() checks what the triggers would have kept.
 * Each such statement leaves one LOG line in the server log.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "tcop/pquery.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/timestamp.h"

#include "overage.h"
#include "restore.h"

/* the statement last logged as a restore (one LOG line per statement) */
static Oid	logged_relid = InvalidOid;
static TimestampTz logged_stmt = 0;

/*
 * overage_restoring
 *		Is the statement that fired a trigger on "rel" pg_dump's reload of
 *		the table's rows (see the file header)?  Logs the first row of each
 *		such statement.
 */
bool
overage_restoring(Relation rel)
{
	TimestampTz stmt;

	if (ActivePortal == NULL || ActivePortal->commandTag != CMDTAG_COPY)
		return false;
	if (check_function_bodies || row_security)
		return false;
	if (!superuser_arg(GetOuterUserId()))
		return false;

	stmt = GetCurrentStatementStartTimestamp();
	if (logged_relid != RelationGetRelid(rel) || logged_stmt != stmt)
	{
		logged_relid = RelationGetRelid(rel);
		logged_stmt = stmt;
		ereport(LOG,
				(errmsg("overage: COPY into \"%s.%s\" is taken as a restore: its rows are loaded as they are",
						get_namespace_name(RelationGetNamespace(rel)),
						RelationGetRelationName(rel)),
				 errdetail("The statement is a COPY by superuser \"%s\" with check_function_bodies and row_security off, as pg_dump writes it.",
						   GetUserNameFromId(GetOuterUserId(), false)),
				 errhint("Run SELECT * FROM overage.verify() after the restore.")));
	}
	return true;
}
