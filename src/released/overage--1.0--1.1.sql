/* src/overage--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION overage UPDATE TO '1.1'" to load this file. \quit

/*
 * overage 1.1: who may do what.
 *
 * 1.0 trusted whatever partner_id a caller passed.  1.1 maps database roles
 * to a partner and an agent role (overage.agent), decides every API call
 * from that mapping (overage._authorize and its two siblings), restricts
 * what each role sees with row-level security, and closes the SQL surface:
 *
 *   - the public API functions become SECURITY DEFINER wrappers with a
 *     pinned search_path; they authorize the caller and then call the 1.0
 *     implementation, which moves unchanged into schema overage_internal
 *     (no privileges for anybody but the owner);
 *   - tables: no privileges for PUBLIC except SELECT where row-level
 *     security decides the rows (and the public price list);
 *   - functions: EXECUTE revoked from PUBLIC, granted back only on the API.
 *
 * The permission matrix (README "Roles"):
 *
 *   action       functions / data                      GA  AA  SA  BA  OP
 *   purchase     purchase, set_quantity, cancel,       x   x   x   -   x
 *                create_azure_subscription
 *   assign       assign_overage, release_overage       x   x   -   -   x
 *   get_overage  get_overage; holder, holder_period,   x   x   -   -   x
 *                assignment_log rows
 *   read         pool_status; partner, customer,       x   x   x   x   x
 *                subscription, license_quantity rows
 *   billing      charges, reconciliation               x   -   -   x   x
 *   operate      price list, preview_month,            -   -   -   -   x
 *                close_month, ingest into usage,
 *                add_agent, remove_agent
 *
 *   GA global_admin, AA admin_agent, SA sales_agent, BA billing_admin,
 *   OP the platform operator: a superuser, the extension's owner, or a role
 *   added with agent_role 'operator' (no partner).
 */

------------------------------------------------------------------------------
-- Who the caller is
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@._caller()
RETURNS name
AS 'MODULE_PATHNAME', 'overage_caller'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@._caller() IS
'Internal: the role the session acts as (login role or SET ROLE), unchanged inside SECURITY DEFINER functions; authorization and assignment_log.by_role both use it';

CREATE TABLE @extschema@.agent (
	role_name	name PRIMARY KEY,
	partner_id	text REFERENCES @extschema@.partner,
	agent_role	text NOT NULL
		CHECK (agent_role IN ('global_admin', 'admin_agent', 'sales_agent',
							  'billing_admin', 'operator')),
	added_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	added_by	name NOT NULL,
	CONSTRAINT agent_partner CHECK ((agent_role = 'operator') = (partner_id IS NULL))
);

COMMENT ON TABLE @extschema@.agent IS
'Database roles acting for a partner (or for the platform: agent_role operator, no partner). Managed with overage.add_agent() and overage.remove_agent(). Roles are matched by name, so the mapping survives dump and restore into a cluster whose roles have other OIDs; a renamed role loses its mapping.';
COMMENT ON COLUMN @extschema@.agent.agent_role IS
'global_admin | admin_agent | sales_agent | billing_admin (of partner_id) | operator (platform, partner_id NULL)';
COMMENT ON COLUMN @extschema@.agent.added_by IS
'Role that added the mapping';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.agent', '');

CREATE FUNCTION @extschema@._allowed(action text, agent_role text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF agent_role = 'operator' THEN
		RETURN true;
	END IF;
	CASE action
		WHEN 'purchase' THEN
			RETURN agent_role IN ('global_admin', 'admin_agent', 'sales_agent');
		WHEN 'assign', 'get_overage' THEN
			RETURN agent_role IN ('global_admin', 'admin_agent');
		WHEN 'read' THEN
			RETURN agent_role IN ('global_admin', 'admin_agent', 'sales_agent',
								  'billing_admin');
		WHEN 'billing' THEN
			RETURN agent_role IN ('global_admin', 'billing_admin');
		WHEN 'operate' THEN
			RETURN false;
		ELSE
			RAISE EXCEPTION 'unknown action "%"', action
				USING ERRCODE = 'invalid_parameter_value';
	END CASE;
END
$$;

COMMENT ON FUNCTION @extschema@._allowed(text, text) IS
'Internal: the permission matrix. May an agent of this agent_role perform action (purchase, assign, get_overage, read, billing, operate)?';

CREATE FUNCTION @extschema@._action_text(action text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
RETURN CASE action
	WHEN 'purchase' THEN 'buy, change or cancel subscriptions'
	WHEN 'assign' THEN 'assign or release overage'
	WHEN 'get_overage' THEN 'read overage holders'
	WHEN 'read' THEN 'read subscriptions and pools'
	WHEN 'billing' THEN 'read charges and reconciliation files'
	WHEN 'operate' THEN 'import price lists, ingest usage, close months or manage agents'
	ELSE action
END;

COMMENT ON FUNCTION @extschema@._action_text(text) IS
'Internal: an action in words, for error messages';

CREATE FUNCTION @extschema@._is_operator()
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
				WHERE r.rolname OPERATOR(pg_catalog.=) @extschema@._caller()
				  AND r.rolsuper)
	OR EXISTS (SELECT 1 FROM pg_catalog.pg_extension e
				 JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) e.extowner
				WHERE e.extname OPERATOR(pg_catalog.=) 'overage'
				  AND r.rolname OPERATOR(pg_catalog.=) @extschema@._caller())
	OR EXISTS (SELECT 1 FROM @extschema@.agent a
				WHERE a.role_name OPERATOR(pg_catalog.=) @extschema@._caller()
				  AND a.agent_role OPERATOR(pg_catalog.=) 'operator');

