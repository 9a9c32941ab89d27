/*-------------------------------------------------------------------------
 *
 * src/citus.sql
 *	  Scale-out on Citus (1.2, README "Scaling out"): overage.distribute()
 *	  makes the catalog and the parties reference tables and every table
 *	  keyed by customer a distributed table, co-located on customer_id, on
 *	  a Citus coordinator.  Single-node installations never run anything
 *	  of this file but the refusal of distribute() and _distributed().
 *
 * What Citus needs that a single node does not is done by distribute(),
 * on every node alike (the extension's tables exist on every node, made by
 * each node's CREATE EXTENSION, and DDL on them is not propagated before
 * they are Citus tables): foreign keys and policies off, primary keys that
 * lead with customer_id, the policy functions allowed to read the
 * reference table agent from a shard's query.  Then the Citus tables, then
 * the foreign keys and policies again in the form Citus accepts, made on
 * the coordinator (Citus propagates them).
 *
 *-------------------------------------------------------------------------
 */

-- DEFINITIONS: functions, triggers, comments, policies, grants (re-runnable)

CREATE OR REPLACE FUNCTION @extschema@._distributed()
RETURNS boolean
AS 'MODULE_PATHNAME', 'overage_distributed'
LANGUAGE C STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp;

COMMENT ON FUNCTION @extschema@._distributed() IS
'Internal: has overage.distribute() made the extension''s tables Citus tables in this database?';

/*
 * Visibility of a customer and of a licence's quantity history to the
 * calling agent, for the policies distribute() puts on customer and
 * license_quantity: Citus refuses a policy with a subquery, which the
 * single-node policies have (EXISTS over subscription).  plpgsql, so the
 * planner cannot inline the query back into the policy.
 */
CREATE OR REPLACE FUNCTION @extschema@._customer_visible(customer_id text)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	-- the caller's partner here, where the caller is known: the query
	-- below may run on another node, as this function's owner
	mine	text := @extschema@._acting_partner('read');
BEGIN
	RETURN mine IS NOT NULL
		   AND EXISTS (SELECT 1 FROM @extschema@.subscription s
						WHERE s.customer_id = _customer_visible.customer_id
						  AND s.partner_id = mine);
END
$$;

COMMENT ON FUNCTION @extschema@._customer_visible(text) IS
'Internal, for the row-level security policy of customer on a Citus cluster: has the calling agent''s partner (with the read permission) a subscription for the customer?';

CREATE OR REPLACE FUNCTION @extschema@._licence_visible(customer_id text, subscription_id uuid)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	mine	text := @extschema@._acting_partner('read');
BEGIN
	RETURN mine IS NOT NULL
		   AND EXISTS (SELECT 1 FROM @extschema@.subscription s
						WHERE s.customer_id = _licence_visible.customer_id
						  AND s.subscription_id = _licence_visible.subscription_id
						  AND s.partner_id = mine);
END
$$;

COMMENT ON FUNCTION @extschema@._licence_visible(text, uuid) IS
'Internal, for the row-level security policy of license_quantity on a Citus cluster: is the licence one of the calling agent''s partner (with the read permission)?';

/*
 * _citus_reshape: the changes every node makes to its own copy of the
 * tables before they become Citus tables.  Idempotent: distribute() runs it
 * on the workers (run_command_on_workers, each in its own transaction) and
 * on the coordinator, and a distribute() that failed half-way runs it
 * again.
 */
