/*-------------------------------------------------------------------------
 *
 * caller.c
 *	  The database role the session acts as, for authorization decisions.
 *
 * The API functions are SECURITY DEFINER: inside them current_user is the
 * extension's owner, so they cannot ask current_user who called.  The role
 * that matters is the one the session acts as: the login role, or the role
 * taken with SET ROLE.  PostgreSQL keeps that one as the "outer user"
 * (GetOuterUserId), which SECURITY DEFINER functions do not change.  It is
 * also the role assignment_log.by_role records (holder.c), so the role that
 * is authorized and the role that is audited are always the same one.
 *
 * Consequence, documented in the README: a SECURITY DEFINER function that
 * some other role owns and that calls the overage API acts with the rights
 * of the session's role, never with its owner's, so such a wrapper can
 * never widen what a partner's agent may do.
 *
 * Parallel workers are given the leader's outer user (ParallelWorkerMain),
 * so the function is parallel safe.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(overage_caller);

/*
 * overage_caller
 *		overage._caller() RETURNS name: the session's current role.
 */
Datum
overage_caller(PG_FUNCTION_ARGS)
{
	Name		result = (Name) palloc0(NAMEDATALEN);

	namestrcpy(result, GetUserNameFromId(GetOuterUserId(), false));
	PG_RETURN_NAME(result);
}