COMMENT ON FUNCTION @extschema@._is_operator() IS
'Internal: is the caller the platform operator (superuser, owner of the extension, or an agent with agent_role operator)?';

CREATE FUNCTION @extschema@._acting_partner(action text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN (SELECT a.partner_id FROM @extschema@.agent a
		 WHERE a.role_name OPERATOR(pg_catalog.=) @extschema@._caller()
		   AND @extschema@._allowed(action, a.agent_role));

COMMENT ON FUNCTION @extschema@._acting_partner(text) IS
'Internal, for row-level security policies: the caller''s partner if its agent role may perform action, else NULL';

------------------------------------------------------------------------------
-- The checks every API function makes
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@._authorize(action text, partner_id text)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	who		name := @extschema@._caller();
	a		@extschema@.agent;
	allowed	text;
BEGIN
	IF @extschema@._is_operator() THEN
		RETURN NULL;
	END IF;

	SELECT * INTO a FROM @extschema@.agent g WHERE g.role_name = who;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'role "%" is not an agent of any partner', who
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('Only the platform operator and roles mapped to a partner may %s.',
								  @extschema@._action_text(action)),
				  HINT = 'The operator maps roles to partners with overage.add_agent().';
	END IF;

	IF NOT @extschema@._allowed(action, a.agent_role) THEN
		SELECT string_agg(r, ', ' ORDER BY o) INTO allowed
		  FROM unnest(ARRAY['global_admin', 'admin_agent', 'sales_agent',
							'billing_admin']) WITH ORDINALITY AS x(r, o)
		 WHERE @extschema@._allowed(action, r);
		RAISE EXCEPTION 'permission denied to % as %', @extschema@._action_text(action), a.agent_role
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('Role "%s" is a %s of partner "%s"; only %s may %s.',
								  who, a.agent_role, a.partner_id,
								  coalesce(allowed || ' and ', '') || 'the platform operator',
								  @extschema@._action_text(action));
	END IF;

	IF _authorize.partner_id IS DISTINCT FROM a.partner_id THEN
		RAISE EXCEPTION 'permission denied to act for partner "%"',
			coalesce(_authorize.partner_id, 'NULL')
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('Role "%s" is an agent of partner "%s" and acts for that partner only.',
								  who, a.partner_id);
	END IF;

	RETURN a.partner_id;
END
$$;

COMMENT ON FUNCTION @extschema@._authorize(text, text) IS
'Internal: raises insufficient_privilege (42501) unless the caller is the operator, or an agent whose agent role may perform action for partner_id. Returns the agent''s partner, NULL for the operator';

CREATE FUNCTION @extschema@._authorize_subscription(action text, subscription_id uuid)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	mine	text;
BEGIN
	-- the role checks of _authorize first (operator, not an agent, agent
	-- role not allowed), for the caller's own partner
	mine := @extschema@._authorize(action,
		(SELECT g.partner_id FROM @extschema@.agent g
		  WHERE g.role_name = @extschema@._caller()));
	IF mine IS NULL THEN
		RETURN NULL;			-- the operator
	END IF;

	-- another partner's subscription and a missing one look the same
	IF NOT EXISTS (SELECT 1 FROM @extschema@.subscription s
					WHERE s.subscription_id = _authorize_subscription.subscription_id
					  AND s.partner_id = mine) THEN
		RAISE EXCEPTION 'permission denied for subscription "%"',
			_authorize_subscription.subscription_id
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('Role "%s" is an agent of partner "%s" and acts only on subscriptions of that partner.',
								  @extschema@._caller(), mine);
	END IF;
	RETURN mine;
END
$$;

COMMENT ON FUNCTION @extschema@._authorize_subscription(text, uuid) IS
'Internal: like _authorize, for a subscription: it must be one of the agent''s partner; a subscription of another partner and one that does not exist give the same error';

CREATE FUNCTION @extschema@._authorize_customer(action text, customer_id text)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	mine	text;
BEGIN
	-- the role checks of _authorize first (operator, not an agent, agent
	-- role not allowed), for the caller's own partner
	mine := @extschema@._authorize(action,
		(SELECT g.partner_id FROM @extschema@.agent g
		  WHERE g.role_name = @extschema@._caller()));
	IF mine IS NULL THEN
		RETURN NULL;			-- the operator
	END IF;

	-- a customer the partner never bought for and a missing one look the same
	IF NOT EXISTS (SELECT 1 FROM @extschema@.subscription s
					WHERE s.customer_id = _authorize_customer.customer_id
					  AND s.partner_id = mine) THEN
		RAISE EXCEPTION 'permission denied for customer "%"',
			_authorize_customer.customer_id
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('Role "%s" is an agent of partner "%s" and acts only for customers that partner has bought for.',
								  @extschema@._caller(), mine);
	END IF;
	RETURN mine;
END
$$;

COMMENT ON FUNCTION @extschema@._authorize_customer(text, text) IS
'Internal: like _authorize, for a customer: the agent''s partner must have bought for it (any subscription, cancelled too); a customer of other partners only and one that does not exist give the same error';

CREATE FUNCTION @extschema@._require_finite(argname text, value timestamptz)
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

------------------------------------------------------------------------------
-- Managing agents (operator only)
------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.add_agent(role_name name, partner_id text,
									  agent_role text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM @extschema@._require('role_name', add_agent.role_name);
	PERFORM @extschema@._require('agent_role', add_agent.agent_role);
	PERFORM @extschema@._authorize('operate', NULL);

	IF add_agent.agent_role NOT IN ('global_admin', 'admin_agent', 'sales_agent',
									'billing_admin', 'operator') THEN
		RAISE EXCEPTION 'unknown agent role "%"', add_agent.agent_role
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Agent roles are global_admin, admin_agent, sales_agent, billing_admin and operator.';
	END IF;
	IF (add_agent.agent_role = 'operator') <> (add_agent.partner_id IS NULL) THEN
		RAISE EXCEPTION 'agent role "%" %', add_agent.agent_role,
			CASE WHEN add_agent.agent_role = 'operator'
				 THEN 'acts for the platform and takes no partner'
				 ELSE 'needs a partner' END
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
					WHERE r.rolname = add_agent.role_name) THEN
		RAISE EXCEPTION 'role "%" does not exist', add_agent.role_name
			USING ERRCODE = 'undefined_object',
				  HINT = 'Create the role first (CREATE ROLE).';
	END IF;
	IF left(add_agent.role_name::text, 3) = 'pg_' THEN
		RAISE EXCEPTION 'role "%" is reserved and cannot be an agent', add_agent.role_name
			USING ERRCODE = 'reserved_name',
				  DETAIL = 'Role names starting with "pg_" are PostgreSQL''s predefined roles.';
	END IF;
	IF add_agent.partner_id IS NOT NULL THEN
		PERFORM @extschema@._require_exists('partner', add_agent.partner_id);
	END IF;
	IF EXISTS (SELECT 1 FROM @extschema@.agent a
				WHERE a.role_name = add_agent.role_name) THEN
		RAISE EXCEPTION 'role "%" is already an agent', add_agent.role_name
			USING ERRCODE = 'unique_violation',
				  HINT = 'Remove it with overage.remove_agent() first.';
	END IF;

	INSERT INTO @extschema@.agent (role_name, partner_id, agent_role, added_by)
	VALUES (add_agent.role_name, add_agent.partner_id, add_agent.agent_role,
			@extschema@._caller());
END
$$;

COMMENT ON FUNCTION @extschema@.add_agent(name, text, text) IS
'Operator only: lets an existing database role act for a partner as global_admin, admin_agent, sales_agent or billing_admin, or for the platform as operator (partner NULL)';

CREATE FUNCTION @extschema@.remove_agent(role_name name)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM @extschema@._require('role_name', remove_agent.role_name);
	PERFORM @extschema@._authorize('operate', NULL);

	DELETE FROM @extschema@.agent a WHERE a.role_name = remove_agent.role_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'role "%" is not an agent', remove_agent.role_name
			USING ERRCODE = 'undefined_object';
	END IF;
END
$$;

COMMENT ON FUNCTION @extschema@.remove_agent(name) IS
'Operator only: the role no longer acts for any partner (its audit rows keep its name)';

CREATE FUNCTION @extschema@.current_agent()
RETURNS TABLE(role_name name, partner_id text, agent_role text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT @extschema@._caller(),
		   (SELECT a.partner_id FROM @extschema@.agent a
			 WHERE a.role_name OPERATOR(pg_catalog.=) @extschema@._caller()),
		   CASE WHEN @extschema@._is_operator() THEN 'operator'
				ELSE (SELECT a.agent_role FROM @extschema@.agent a
					   WHERE a.role_name OPERATOR(pg_catalog.=) @extschema@._caller())
		   END
$$;

COMMENT ON FUNCTION @extschema@.current_agent() IS
'Who the session acts as: its role, partner and agent role (operator for the platform, NULL for a role that is no agent)';

------------------------------------------------------------------------------
-- The API: 1.0 implementations move to overage_internal unchanged, the
-- public names become SECURITY DEFINER wrappers that authorize first.
--
-- Order in every wrapper: NULL checks of the arguments authorization needs
-- (22004), then authorization (42501), then the implementation (existence
-- and business rules).  Authorizing before any existence check is what
-- keeps another partner's objects from showing through error messages.
------------------------------------------------------------------------------

CREATE SCHEMA overage_internal;
REVOKE ALL ON SCHEMA overage_internal FROM PUBLIC;
COMMENT ON SCHEMA overage_internal IS
'Implementations of the overage API without authorization; only the extension''s owner may use them';

ALTER FUNCTION @extschema@.purchase(text, text, text, text, integer, timestamptz)
	SET SCHEMA overage_internal;
ALTER FUNCTION @extschema@.set_quantity(uuid, integer, timestamptz)
	SET SCHEMA overage_internal;
ALTER FUNCTION @extschema@.cancel(uuid, timestamptz)
	SET SCHEMA overage_internal;
ALTER FUNCTION @extschema@.create_azure_subscription(text, text, timestamptz)
	SET SCHEMA overage_internal;
ALTER FUNCTION @extschema@.get_overage(text)
	SET SCHEMA overage_internal;
ALTER FUNCTION @extschema@.assign_overage(text, text, text, uuid, timestamptz)
	SET SCHEMA overage_internal;
ALTER FUNCTION @extschema@.release_overage(text, text, text, timestamptz)
	SET SCHEMA overage_internal;

CREATE FUNCTION @extschema@.purchase(partner_id text, customer_id text,
									 product_id text, sku_id text,
									 quantity integer,
									 at timestamptz DEFAULT pg_catalog.now())
RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM @extschema@._require_finite('at', purchase.at);
	PERFORM @extschema@._require('partner_id', purchase.partner_id);
	PERFORM @extschema@._authorize('purchase', purchase.partner_id);
	RETURN overage_internal.purchase(purchase.partner_id, purchase.customer_id,
									 purchase.product_id, purchase.sku_id,
									 purchase.quantity, purchase.at);
END
$$;

COMMENT ON FUNCTION @extschema@.purchase(text, text, text, text, integer, timestamptz) IS
'Buys quantity licences of a SKU for a customer; for an overage SKU provisions the partner''s Azure plan, default Azure subscription and overage subscription once, and applies first-in per service. Returns the licence subscription. Global admin, admin agent, sales agent of the partner; operator';

CREATE FUNCTION @extschema@.set_quantity(subscription_id uuid, quantity integer,
										 at timestamptz DEFAULT pg_catalog.now())
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM @extschema@._require_finite('at', set_quantity.at);
	PERFORM @extschema@._require('subscription_id', set_quantity.subscription_id);
	PERFORM @extschema@._authorize_subscription('purchase', set_quantity.subscription_id);
	PERFORM overage_internal.set_quantity(set_quantity.subscription_id,
										  set_quantity.quantity, set_quantity.at);
END
$$;

COMMENT ON FUNCTION @extschema@.set_quantity(uuid, integer, timestamptz) IS
'Changes the number of licences of a licence subscription from instant at on. Global admin, admin agent, sales agent of the subscription''s partner; operator';

CREATE FUNCTION @extschema@.cancel(subscription_id uuid,
								   at timestamptz DEFAULT pg_catalog.now())
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM @extschema@._require_finite('at', cancel.at);
	PERFORM @extschema@._require('subscription_id', cancel.subscription_id);
	PERFORM @extschema@._authorize_subscription('purchase', cancel.subscription_id);
	PERFORM overage_internal.cancel(cancel.subscription_id, cancel.at);
END
$$;

COMMENT ON FUNCTION @extschema@.cancel(uuid, timestamptz) IS
'Cancels a subscription at instant at; cancelling the holder''s last overage-enabled licence for a service sets that overage to None. Global admin, admin agent, sales agent of the subscription''s partner; operator';

CREATE FUNCTION @extschema@.create_azure_subscription(partner_id text,
													  customer_id text,
													  at timestamptz DEFAULT pg_catalog.now())
RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM @extschema@._require_finite('at', create_azure_subscription.at);
	PERFORM @extschema@._require('partner_id', create_azure_subscription.partner_id);
	PERFORM @extschema@._authorize('purchase', create_azure_subscription.partner_id);
	RETURN overage_internal.create_azure_subscription(
		create_azure_subscription.partner_id,
		create_azure_subscription.customer_id,
		create_azure_subscription.at);
END
$$;

COMMENT ON FUNCTION @extschema@.create_azure_subscription(text, text, timestamptz) IS
'Adds an Azure subscription under the partner''s Azure plan for the customer (a further target for the overage). Global admin, admin agent, sales agent of the partner; operator';

CREATE FUNCTION @extschema@.get_overage(customer_id text)
RETURNS TABLE(service_id text, partner_id text, subscription_id uuid,
			  since timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	mine	text;
BEGIN
	PERFORM @extschema@._require('customer_id', get_overage.customer_id);
	mine := @extschema@._authorize_customer('get_overage', get_overage.customer_id);

	-- an agent sees who holds the overage (whom to ask for a handoff), but
	-- the subscription only when its own partner holds it
	RETURN QUERY
		SELECT g.service_id, g.partner_id,
			   CASE WHEN mine IS NULL OR g.partner_id = mine
					THEN g.subscription_id END,
			   g.since
		  FROM overage_internal.get_overage(get_overage.customer_id) g;
END
$$;

COMMENT ON FUNCTION @extschema@.get_overage(text) IS
'GET of a customer''s overage: the holder per service (one row per service that ever had one); partner_id NULL means None. For an agent the subscription_id of another partner''s holding is NULL. Global admin and admin agent of a partner that bought for the customer; operator';

CREATE FUNCTION @extschema@.assign_overage(partner_id text, customer_id text,
										   service_id text, subscription_id uuid,
										   at timestamptz DEFAULT pg_catalog.now())
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	mine	text;
	msg		text;
	hint	text;
	held_by	text;
	held_at	timestamptz;
BEGIN
	PERFORM @extschema@._require_finite('at', assign_overage.at);
	PERFORM @extschema@._require('partner_id', assign_overage.partner_id);
	PERFORM @extschema@._require('customer_id', assign_overage.customer_id);
	PERFORM @extschema@._require('subscription_id', assign_overage.subscription_id);
	mine := @extschema@._authorize('assign', assign_overage.partner_id);
	IF mine IS NOT NULL THEN
		PERFORM @extschema@._authorize_customer('assign', assign_overage.customer_id);
		PERFORM @extschema@._authorize_subscription('assign', assign_overage.subscription_id);
	END IF;

	BEGIN
		PERFORM overage_internal.assign_overage(assign_overage.partner_id,
												assign_overage.customer_id,
												assign_overage.service_id,
												assign_overage.subscription_id,
												assign_overage.at);
	EXCEPTION WHEN SQLSTATE 'OV002' THEN
		IF mine IS NULL THEN
			RAISE;
		END IF;
		-- same error, without the other partner's subscription
		GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
		SELECT h.partner_id, h.since INTO held_by, held_at
		  FROM @extschema@.holder h
		 WHERE h.customer_id = assign_overage.customer_id
		   AND h.service_id = assign_overage.service_id;
		RAISE EXCEPTION USING ERRCODE = 'OV002', MESSAGE = msg, HINT = hint,
			DETAIL = format('Partner "%s" holds it since %s; partner "%s" cannot take it over.',
							held_by, held_at, assign_overage.partner_id);
	END;
END
$$;

COMMENT ON FUNCTION @extschema@.assign_overage(text, text, text, uuid, timestamptz) IS
'PUT of a customer''s overage for a service: the partner assigns it to one of its Azure or overage subscriptions for that customer (allowed when nobody or the same partner holds it). Global admin and admin agent of the partner; operator';

CREATE FUNCTION @extschema@.release_overage(partner_id text, customer_id text,
											service_id text,
											at timestamptz DEFAULT pg_catalog.now())
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	mine	text;
	msg		text;
	hint	text;
	held_by	text;
	held_at	timestamptz;
BEGIN
	PERFORM @extschema@._require_finite('at', release_overage.at);
	PERFORM @extschema@._require('partner_id', release_overage.partner_id);
	PERFORM @extschema@._require('customer_id', release_overage.customer_id);
	mine := @extschema@._authorize('assign', release_overage.partner_id);
	IF mine IS NOT NULL THEN
		PERFORM @extschema@._authorize_customer('assign', release_overage.customer_id);
	END IF;

	BEGIN
		PERFORM overage_internal.release_overage(release_overage.partner_id,
												 release_overage.customer_id,
												 release_overage.service_id,
												 release_overage.at);
	EXCEPTION WHEN SQLSTATE 'OV004' THEN
		IF mine IS NULL THEN
			RAISE;
		END IF;
		-- same error, without the other partner's subscription
		GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
		SELECT h.partner_id, h.since INTO held_by, held_at
		  FROM @extschema@.holder h
		 WHERE h.customer_id = release_overage.customer_id
		   AND h.service_id = release_overage.service_id;
		RAISE EXCEPTION USING ERRCODE = 'OV004', MESSAGE = msg, HINT = hint,
			DETAIL = format('The overage is held by partner "%s" since %s.',
							held_by, held_at);
	END;
END
$$;

COMMENT ON FUNCTION @extschema@.release_overage(text, text, text, timestamptz) IS
'PUT of a customer''s overage with enabled = false: the holding partner sets the overage of a service to None. Global admin and admin agent of the partner; operator';

COMMENT ON FUNCTION overage_internal.purchase(text, text, text, text, integer, timestamptz) IS
'Internal: overage.purchase without authorization';
COMMENT ON FUNCTION overage_internal.set_quantity(uuid, integer, timestamptz) IS
'Internal: overage.set_quantity without authorization';
COMMENT ON FUNCTION overage_internal.cancel(uuid, timestamptz) IS
'Internal: overage.cancel without authorization';
COMMENT ON FUNCTION overage_internal.create_azure_subscription(text, text, timestamptz) IS
'Internal: overage.create_azure_subscription without authorization';
COMMENT ON FUNCTION overage_internal.get_overage(text) IS
'Internal: overage.get_overage without authorization or masking';
COMMENT ON FUNCTION overage_internal.assign_overage(text, text, text, uuid, timestamptz) IS
'Internal: overage.assign_overage without authorization';
COMMENT ON FUNCTION overage_internal.release_overage(text, text, text, timestamptz) IS
'Internal: overage.release_overage without authorization';

------------------------------------------------------------------------------
-- Metering: pool_status (read), reconciliation (billing), preview_month and
-- close_month (operate) get wrappers like the API above; ingest into
-- overage.usage is the operator's (row-level security below).
------------------------------------------------------------------------------

ALTER FUNCTION @extschema@.pool_status(text, text, timestamptz)
	SET SCHEMA overage_internal;
ALTER FUNCTION @extschema@.preview_month(date)
	SET SCHEMA overage_internal;
ALTER FUNCTION @extschema@.close_month(date)
	SET SCHEMA overage_internal;
ALTER FUNCTION @extschema@.reconciliation(text, date)
	SET SCHEMA overage_internal;

CREATE FUNCTION @extschema@.pool_status(customer_id text, service_id text,
										at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE(month date, pool_minutes numeric, used_minutes numeric,
			  remaining_minutes numeric, overage_minutes numeric,
			  unassigned_minutes numeric)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM @extschema@._require_finite('at', pool_status.at);
	PERFORM @extschema@._require('customer_id', pool_status.customer_id);
	PERFORM @extschema@._authorize_customer('read', pool_status.customer_id);
	RETURN QUERY
		SELECT * FROM overage_internal.pool_status(pool_status.customer_id,
												   pool_status.service_id,
												   pool_status.at);
END
$$;

COMMENT ON FUNCTION @extschema@.pool_status(text, text, timestamptz) IS
'Live pool of a (customer, service) as of instant at, over the calls of at''s calendar month (UTC) that started before at: pool at at, minutes used, remaining = greatest(pool - used, 0), overage minutes of those calls (assigned and unassigned) and the unassigned part. Minutes are seconds / 60 rounded to 6 decimals. Any agent of a partner that bought for the customer; operator';

CREATE FUNCTION @extschema@.preview_month(month date)
RETURNS SETOF @extschema@.charge
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM @extschema@._authorize('operate', NULL);
	RETURN QUERY SELECT * FROM overage_internal.preview_month(preview_month.month);
END
$$;

COMMENT ON FUNCTION @extschema@.preview_month(date) IS
'The charge lines close_month would write for the calendar month (UTC) of the date, computed from the current data; writes nothing. Operator only';

/*
 * close_month keeps its guarantees through the wrapper: its READ COMMITTED
 * check reads the transaction's setting (a function cannot change it), its
 * row lock and statements belong to the caller's transaction, and each of
 * its statements still takes a fresh snapshot (both functions are
 * VOLATILE).  The implementation reads its lines through the name
 * overage.preview_month, now this file's wrapper: the caller is the same
 * operator, so that authorizes again and passes.  The one thing the
 * wrapper changes is current_user (the owner), which 1.0 records as
 * billing_month.closed_by; the wrapper records the caller instead.
 */
CREATE FUNCTION @extschema@.close_month(month date)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n	integer;
BEGIN
	PERFORM @extschema@._authorize('operate', NULL);
	n := overage_internal.close_month(close_month.month);
	UPDATE @extschema@.billing_month b
	   SET closed_by = @extschema@._caller()
	 WHERE b.month = date_trunc('month', close_month.month::timestamp)::date;
	RETURN n;
END
$$;

COMMENT ON FUNCTION @extschema@.close_month(date) IS
'Closes the calendar month (UTC) of the date: writes its charge lines and marks it closed, all or nothing. Returns the number of lines. A closed month is final (OV006 on a second close, on changes of its lines, and on usage, licence or holder changes dated in it). Operator only';

CREATE FUNCTION @extschema@.reconciliation(partner_id text, month date)
RETURNS TABLE("PartnerId" text, "PartnerName" text, "CustomerId" text,
			  "CustomerName" text, "CustomerCountry" text,
			  "SubscriptionId" uuid, "SubscriptionDescription" text,
			  "ChargeStartDate" date, "ChargeEndDate" date,
			  "ChargeType" text, "MeterCategory" text, "MeterName" text,
			  "Unit" text, "UnitPrice" numeric, "Quantity" numeric(18,6),
			  "BillingPreTaxTotal" numeric(18,2), "BillingCurrency" text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM @extschema@._require('partner_id', reconciliation.partner_id);
	PERFORM @extschema@._authorize('billing', reconciliation.partner_id);
	RETURN QUERY
		SELECT * FROM overage_internal.reconciliation(reconciliation.partner_id,
													  reconciliation.month);
END
$$;

COMMENT ON FUNCTION @extschema@.reconciliation(text, date) IS
'The partner''s reconciliation file lines of a closed month: one per charge line of its overage subscriptions. Columns: PartnerId, PartnerName; CustomerId, CustomerName, CustomerCountry; SubscriptionId (the subscription that held the overage) and SubscriptionDescription (Overage subscription | Azure subscription); ChargeStartDate and ChargeEndDate (first and last day of the month, inclusive); ChargeType (always Usage); MeterCategory (always Overage); MeterName (the service name); Unit (the service unit); UnitPrice; Quantity (minutes, 6 decimals); BillingPreTaxTotal (the line amount); BillingCurrency. Global admin and billing admin of the partner; operator';

COMMENT ON FUNCTION overage_internal.pool_status(text, text, timestamptz) IS
'Internal: overage.pool_status without authorization';
COMMENT ON FUNCTION overage_internal.preview_month(date) IS
'Internal: overage.preview_month without authorization';
COMMENT ON FUNCTION overage_internal.close_month(date) IS
'Internal: overage.close_month without authorization (records current_user as closed_by; the wrapper corrects it to the caller)';
COMMENT ON FUNCTION overage_internal.reconciliation(text, date) IS
'Internal: overage.reconciliation without authorization';

/*
 * Ingest is a plain INSERT into overage.usage by the operator: a
 * superuser, the owner, or an operator-mapped role the DBA grants INSERT
 * (README), with INSERT or COPY.  The statement trigger reads customer and
 * service and writes
 * billing_month and usage_month, none of which such a role may touch, so
 * it runs as the owner.  Its search_path is pinned (1.0) and it names
 * every object with its schema.
 */
ALTER FUNCTION @extschema@.usage_ingest() SECURITY DEFINER;

COMMENT ON TABLE @extschema@.usage IS
'Calls: INSERT or COPY (customer_id, service_id, user_id, started_at, duration_s), by the operator only (trigger usage_authorize; the DBA grants INSERT to the ingest role). Statement-level C triggers validate the statement''s rows (known customer and service, duration at most 86400 s, started_at finite and at most one day after now(), month not closed) and keep overage.usage_month; a refused statement writes nothing. Not partitioned; see README.';

------------------------------------------------------------------------------
-- Row-level security: every table with partner or customer data.
--
-- Policies are FOR SELECT only: PUBLIC has no other privilege on these
-- tables, writes go through the API (SECURITY DEFINER, run as the owner,
-- who is not subject to the policies).  Each policy has the one shape
--
--   USING ((SELECT @extschema@._is_operator())
--          OR <partner column> = (SELECT @extschema@._acting_partner('<action>')))
--
-- (the sub-SELECTs make each function run once per query, not per row).
-- A role that is no agent sees no rows.
------------------------------------------------------------------------------

ALTER TABLE @extschema@.agent ENABLE ROW LEVEL SECURITY;
CREATE POLICY agent_self ON @extschema@.agent FOR SELECT
	USING ((SELECT @extschema@._is_operator())
		   OR role_name = (SELECT @extschema@._caller()));

ALTER TABLE @extschema@.partner ENABLE ROW LEVEL SECURITY;
CREATE POLICY partner_own ON @extschema@.partner FOR SELECT
	USING ((SELECT @extschema@._is_operator())
		   OR partner_id = (SELECT @extschema@._acting_partner('read')));

ALTER TABLE @extschema@.subscription ENABLE ROW LEVEL SECURITY;
CREATE POLICY subscription_own ON @extschema@.subscription FOR SELECT
	USING ((SELECT @extschema@._is_operator())
		   OR partner_id = (SELECT @extschema@._acting_partner('read')));

ALTER TABLE @extschema@.customer ENABLE ROW LEVEL SECURITY;
CREATE POLICY customer_bought_for ON @extschema@.customer FOR SELECT
	USING ((SELECT @extschema@._is_operator())
		   OR EXISTS (SELECT 1 FROM @extschema@.subscription s
					   WHERE s.customer_id = customer.customer_id
						 AND s.partner_id = (SELECT @extschema@._acting_partner('read'))));

ALTER TABLE @extschema@.license_quantity ENABLE ROW LEVEL SECURITY;
CREATE POLICY license_quantity_own ON @extschema@.license_quantity FOR SELECT
	USING ((SELECT @extschema@._is_operator())
		   OR EXISTS (SELECT 1 FROM @extschema@.subscription s
					   WHERE s.subscription_id = license_quantity.subscription_id
						 AND s.partner_id = (SELECT @extschema@._acting_partner('read'))));

-- holder rows: those the partner holds.  What a partner that sells to the
-- customer but does not hold its overage may see comes from get_overage():
-- the holding partner and since, not the holding subscription.
ALTER TABLE @extschema@.holder ENABLE ROW LEVEL SECURITY;
CREATE POLICY holder_own ON @extschema@.holder FOR SELECT
	USING ((SELECT @extschema@._is_operator())
		   OR partner_id = (SELECT @extschema@._acting_partner('get_overage')));

ALTER TABLE @extschema@.holder_period ENABLE ROW LEVEL SECURITY;
CREATE POLICY holder_period_own ON @extschema@.holder_period FOR SELECT
	USING ((SELECT @extschema@._is_operator())
		   OR partner_id = (SELECT @extschema@._acting_partner('get_overage')));

-- audit rows of changes from or to the partner (a handoff shows as the
-- holder's release to None and the taker's assignment from None)
ALTER TABLE @extschema@.assignment_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY assignment_log_own ON @extschema@.assignment_log FOR SELECT
	USING ((SELECT @extschema@._is_operator())
		   OR from_partner_id = (SELECT @extschema@._acting_partner('get_overage'))
		   OR to_partner_id = (SELECT @extschema@._acting_partner('get_overage')));

-- charge lines of the partner (billing); unassigned lines (partner NULL)
-- are the operator's only
ALTER TABLE @extschema@.charge ENABLE ROW LEVEL SECURITY;
CREATE POLICY charge_own ON @extschema@.charge FOR SELECT
	USING ((SELECT @extschema@._is_operator())
		   OR partner_id = (SELECT @extschema@._acting_partner('billing')));

-- usage: no privileges for PUBLIC; the DBA grants INSERT (and SELECT, if
-- wanted) to the role that ingests.  Not row-level security: COPY FROM is
-- not supported under it, and applications load calls with COPY.  Instead
-- a statement-level trigger makes the writer's being the operator a
-- condition too, so INSERT granted to an agent by mistake writes nothing
-- and the refusal names the rule.
CREATE FUNCTION @extschema@._usage_authorize()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM @extschema@._authorize('operate', NULL);
	RETURN NULL;
END
$$;

COMMENT ON FUNCTION @extschema@._usage_authorize() IS
'Internal: BEFORE STATEMENT trigger on overage.usage; only the operator ingests, changes or removes calls (42501)';

CREATE TRIGGER usage_authorize
	BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.usage
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._usage_authorize();

------------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC, then back what each needs
------------------------------------------------------------------------------

GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;

REVOKE ALL ON ALL TABLES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA overage_internal FROM PUBLIC;

-- the price list is public; no partner data in it
GRANT SELECT ON @extschema@.service, @extschema@.sku, @extschema@.sku_service
	TO PUBLIC;
-- rows decided by the policies above
GRANT SELECT ON @extschema@.agent, @extschema@.partner, @extschema@.customer,
	@extschema@.subscription, @extschema@.license_quantity,
	@extschema@.holder, @extschema@.holder_period, @extschema@.assignment_log,
	@extschema@.charge
	TO PUBLIC;
-- the months and when they were closed: no partner data
GRANT SELECT ON @extschema@.billing_month TO PUBLIC;
-- usage and usage_month: nothing (the operator's; see usage_authorize above)

-- the API (each function authorizes its caller)
GRANT EXECUTE ON FUNCTION
	@extschema@.purchase(text, text, text, text, integer, timestamptz),
	@extschema@.set_quantity(uuid, integer, timestamptz),
	@extschema@.cancel(uuid, timestamptz),
	@extschema@.create_azure_subscription(text, text, timestamptz),
	@extschema@.get_overage(text),
	@extschema@.assign_overage(text, text, text, uuid, timestamptz),
	@extschema@.release_overage(text, text, text, timestamptz),
	@extschema@.add_agent(name, text, text),
	@extschema@.remove_agent(name),
	@extschema@.pool_status(text, text, timestamptz),
	@extschema@.reconciliation(text, date),
	@extschema@.preview_month(date),
	@extschema@.close_month(date),
	@extschema@.current_agent(),
	@extschema@.sku_properties(text, text),
	-- used by the generated column sku.includes_overage
	@extschema@.tags_include_overage(text),
	-- evaluated by the row-level security policies as the querying role
	@extschema@._caller(),
	@extschema@._is_operator(),
	@extschema@._acting_partner(text)
	TO PUBLIC;