CREATE OR REPLACE FUNCTION @extschema@._citus_reshape()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r	record;
	t	text;
	propagate text;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
		RAISE EXCEPTION 'overage._citus_reshape() is for the nodes of a Citus cluster'
			USING ERRCODE = 'feature_not_supported',
				  DETAIL = 'The extension citus is not installed in this database; nothing was changed.';
	END IF;

	-- this node's tables only (the coordinator would send the DDL on);
	-- the setting as it was at the end
	propagate := current_setting('citus.enable_ddl_propagation');
	PERFORM set_config('citus.enable_ddl_propagation', 'off', true);

	-- every policy (Citus refuses their sub-SELECTs): distribute() makes
	-- them again without
	FOR r IN SELECT p.polname, c.relname
			   FROM pg_catalog.pg_policy p
			   JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
			  WHERE c.relnamespace = '@extschema@'::regnamespace
	LOOP
		EXECUTE format('DROP POLICY %I ON @extschema@.%I', r.polname, r.relname);
	END LOOP;

	-- every foreign key among the extension's tables: Citus would turn the
	-- tables of a key graph into Citus local tables first (and fail on the
	-- workers, which have them already); distribute() adds them again
	FOR r IN SELECT n.conname, c.relname
			   FROM pg_catalog.pg_constraint n
			   JOIN pg_catalog.pg_class c ON c.oid = n.conrelid
			  WHERE c.relnamespace = '@extschema@'::regnamespace
				AND n.contype = 'f'
	LOOP
		EXECUTE format('ALTER TABLE @extschema@.%I DROP CONSTRAINT %I', r.relname, r.conname);
	END LOOP;

	-- primary keys that lead with the distribution column customer_id
	FOR t IN SELECT c.relname::text
			   FROM pg_catalog.pg_constraint n
			   JOIN pg_catalog.pg_class c ON c.oid = n.conrelid
			   JOIN pg_catalog.pg_attribute a ON a.attrelid = n.conrelid AND a.attnum = n.conkey[1]
			  WHERE c.relnamespace = '@extschema@'::regnamespace AND n.contype = 'p'
				AND a.attname <> 'customer_id'
				AND c.relname IN ('subscription', 'license_quantity', 'assignment_log',
								  'transfer', 'pstn_call', 'alert')
	LOOP
		CASE t
		WHEN 'subscription' THEN
			ALTER TABLE @extschema@.subscription DROP CONSTRAINT subscription_pkey,
				ADD CONSTRAINT subscription_pkey PRIMARY KEY (customer_id, subscription_id);
		WHEN 'license_quantity' THEN
			ALTER TABLE @extschema@.license_quantity DROP CONSTRAINT license_quantity_pkey,
				ADD CONSTRAINT license_quantity_pkey PRIMARY KEY (customer_id, subscription_id, valid_from);
		WHEN 'assignment_log' THEN
			ALTER TABLE @extschema@.assignment_log DROP CONSTRAINT assignment_log_pkey,
				ADD CONSTRAINT assignment_log_pkey PRIMARY KEY (customer_id, log_id);
		WHEN 'transfer' THEN
			ALTER TABLE @extschema@.transfer DROP CONSTRAINT transfer_pkey,
				ADD CONSTRAINT transfer_pkey PRIMARY KEY (customer_id, transfer_id);
		WHEN 'pstn_call' THEN
			ALTER TABLE @extschema@.pstn_call DROP CONSTRAINT pstn_call_pkey,
				ADD CONSTRAINT pstn_call_pkey PRIMARY KEY (customer_id, call_id);
		WHEN 'alert' THEN
			ALTER TABLE @extschema@.alert DROP CONSTRAINT alert_pkey,
				ADD CONSTRAINT alert_pkey PRIMARY KEY (customer_id, alert_id);
		END CASE;
	END LOOP;

	-- the policy functions read agent, a reference table, from the queries
	-- Citus runs on the shards: a local read of a reference table, which
	-- Citus allows only when nested execution is (README "Scaling out")
	ALTER FUNCTION @extschema@._is_operator() SET citus.allow_nested_distributed_execution = on;
	ALTER FUNCTION @extschema@._acting_partner(text) SET citus.allow_nested_distributed_execution = on;
	ALTER FUNCTION @extschema@._acting_customer() SET citus.allow_nested_distributed_execution = on;
	ALTER FUNCTION @extschema@._customer_visible(text) SET citus.allow_nested_distributed_execution = on;
	ALTER FUNCTION @extschema@._licence_visible(text, uuid) SET citus.allow_nested_distributed_execution = on;

	PERFORM set_config('citus.enable_ddl_propagation', propagate, true);
END
$$;

COMMENT ON FUNCTION @extschema@._citus_reshape() IS
'Internal, run by distribute() on every node of a Citus cluster: drops the policies and foreign keys among the extension''s tables, makes the primary keys lead with customer_id, lets the policy functions read the reference table agent on a shard. Idempotent';

CREATE OR REPLACE FUNCTION @extschema@.distribute(shard_count integer DEFAULT 32)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	reference_tables CONSTANT text[] := ARRAY[
		'partner', 'customer', 'service', 'sku', 'sku_service', 'agent',
		'billing_month', 'service_price', 'call_mapping', 'price_list_import'];
	customer_tables CONSTANT text[] := ARRAY[
		'subscription', 'license_quantity', 'holder', 'holder_period',
		'assignment_log', 'transfer', 'usage', 'usage_month', 'charge',
		'rated_group', 'rated_line', 'budget', 'alert', 'pstn_call'];
	-- Citus' functions and tables are named through format(): they exist
	-- only with Citus (and a checker of the function cannot see them)
	citus	CONSTANT name := 'pg_catalog'::name;
	ok		boolean;
	node	text;
	answer	text;
	rel		regclass;
	tab		text;
