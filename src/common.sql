/*-------------------------------------------------------------------------
 *
 * src/common.sql
 *	  What every concern of the extension uses: the argument checks of the
 *	  API functions, and the trigger that keeps history tables written only
 *	  by the extension (src/guard.c).
 *
 * Every src/<concern>.sql file has two parts.  Above the DEFINITIONS line: tables,
 * sequences and indexes, created once by CREATE EXTENSION (an upgrade
 * changes them with its own statements, src/updates/).  Below it:
 * functions, triggers, comments, policies and grants, written so that they
 * can run again; the install script and every upgrade script run them.
 * The Makefile builds both scripts from these files (README "Layout").
 *
 *-------------------------------------------------------------------------
 */

-- DEFINITIONS: re-runnable, replayed by every upgrade script (see Makefile)

CREATE OR REPLACE FUNCTION @extschema@.history_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'history_guard'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@.history_guard() IS
'Internal: refuses writes to history and audit tables other than the extension''s own';

CREATE OR REPLACE FUNCTION @extschema@._require(argname text, value anyelement)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF value IS NULL THEN
		RAISE EXCEPTION 'argument "%" must not be NULL', argname
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
END
$$;

COMMENT ON FUNCTION @extschema@._require(text, anyelement) IS
'Internal: raises null_value_not_allowed (22004) when a required argument is NULL';

CREATE OR REPLACE FUNCTION @extschema@._require_exists(what text, id text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	found boolean;
BEGIN
	CASE what
		WHEN 'partner' THEN
			found := EXISTS (SELECT 1 FROM @extschema@.partner p WHERE p.partner_id = id);
		WHEN 'customer' THEN
			found := EXISTS (SELECT 1 FROM @extschema@.customer c WHERE c.customer_id = id);
		WHEN 'service' THEN
			found := EXISTS (SELECT 1 FROM @extschema@.service s WHERE s.service_id = id);
		WHEN 'subscription' THEN
			found := EXISTS (SELECT 1 FROM @extschema@.subscription s
							  WHERE s.subscription_id = id::uuid);
	END CASE;

	IF NOT found THEN
		RAISE EXCEPTION '% "%" does not exist', what, id
			USING ERRCODE = 'foreign_key_violation';
	END IF;
END
$$;

COMMENT ON FUNCTION @extschema@._require_exists(text, text) IS
'Internal: raises foreign_key_violation (23503) when a partner, customer, service or subscription does not exist';

CREATE OR REPLACE FUNCTION @extschema@._require_finite(argname text, value timestamptz)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT pg_catalog.isfinite(value) THEN
		RAISE EXCEPTION 'argument "%" must be a finite instant', argname
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('The value given was %s.', value);
	END IF;
END
$$;

COMMENT ON FUNCTION @extschema@._require_finite(text, timestamptz) IS
'Internal: raises invalid_parameter_value (22023) when an instant is infinity or -infinity (NULL passes: _require reports it)';
