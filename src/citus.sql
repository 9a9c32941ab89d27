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
LANGUAGE C STABLE PARALLEL SAFE;

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
BEGIN
	RETURN EXISTS (SELECT 1 FROM @extschema@.subscription s
					WHERE s.customer_id = _customer_visible.customer_id
					  AND s.partner_id = @extschema@._acting_partner('read'));
END
$$;

COMMENT ON FUNCTION @extschema@._customer_visible(text) IS
'Internal, for the row-level security policy of customer on a Citus cluster: has the calling agent''s partner (with the read permission) a subscription for the customer?';

CREATE OR REPLACE FUNCTION @extschema@._licence_visible(customer_id text, subscription_id uuid)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN EXISTS (SELECT 1 FROM @extschema@.subscription s
					WHERE s.customer_id = _licence_visible.customer_id
					  AND s.subscription_id = _licence_visible.subscription_id
					  AND s.partner_id = @extschema@._acting_partner('read'));
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
SET citus.enable_ddl_propagation = off
AS $$
DECLARE
	r	record;
BEGIN
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

	-- primary keys that include the distribution column customer_id
	FOR r IN SELECT * FROM (VALUES
				('subscription', 'subscription_pkey', 'customer_id, subscription_id'),
				('license_quantity', 'license_quantity_pkey', 'customer_id, subscription_id, valid_from'),
				('assignment_log', 'assignment_log_pkey', 'customer_id, log_id'),
				('transfer', 'transfer_pkey', 'customer_id, transfer_id'),
				('pstn_call', 'pstn_call_pkey', 'customer_id, call_id'),
				('alert', 'alert_pkey', 'customer_id, alert_id')) AS k(relname, conname, cols)
	LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint n
						WHERE n.conrelid = format('@extschema@.%I', r.relname)::regclass
						  AND n.conname = r.conname
						  AND pg_catalog.pg_get_constraintdef(n.oid) = format('PRIMARY KEY (%s)', r.cols)) THEN
			EXECUTE format('ALTER TABLE @extschema@.%I DROP CONSTRAINT %I, ADD CONSTRAINT %I PRIMARY KEY (%s)',
						   r.relname, r.conname, r.conname, r.cols);
		END IF;
	END LOOP;

	-- the policy functions read agent, a reference table, from the queries
	-- Citus runs on the shards: a local read of a reference table, which
	-- Citus allows only when nested execution is (README "Scaling out")
	ALTER FUNCTION @extschema@._is_operator() SET citus.allow_nested_distributed_execution = on;
	ALTER FUNCTION @extschema@._acting_partner(text) SET citus.allow_nested_distributed_execution = on;
	ALTER FUNCTION @extschema@._acting_customer() SET citus.allow_nested_distributed_execution = on;
	ALTER FUNCTION @extschema@._customer_visible(text) SET citus.allow_nested_distributed_execution = on;
	ALTER FUNCTION @extschema@._licence_visible(text, uuid) SET citus.allow_nested_distributed_execution = on;
END
$$;

COMMENT ON FUNCTION @extschema@._citus_reshape() IS
'Internal, run by distribute() on every node of a Citus cluster: drops the policies and foreign keys among the extension''s tables, makes the primary keys lead with customer_id, lets the policy functions read the reference table agent on a shard. Idempotent';