BEGIN
	PERFORM @extschema@._authorize('operate', NULL);
	IF shard_count IS NULL OR shard_count < 1 OR shard_count > 64000 THEN
		RAISE EXCEPTION 'shard_count must be between 1 and 64000, not %', coalesce(shard_count::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
		RAISE EXCEPTION 'overage.distribute() needs Citus'
			USING ERRCODE = 'feature_not_supported',
				  DETAIL = 'The extension citus is not installed in this database; nothing was changed.',
				  HINT = 'Run it on the coordinator of a Citus cluster, after CREATE EXTENSION citus.';
	END IF;
	EXECUTE pg_catalog.format('SELECT %I.citus_is_coordinator()', citus) INTO ok;
	IF NOT ok THEN
		RAISE EXCEPTION 'overage.distribute() runs on the Citus coordinator'
			USING ERRCODE = 'feature_not_supported',
				  DETAIL = 'This node is not the coordinator of a Citus cluster; nothing was changed.',
				  HINT = 'Add the workers with citus_add_node() on the coordinator and call it there.';
	END IF;

	-- the workers prepare their tables in transactions of their own, which
	-- must see the extension
	IF (SELECT e.xmin OPERATOR(pg_catalog.=) pg_catalog.pg_current_xact_id_if_assigned()::xid
		  FROM pg_catalog.pg_extension e WHERE e.extname = 'overage') THEN
		RAISE EXCEPTION 'overage.distribute() cannot run in the transaction that created the extension'
			USING ERRCODE = 'invalid_transaction_state',
				  HINT = 'Commit CREATE EXTENSION overage first.';
	END IF;

	-- idempotent: a second call finds every table a Citus table
	EXECUTE pg_catalog.format('SELECT count(*) = $1 FROM %I.pg_dist_partition p
								WHERE p.logicalrelid::pg_catalog.text LIKE ''@extschema@.%%''', citus)
	   INTO ok USING pg_catalog.cardinality(reference_tables) + pg_catalog.cardinality(customer_tables);
	IF ok THEN
		RETURN;
	END IF;

	-- every node's copy of the tables the same shape first (the workers'
	-- in their own transactions: _citus_reshape is idempotent, a failed
	-- distribute() runs it again)
	FOR node, ok, answer IN
		EXECUTE pg_catalog.format('SELECT nodename || '':'' || nodeport, success, result
									 FROM %I.run_command_on_workers($1)', citus)
		USING 'SELECT @extschema@._citus_reshape()'
	LOOP
		IF NOT ok THEN
			RAISE EXCEPTION 'could not prepare the tables of worker %', node
				USING ERRCODE = 'external_routine_exception', DETAIL = answer;
		END IF;
	END LOOP;
	PERFORM @extschema@._citus_reshape();

	-- the extension's triggers fire on the shards (README "Scaling out");
	-- one connection per node while the tables are made
	PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
	PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);

	-- the catalog and the parties: a copy on every node
	FOREACH tab IN ARRAY reference_tables LOOP
		rel := pg_catalog.format('@extschema@.%I', tab)::regclass;
		EXECUTE pg_catalog.format('SELECT NOT EXISTS (SELECT 1 FROM %I.pg_dist_partition WHERE logicalrelid = $1)', citus)
		   INTO ok USING rel;
		IF ok THEN
			EXECUTE pg_catalog.format('SELECT %I.create_reference_table($1)', citus) USING rel;
		END IF;
	END LOOP;

	-- every table keyed by customer: sharded by customer_id, co-located
	-- with subscription, so that a customer's rows (and the triggers that
	-- write them) are on one node
	FOREACH tab IN ARRAY customer_tables LOOP
		rel := pg_catalog.format('@extschema@.%I', tab)::regclass;
		EXECUTE pg_catalog.format('SELECT NOT EXISTS (SELECT 1 FROM %I.pg_dist_partition WHERE logicalrelid = $1)', citus)
		   INTO ok USING rel;
		IF ok AND tab = 'subscription' THEN
			EXECUTE pg_catalog.format('SELECT %I.create_distributed_table($1, ''customer_id'',
										colocate_with => ''none'', shard_count => $2)', citus)
			  USING rel, distribute.shard_count;
		ELSIF ok THEN
			EXECUTE pg_catalog.format('SELECT %I.create_distributed_table($1, ''customer_id'',
										colocate_with => ''@extschema@.subscription'')', citus)
			  USING rel;
		END IF;
	END LOOP;

	-- the foreign keys again (Citus sends them to every node), those to
	-- subscription by (customer_id, subscription_id); one
	-- constraint per ALTER TABLE, as Citus wants
	ALTER TABLE @extschema@.sku_service ADD CONSTRAINT sku_service_service_id_fkey
		FOREIGN KEY (service_id) REFERENCES @extschema@.service;
	ALTER TABLE @extschema@.sku_service ADD CONSTRAINT sku_service_product_id_sku_id_fkey
		FOREIGN KEY (product_id, sku_id) REFERENCES @extschema@.sku ON DELETE CASCADE;
	ALTER TABLE @extschema@.agent ADD CONSTRAINT agent_partner_id_fkey
		FOREIGN KEY (partner_id) REFERENCES @extschema@.partner;
	ALTER TABLE @extschema@.agent ADD CONSTRAINT agent_customer_id_fkey
		FOREIGN KEY (customer_id) REFERENCES @extschema@.customer;
	ALTER TABLE @extschema@.service_price ADD CONSTRAINT service_price_service_id_fkey
		FOREIGN KEY (service_id) REFERENCES @extschema@.service;
	ALTER TABLE @extschema@.call_mapping ADD CONSTRAINT call_mapping_service_id_fkey
		FOREIGN KEY (service_id) REFERENCES @extschema@.service;
	ALTER TABLE @extschema@.subscription ADD CONSTRAINT subscription_partner_id_fkey
		FOREIGN KEY (partner_id) REFERENCES @extschema@.partner;
	ALTER TABLE @extschema@.subscription ADD CONSTRAINT subscription_customer_id_fkey
		FOREIGN KEY (customer_id) REFERENCES @extschema@.customer;
	ALTER TABLE @extschema@.subscription ADD CONSTRAINT subscription_product_id_sku_id_fkey
		FOREIGN KEY (product_id, sku_id) REFERENCES @extschema@.sku;
	ALTER TABLE @extschema@.subscription ADD CONSTRAINT subscription_parent_id_fkey
		FOREIGN KEY (customer_id, parent_id) REFERENCES @extschema@.subscription (customer_id, subscription_id);
	ALTER TABLE @extschema@.license_quantity ADD CONSTRAINT license_quantity_subscription_id_fkey
		FOREIGN KEY (customer_id, subscription_id) REFERENCES @extschema@.subscription (customer_id, subscription_id);
	ALTER TABLE @extschema@.holder ADD CONSTRAINT holder_customer_id_fkey
		FOREIGN KEY (customer_id) REFERENCES @extschema@.customer;
	ALTER TABLE @extschema@.holder ADD CONSTRAINT holder_service_id_fkey
		FOREIGN KEY (service_id) REFERENCES @extschema@.service;
	ALTER TABLE @extschema@.holder ADD CONSTRAINT holder_partner_id_fkey
		FOREIGN KEY (partner_id) REFERENCES @extschema@.partner;
	ALTER TABLE @extschema@.holder ADD CONSTRAINT holder_reseller_id_fkey
		FOREIGN KEY (reseller_id) REFERENCES @extschema@.partner;
	ALTER TABLE @extschema@.holder ADD CONSTRAINT holder_subscription_id_fkey
		FOREIGN KEY (customer_id, subscription_id) REFERENCES @extschema@.subscription (customer_id, subscription_id);
	ALTER TABLE @extschema@.holder_period ADD CONSTRAINT holder_period_customer_id_service_id_fkey
		FOREIGN KEY (customer_id, service_id) REFERENCES @extschema@.holder;
	ALTER TABLE @extschema@.transfer ADD CONSTRAINT transfer_customer_id_fkey
		FOREIGN KEY (customer_id) REFERENCES @extschema@.customer;
	ALTER TABLE @extschema@.transfer ADD CONSTRAINT transfer_service_id_fkey
		FOREIGN KEY (service_id) REFERENCES @extschema@.service;
	ALTER TABLE @extschema@.transfer ADD CONSTRAINT transfer_from_partner_id_fkey
		FOREIGN KEY (from_partner_id) REFERENCES @extschema@.partner;
	ALTER TABLE @extschema@.transfer ADD CONSTRAINT transfer_to_partner_id_fkey
		FOREIGN KEY (to_partner_id) REFERENCES @extschema@.partner;
	ALTER TABLE @extschema@.transfer ADD CONSTRAINT transfer_to_reseller_id_fkey
		FOREIGN KEY (to_reseller_id) REFERENCES @extschema@.partner;
	ALTER TABLE @extschema@.transfer ADD CONSTRAINT transfer_to_subscription_id_fkey
		FOREIGN KEY (customer_id, to_subscription_id) REFERENCES @extschema@.subscription (customer_id, subscription_id);
	ALTER TABLE @extschema@.budget ADD CONSTRAINT budget_partner_id_fkey
		FOREIGN KEY (partner_id) REFERENCES @extschema@.partner;
	ALTER TABLE @extschema@.budget ADD CONSTRAINT budget_customer_id_fkey
		FOREIGN KEY (customer_id) REFERENCES @extschema@.customer;

	-- the policies of src/access.sql, calling the functions directly
	-- (Citus refuses a sub-SELECT in a policy)
	CREATE POLICY agent_self ON @extschema@.agent FOR SELECT
		USING (@extschema@._is_operator() OR role_name = @extschema@._caller());
	CREATE POLICY partner_own ON @extschema@.partner FOR SELECT
		USING (@extschema@._is_operator() OR partner_id = @extschema@._acting_partner('read'));
	CREATE POLICY subscription_own ON @extschema@.subscription FOR SELECT
		USING (@extschema@._is_operator() OR partner_id = @extschema@._acting_partner('read'));
	CREATE POLICY customer_bought_for ON @extschema@.customer FOR SELECT
		USING (@extschema@._is_operator() OR @extschema@._customer_visible(customer_id));
	CREATE POLICY license_quantity_own ON @extschema@.license_quantity FOR SELECT
		USING (@extschema@._is_operator()
			   OR @extschema@._licence_visible(customer_id, subscription_id));
	CREATE POLICY holder_own ON @extschema@.holder FOR SELECT
		USING (@extschema@._is_operator() OR partner_id = @extschema@._acting_partner('get_overage'));
	CREATE POLICY holder_period_own ON @extschema@.holder_period FOR SELECT
		USING (@extschema@._is_operator() OR partner_id = @extschema@._acting_partner('get_overage'));
	CREATE POLICY assignment_log_own ON @extschema@.assignment_log FOR SELECT
		USING (@extschema@._is_operator()
			   OR from_partner_id = @extschema@._acting_partner('get_overage')
			   OR to_partner_id = @extschema@._acting_partner('get_overage'));
	CREATE POLICY charge_own ON @extschema@.charge FOR SELECT
		USING (@extschema@._is_operator() OR partner_id = @extschema@._acting_partner('billing'));
	CREATE POLICY transfer_parties ON @extschema@.transfer FOR SELECT
		USING (@extschema@._is_operator()
			   OR from_partner_id = @extschema@._acting_partner('get_overage')
			   OR to_partner_id = @extschema@._acting_partner('get_overage')
			   OR customer_id = @extschema@._acting_customer());
	CREATE POLICY budget_own ON @extschema@.budget FOR SELECT
		USING (@extschema@._is_operator() OR partner_id = @extschema@._acting_partner('read'));
	CREATE POLICY alert_own ON @extschema@.alert FOR SELECT
		USING (@extschema@._is_operator()
			   OR partner_id = @extschema@._acting_partner('read')
			   OR (kind = 'pool' AND customer_id = @extschema@._acting_customer()));

	-- the month rows: the workers' triggers can lock them, not create them
	INSERT INTO @extschema@.billing_month (month)
	SELECT m::date FROM pg_catalog.generate_series('2000-01-01'::date, '2099-12-01'::date,
												   interval '1 month') m
	ON CONFLICT (month) DO NOTHING;
END
$$;

COMMENT ON FUNCTION @extschema@.distribute(integer) IS
'Operator only, on the coordinator of a Citus cluster: makes the catalog and the parties reference tables and every table keyed by customer a distributed table of shard_count shards co-located on customer_id (README "Scaling out"). Idempotent. Without Citus it changes nothing and fails (0A000)';
