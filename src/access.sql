/*-------------------------------------------------------------------------
 *
 * src/access.sql
 *	  Who may do what: database roles mapped to a partner and an agent role
 *	  (overage.agent), the caller (src/caller.c), the permission matrix
 *	  (_allowed, the one place it is written; README "The permission
 *	  matrix" is checked against it by test/scripts/lists.sh), the checks
 *	  every API function makes first (_authorize and its two siblings),
 *	  row-level security on every table with partner data, and the
 *	  privileges.  Last in the build order: its policies and grants name
 *	  the tables and functions of every other file.
 *
 *-------------------------------------------------------------------------
 */

CREATE TABLE @extschema@.agent (
	role_name	name PRIMARY KEY,
	partner_id	text REFERENCES @extschema@.partner,
	agent_role	text NOT NULL,
	added_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	added_by	name NOT NULL,
	customer_id	text REFERENCES @extschema@.customer,
	CONSTRAINT agent_role_known
		CHECK (agent_role IN ('global_admin', 'admin_agent', 'sales_agent',
							  'billing_admin', 'operator', 'customer_admin')),
	CONSTRAINT agent_partner
		CHECK ((agent_role IN ('operator', 'customer_admin')) = (partner_id IS NULL)),
	CONSTRAINT agent_customer
		CHECK ((agent_role = 'customer_admin') = (customer_id IS NOT NULL))
);

COMMENT ON TABLE @extschema@.agent IS
'Database roles acting for a partner (or for the platform: agent_role operator, no partner). Managed with overage.add_agent() and overage.remove_agent(). Roles are matched by name, so the mapping survives dump and restore into a cluster whose roles have other OIDs; a renamed role loses its mapping.';
COMMENT ON COLUMN @extschema@.agent.agent_role IS
'global_admin | admin_agent | sales_agent | billing_admin (of partner_id) | operator (platform, partner_id NULL) | customer_admin (of customer_id, partner_id NULL; 1.2)';
COMMENT ON COLUMN @extschema@.agent.customer_id IS
'The customer a customer_admin acts for (1.2): it consents to or declines transfers of that customer''s overage and reads its overage and pools; NULL for every other agent role';
COMMENT ON COLUMN @extschema@.agent.added_by IS
'Role that added the mapping';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.agent', '');

-- DEFINITIONS: re-runnable, replayed by every upgrade script (see Makefile)

------------------------------------------------------------------------------
-- Who the caller is
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION @extschema@._caller()
RETURNS name
AS 'MODULE_PATHNAME', 'overage_caller'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@._caller() IS
'Internal: the role the session acts as (login role or SET ROLE), unchanged inside SECURITY DEFINER functions; authorization and assignment_log.by_role both use it';

CREATE OR REPLACE FUNCTION @extschema@._allowed(action text, agent_role text)
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
		WHEN 'assign' THEN
			RETURN agent_role IN ('global_admin', 'admin_agent');
		WHEN 'get_overage' THEN
			-- a customer admin: its own customer's (_authorize_customer)
			RETURN agent_role IN ('global_admin', 'admin_agent', 'customer_admin');
		WHEN 'read' THEN
			RETURN agent_role IN ('global_admin', 'admin_agent', 'sales_agent',
								  'billing_admin', 'customer_admin');
		WHEN 'consent' THEN
			RETURN agent_role = 'customer_admin';
		WHEN 'billing' THEN
			RETURN agent_role IN ('global_admin', 'billing_admin');
		WHEN 'budget' THEN
			RETURN agent_role IN ('global_admin', 'admin_agent');
		WHEN 'operate' THEN
			RETURN false;
		ELSE
			RAISE EXCEPTION 'unknown action "%"', action
				USING ERRCODE = 'invalid_parameter_value';
	END CASE;
END
$$;

COMMENT ON FUNCTION @extschema@._allowed(text, text) IS
'Internal: the permission matrix. May an agent of this agent_role perform action (purchase, assign, get_overage, read, billing, consent, budget, operate)?';