CREATE OR REPLACE FUNCTION @extschema@.distribute(shard_count integer DEFAULT 32)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
DECLARE
	r		record;
	t		text;
	colocate text := 'none';
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
	IF NOT citus_is_coordinator() THEN
		RAISE EXCEPTION 'overage.distribute() runs on the Citus coordinator'
			USING ERRCODE = 'feature_not_supported',
				  DETAIL = 'This node is not the coordinator (or has no worker nodes); nothing was changed.',
				  HINT = 'Add the workers with citus_add_node() and call it on the coordinator.';
	END IF;

	-- idempotent: a second call finds every table distributed
	IF NOT EXISTS (SELECT 1 FROM unnest(ARRAY[
			'partner', 'customer', 'service', 'sku', 'sku_service', 'agent',
			'billing_month', 'service_price', 'call_mapping', 'price_list_import',
			'subscription', 'license_quantity', 'holder', 'holder_period',
			'assignment_log', 'transfer', 'usage', 'usage_month', 'charge',
			'rated_group', 'rated_line', 'budget', 'alert', 'pstn_call']) AS x(t)
				WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
								   WHERE p.logicalrelid = format('@extschema@.%I', x.t)::regclass)) THEN
		RETURN;
	END IF;

	-- every node's copy of the tables the same shape first
	FOR r IN SELECT * FROM run_command_on_workers('SELECT @extschema@._citus_reshape()') LOOP
		IF NOT r.success THEN
			RAISE EXCEPTION 'could not prepare the tables of worker %:%', r.nodename, r.nodeport
				USING ERRCODE = 'external_routine_exception', DETAIL = r.result;
		END IF;
	END LOOP;
	PERFORM @extschema@._citus_reshape();

	-- the extension's triggers fire on the shards (README "Scaling out")
	SET LOCAL citus.enable_unsafe_triggers = on;
	SET LOCAL citus.multi_shard_modify_mode = 'sequential';

	-- the catalog and the parties: a copy on every node
	FOREACH t IN ARRAY ARRAY['partner', 'customer', 'service', 'sku', 'sku_service',
							 'agent', 'billing_month', 'service_price', 'call_mapping',
							 'price_list_import'] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
						WHERE p.logicalrelid = format('@extschema@.%I', t)::regclass) THEN
			PERFORM create_reference_table(format('@extschema@.%I', t)::regclass);
		END IF;
	END LOOP;

	-- every table keyed by customer: sharded by customer_id, co-located, so
	-- that a customer's rows (and the triggers writing them) are on one node
	FOREACH t IN ARRAY ARRAY['subscription', 'license_quantity', 'holder', 'holder_period',
							 'assignment_log', 'transfer', 'usage', 'usage_month', 'charge',
							 'rated_group', 'rated_line', 'budget', 'alert', 'pstn_call'] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
						WHERE p.logicalrelid = format('@extschema@.%I', t)::regclass) THEN
			IF colocate = 'none' THEN
				PERFORM create_distributed_table(format('@extschema@.%I', t)::regclass, 'customer_id',
												 colocate_with => 'none',
												 shard_count => distribute.shard_count);
			ELSE
				PERFORM create_distributed_table(format('@extschema@.%I', t)::regclass, 'customer_id',
												 colocate_with => colocate);
			END IF;
		END IF;
		colocate := '@extschema@.subscription';
	END LOOP;

	-- the foreign keys again, those to subscription by (customer_id, ...)
	FOR r IN SELECT * FROM (VALUES
			('sku_service', 'sku_service_service_id_fkey', 'FOREIGN KEY (service_id) REFERENCES @extschema@.service'),
			('sku_service', 'sku_service_product_id_sku_id_fkey', 'FOREIGN KEY (product_id, sku_id) REFERENCES @extschema@.sku ON DELETE CASCADE'),
			('agent', 'agent_partner_id_fkey', 'FOREIGN KEY (partner_id) REFERENCES @extschema@.partner'),
			('agent', 'agent_customer_id_fkey', 'FOREIGN KEY (customer_id) REFERENCES @extschema@.customer'),
			('service_price', 'service_price_service_id_fkey', 'FOREIGN KEY (service_id) REFERENCES @extschema@.service'),
			('call_mapping', 'call_mapping_service_id_fkey', 'FOREIGN KEY (service_id) REFERENCES @extschema@.service'),
			('subscription', 'subscription_partner_id_fkey', 'FOREIGN KEY (partner_id) REFERENCES @extschema@.partner'),
			('subscription', 'subscription_customer_id_fkey', 'FOREIGN KEY (customer_id) REFERENCES @extschema@.customer'),
			('subscription', 'subscription_product_id_sku_id_fkey', 'FOREIGN KEY (product_id, sku_id) REFERENCES @extschema@.sku'),
			('subscription', 'subscription_parent_id_fkey', 'FOREIGN KEY (customer_id, parent_id) REFERENCES @extschema@.subscription (customer_id, subscription_id)'),
			('license_quantity', 'license_quantity_subscription_id_fkey', 'FOREIGN KEY (customer_id, subscription_id) REFERENCES @extschema@.subscription (customer_id, subscription_id)'),
			('holder', 'holder_customer_id_fkey', 'FOREIGN KEY (customer_id) REFERENCES @extschema@.customer'),
			('holder', 'holder_service_id_fkey', 'FOREIGN KEY (service_id) REFERENCES @extschema@.service'),
			('holder', 'holder_partner_id_fkey', 'FOREIGN KEY (partner_id) REFERENCES @extschema@.partner'),
			('holder', 'holder_reseller_id_fkey', 'FOREIGN KEY (reseller_id) REFERENCES @extschema@.partner'),
			('holder', 'holder_subscription_id_fkey', 'FOREIGN KEY (customer_id, subscription_id) REFERENCES @extschema@.subscription (customer_id, subscription_id)'),
			('holder_period', 'holder_period_customer_id_service_id_fkey', 'FOREIGN KEY (customer_id, service_id) REFERENCES @extschema@.holder'),
			('transfer', 'transfer_customer_id_fkey', 'FOREIGN KEY (customer_id) REFERENCES @extschema@.customer'),
			('transfer', 'transfer_service_id_fkey', 'FOREIGN KEY (service_id) REFERENCES @extschema@.service'),
			('transfer', 'transfer_from_partner_id_fkey', 'FOREIGN KEY (from_partner_id) REFERENCES @extschema@.partner'),
			('transfer', 'transfer_to_partner_id_fkey', 'FOREIGN KEY (to_partner_id) REFERENCES @extschema@.partner'),
			('transfer', 'transfer_to_reseller_id_fkey', 'FOREIGN KEY (to_reseller_id) REFERENCES @extschema@.partner'),
			('transfer', 'transfer_to_subscription_id_fkey', 'FOREIGN KEY (customer_id, to_subscription_id) REFERENCES @extschema@.subscription (customer_id, subscription_id)'),
			('budget', 'budget_partner_id_fkey', 'FOREIGN KEY (partner_id) REFERENCES @extschema@.partner'),
			('budget', 'budget_customer_id_fkey', 'FOREIGN KEY (customer_id) REFERENCES @extschema@.customer'))
			AS k(relname, conname, def)
	LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint n
						WHERE n.conrelid = format('@extschema@.%I', r.relname)::regclass
						  AND n.conname = r.conname) THEN
			EXECUTE format('ALTER TABLE @extschema@.%I ADD CONSTRAINT %I %s', r.relname, r.conname, r.def);
		END IF;
	END LOOP;

	-- the policies of src/access.sql, calling the functions directly
	FOR r IN SELECT * FROM (VALUES
			('agent', 'agent_self', 'role_name = @extschema@._caller()'),
			('partner', 'partner_own', 'partner_id = @extschema@._acting_partner(''read'')'),
			('subscription', 'subscription_own', 'partner_id = @extschema@._acting_partner(''read'')'),
			('customer', 'customer_bought_for', '@extschema@._customer_visible(customer_id)'),
			('license_quantity', 'license_quantity_own', '@extschema@._licence_visible(customer_id, subscription_id)'),
			('holder', 'holder_own', 'partner_id = @extschema@._acting_partner(''get_overage'')'),
			('holder_period', 'holder_period_own', 'partner_id = @extschema@._acting_partner(''get_overage'')'),
			('assignment_log', 'assignment_log_own', 'from_partner_id = @extschema@._acting_partner(''get_overage'') OR to_partner_id = @extschema@._acting_partner(''get_overage'')'),
			('charge', 'charge_own', 'partner_id = @extschema@._acting_partner(''billing'')'),
			('transfer', 'transfer_parties', 'from_partner_id = @extschema@._acting_partner(''get_overage'') OR to_partner_id = @extschema@._acting_partner(''get_overage'') OR customer_id = @extschema@._acting_customer()'),
			('budget', 'budget_own', 'partner_id = @extschema@._acting_partner(''read'')'),
			('alert', 'alert_own', 'partner_id = @extschema@._acting_partner(''read'') OR (kind = ''pool'' AND customer_id = @extschema@._acting_customer())'))
			AS p(relname, polname, expr)
	LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
						WHERE p.polrelid = format('@extschema@.%I', r.relname)::regclass
						  AND p.polname = r.polname) THEN
			EXECUTE format('CREATE POLICY %I ON @extschema@.%I FOR SELECT USING (@extschema@._is_operator() OR %s)',
						   r.polname, r.relname, r.expr);
		END IF;
	END LOOP;

	-- the month rows: the workers' triggers can lock them, not create them
	INSERT INTO @extschema@.billing_month (month)
	SELECT m::date FROM generate_series('2000-01-01'::date, '2099-12-01'::date, interval '1 month') m
	ON CONFLICT (month) DO NOTHING;
END
$$;

COMMENT ON FUNCTION @extschema@.distribute(integer) IS
'Operator only, on the coordinator of a Citus cluster: makes the catalog and the parties reference tables and every table keyed by customer a distributed table of shard_count shards co-located on customer_id (README "Scaling out"). Idempotent. Without Citus it changes nothing and fails (0A000)';