CREATE OR REPLACE FUNCTION @extschema@._action_text(action text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT CASE action
	WHEN 'purchase' THEN 'buy, change or cancel subscriptions'
	WHEN 'assign' THEN 'assign or release overage'
	WHEN 'get_overage' THEN 'read overage holders'
	WHEN 'read' THEN 'read subscriptions and pools'
	WHEN 'billing' THEN 'read charges and reconciliation files'
	WHEN 'consent' THEN 'consent to or decline transfers'
	WHEN 'budget' THEN 'set or remove budgets'
	WHEN 'operate' THEN 'import price lists, ingest usage, close months or manage agents'
	ELSE action
END
$$;

COMMENT ON FUNCTION @extschema@._action_text(text) IS
'Internal: an action in words, for error messages';

CREATE OR REPLACE FUNCTION @extschema@._is_operator()
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
				WHERE r.rolname OPERATOR(pg_catalog.=) @extschema@._caller()
				  AND r.rolsuper)
	OR EXISTS (SELECT 1 FROM pg_catalog.pg_extension e
				 JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) e.extowner
				WHERE e.extname OPERATOR(pg_catalog.=) 'overage'
				  AND r.rolname OPERATOR(pg_catalog.=) @extschema@._caller())
	OR EXISTS (SELECT 1 FROM @extschema@.agent a
				WHERE a.role_name OPERATOR(pg_catalog.=) @extschema@._caller()
				  AND a.agent_role OPERATOR(pg_catalog.=) 'operator')
$$;

COMMENT ON FUNCTION @extschema@._is_operator() IS
'Internal: is the caller the platform operator (superuser, owner of the extension, or an agent with agent_role operator)?';

CREATE OR REPLACE FUNCTION @extschema@._acting_partner(action text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT (SELECT a.partner_id FROM @extschema@.agent a
		 WHERE a.role_name OPERATOR(pg_catalog.=) @extschema@._caller()
		   AND @extschema@._allowed(action, a.agent_role))
$$;

COMMENT ON FUNCTION @extschema@._acting_partner(text) IS
'Internal, for row-level security policies: the caller''s partner if its agent role may perform action, else NULL';

CREATE OR REPLACE FUNCTION @extschema@._acting_customer()
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT (SELECT a.customer_id FROM @extschema@.agent a
		 WHERE a.role_name OPERATOR(pg_catalog.=) @extschema@._caller()
		   AND a.agent_role OPERATOR(pg_catalog.=) 'customer_admin')
$$;

COMMENT ON FUNCTION @extschema@._acting_customer() IS
'Internal, for row-level security policies (1.2): the customer of the caller if it is a customer_admin, else NULL';

------------------------------------------------------------------------------
-- The checks every API function makes
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION @extschema@._authorize(action text, partner_id text)
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
							'billing_admin', 'customer_admin']) WITH ORDINALITY AS x(r, o)
		 WHERE @extschema@._allowed(action, r);
		RAISE EXCEPTION 'permission denied to % as %', @extschema@._action_text(action), a.agent_role
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('Role "%s" is a %s of partner "%s"; only %s may %s.',
								  who, a.agent_role, a.partner_id,
								  coalesce(allowed || ' and ', '') || 'the platform operator',
								  @extschema@._action_text(action));
	END IF;

	-- a customer admin acts for its customer only (_authorize_customer),
	-- never for a partner
	IF a.agent_role = 'customer_admin' THEN
		RAISE EXCEPTION 'permission denied to act for partner "%"',
			coalesce(_authorize.partner_id, 'NULL')
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('Role "%s" is a customer_admin of customer "%s" and acts for no partner.',
								  who, a.customer_id);
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

CREATE OR REPLACE FUNCTION @extschema@._authorize_subscription(action text, subscription_id uuid)
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

CREATE OR REPLACE FUNCTION @extschema@._authorize_customer(action text, customer_id text)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	mine	text;
	a		@extschema@.agent;
BEGIN
	/*
	 * A customer admin (1.2) reads its own customer's overage and pools:
	 * NULL like the operator, since it sees every subscription of its
	 * customer; only actions that read (get_overage, read) allow it.
	 */
	SELECT * INTO a FROM @extschema@.agent g
	 WHERE g.role_name = @extschema@._caller() AND g.agent_role = 'customer_admin';
	IF FOUND AND NOT @extschema@._is_operator() THEN
		IF NOT @extschema@._allowed(action, 'customer_admin') THEN
			PERFORM @extschema@._authorize(action, NULL);	-- raises 42501
		END IF;
		IF a.customer_id IS DISTINCT FROM _authorize_customer.customer_id THEN
			RAISE EXCEPTION 'permission denied for customer "%"',
				_authorize_customer.customer_id
				USING ERRCODE = 'insufficient_privilege',
					  DETAIL = format('Role "%s" is a customer_admin of customer "%s" and acts only for that customer.',
									  a.role_name, a.customer_id);
		END IF;
		RETURN NULL;
	END IF;

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
'Internal: like _authorize, for a customer: the agent''s partner must have bought for it (any subscription, cancelled too); a customer of other partners only and one that does not exist give the same error. A customer_admin (1.2) passes for its own customer and the reading actions it is allowed, and gets NULL as the operator does';

------------------------------------------------------------------------------
-- Managing agents (operator only)
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION @extschema@.add_agent(role_name name, partner_id text,
									  agent_role text, customer_id text DEFAULT NULL)
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
									'billing_admin', 'operator', 'customer_admin') THEN
		RAISE EXCEPTION 'unknown agent role "%"', add_agent.agent_role
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Agent roles are global_admin, admin_agent, sales_agent, billing_admin, customer_admin and operator.';
	END IF;
	IF (add_agent.agent_role IN ('operator', 'customer_admin')) <> (add_agent.partner_id IS NULL) THEN
		RAISE EXCEPTION 'agent role "%" %', add_agent.agent_role,
			CASE WHEN add_agent.agent_role = 'operator'
				 THEN 'acts for the platform and takes no partner'
				 WHEN add_agent.agent_role = 'customer_admin'
				 THEN 'acts for a customer and takes no partner'
				 ELSE 'needs a partner' END
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF (add_agent.agent_role = 'customer_admin') <> (add_agent.customer_id IS NOT NULL) THEN
		RAISE EXCEPTION 'agent role "%" %', add_agent.agent_role,
			CASE WHEN add_agent.agent_role = 'customer_admin'
				 THEN 'needs a customer'
				 ELSE 'takes no customer' END
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
	IF add_agent.customer_id IS NOT NULL THEN
		PERFORM @extschema@._require_exists('customer', add_agent.customer_id);
	END IF;
	IF EXISTS (SELECT 1 FROM @extschema@.agent a
				WHERE a.role_name = add_agent.role_name) THEN
		RAISE EXCEPTION 'role "%" is already an agent', add_agent.role_name
			USING ERRCODE = 'unique_violation',
				  HINT = 'Remove it with overage.remove_agent() first.';
	END IF;

	INSERT INTO @extschema@.agent (role_name, partner_id, agent_role, added_by,
								   customer_id)
	VALUES (add_agent.role_name, add_agent.partner_id, add_agent.agent_role,
			@extschema@._caller(), add_agent.customer_id);
END
$$;

COMMENT ON FUNCTION @extschema@.add_agent(name, text, text, text) IS
'Operator only: lets an existing database role act for a partner as global_admin, admin_agent, sales_agent or billing_admin, for the platform as operator (partner NULL), or for a customer as customer_admin (partner NULL, customer_id given; 1.2)';

CREATE OR REPLACE FUNCTION @extschema@.remove_agent(role_name name)
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

CREATE OR REPLACE FUNCTION @extschema@.current_agent()
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
DROP POLICY IF EXISTS agent_self ON @extschema@.agent;
CREATE POLICY agent_self ON @extschema@.agent FOR SELECT
	USING ((SELECT @extschema@._is_operator())
		   OR role_name = (SELECT @extschema@._caller()));

ALTER TABLE @extschema@.partner ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS partner_own ON @extschema@.partner;
CREATE POLICY partner_own ON @extschema@.partner FOR SELECT
	USING ((SELECT @extschema@._is_operator())
		   OR partner_id = (SELECT @extschema@._acting_partner('read')));

ALTER TABLE @extschema@.subscription ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS subscription_own ON @extschema@.subscription;
CREATE POLICY subscription_own ON @extschema@.subscription FOR SELECT
	USING ((SELECT @extschema@._is_operator())
		   OR partner_id = (SELECT @extschema@._acting_partner('read')));

ALTER TABLE @extschema@.customer ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS customer_bought_for ON @extschema@.customer;
CREATE POLICY customer_bought_for ON @extschema@.customer FOR SELECT
	USING ((SELECT @extschema@._is_operator())
		   OR EXISTS (SELECT 1 FROM @extschema@.subscription s
					   WHERE s.customer_id = customer.customer_id
						 AND s.partner_id = (SELECT @extschema@._acting_partner('read'))));

ALTER TABLE @extschema@.license_quantity ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS license_quantity_own ON @extschema@.license_quantity;
CREATE POLICY license_quantity_own ON @extschema@.license_quantity FOR SELECT
	USING ((SELECT @extschema@._is_operator())
		   OR EXISTS (SELECT 1 FROM @extschema@.subscription s
					   WHERE s.subscription_id = license_quantity.subscription_id
						 AND s.partner_id = (SELECT @extschema@._acting_partner('read'))));

-- holder rows: those the partner holds.  What a partner that sells to the
-- customer but does not hold its overage may see comes from get_overage():
-- the holding partner and since, not the holding subscription.
ALTER TABLE @extschema@.holder ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS holder_own ON @extschema@.holder;
CREATE POLICY holder_own ON @extschema@.holder FOR SELECT
	USING ((SELECT @extschema@._is_operator())
		   OR partner_id = (SELECT @extschema@._acting_partner('get_overage')));

ALTER TABLE @extschema@.holder_period ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS holder_period_own ON @extschema@.holder_period;
CREATE POLICY holder_period_own ON @extschema@.holder_period FOR SELECT
	USING ((SELECT @extschema@._is_operator())
		   OR partner_id = (SELECT @extschema@._acting_partner('get_overage')));

-- audit rows of changes from or to the partner (a handoff shows as the
-- holder's release to None and the taker's assignment from None)
ALTER TABLE @extschema@.assignment_log ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS assignment_log_own ON @extschema@.assignment_log;
CREATE POLICY assignment_log_own ON @extschema@.assignment_log FOR SELECT
	USING ((SELECT @extschema@._is_operator())
		   OR from_partner_id = (SELECT @extschema@._acting_partner('get_overage'))
		   OR to_partner_id = (SELECT @extschema@._acting_partner('get_overage')));

-- charge lines of the partner (billing); unassigned lines (partner NULL)
-- are the operator's only
ALTER TABLE @extschema@.charge ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS charge_own ON @extschema@.charge;
CREATE POLICY charge_own ON @extschema@.charge FOR SELECT
	USING ((SELECT @extschema@._is_operator())
		   OR partner_id = (SELECT @extschema@._acting_partner('billing')));

-- transfers (1.2): the two partners (global and admin agents) and the
-- customer (its customer admins)
ALTER TABLE @extschema@.transfer ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS transfer_parties ON @extschema@.transfer;
CREATE POLICY transfer_parties ON @extschema@.transfer FOR SELECT
	USING ((SELECT @extschema@._is_operator())
		   OR from_partner_id = (SELECT @extschema@._acting_partner('get_overage'))
		   OR to_partner_id = (SELECT @extschema@._acting_partner('get_overage'))
		   OR customer_id = (SELECT @extschema@._acting_customer()));

-- budgets (1.2): every agent of the partner (as its subscriptions)
ALTER TABLE @extschema@.budget ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS budget_own ON @extschema@.budget;
CREATE POLICY budget_own ON @extschema@.budget FOR SELECT
	USING ((SELECT @extschema@._is_operator())
		   OR partner_id = (SELECT @extschema@._acting_partner('read')));

-- alerts (1.2): every agent of the partner its partner's, both kinds (a
-- pool alert of a (customer, service) without holder, partner NULL, is
-- the operator's and the customer's); a customer admin its customer's
-- pool alerts
ALTER TABLE @extschema@.alert ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS alert_own ON @extschema@.alert;
CREATE POLICY alert_own ON @extschema@.alert FOR SELECT
	USING ((SELECT @extschema@._is_operator())
		   OR partner_id = (SELECT @extschema@._acting_partner('read'))
		   OR (kind = 'pool' AND customer_id = (SELECT @extschema@._acting_customer())));

------------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC, then back what each needs.  The API is
-- every function of the schema whose name does not start with "_" and
-- that is not a trigger function: each of them authorizes its caller.
------------------------------------------------------------------------------

GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;

REVOKE ALL ON ALL TABLES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;

-- the price list is public; no partner data in it (nor in the prices by
-- market and date, nor in which service a kind of call is metered on)
GRANT SELECT ON @extschema@.service, @extschema@.sku, @extschema@.sku_service,
	@extschema@.service_price, @extschema@.call_mapping
	TO PUBLIC;
-- the months and when they were closed: no partner data
GRANT SELECT ON @extschema@.billing_month TO PUBLIC;
-- usage and usage_month: nothing (the operator's; see usage_authorize)

DO $$
DECLARE
	obj	text;
BEGIN
	-- rows decided by the row-level security policies above
	FOR obj IN
		SELECT c.oid::regclass::text FROM pg_catalog.pg_class c
		 WHERE c.relnamespace = '@extschema@'::regnamespace
		   AND c.relkind = 'r' AND c.relrowsecurity
		 ORDER BY 1
	LOOP
		EXECUTE pg_catalog.format('GRANT SELECT ON %s TO PUBLIC', obj);
	END LOOP;

	FOR obj IN
		SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
		 WHERE p.pronamespace = '@extschema@'::regnamespace
		   AND p.prorettype <> 'trigger'::regtype
		   AND (p.proname !~ '^_'
				-- evaluated by the row-level security policies as the
				-- querying role
				OR p.proname IN ('_caller', '_is_operator', '_acting_partner',
								 '_acting_customer', '_customer_visible',
								 '_licence_visible'))
		 ORDER BY 1
	LOOP
		EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', obj);
	END LOOP;
END
$$;
