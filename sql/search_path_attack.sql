--
-- search_path_attack: the extension never calls objects from the caller's
-- search_path
--
-- Every SECURITY DEFINER function (and every other function and C trigger
-- of the extension) runs with search_path = pg_catalog, pg_temp and names
-- its own objects with their schema; row-level security policies, column
-- defaults and argument defaults are bound when the extension is created.
-- Here an agent owns a schema with look-alikes of what the extension uses
-- -- the text, name and uuid "=" operators, now(), gen_random_uuid(),
-- format() -- each of which writes a marker row when called, and puts it in
-- front of pg_catalog.  Then the agent, and the superuser, call the API
-- with that search_path: no marker may appear.
--
CREATE EXTENSION overage;
\set SHOW_CONTEXT never
SET timezone = 'UTC';

INSERT INTO overage.service (service_id, name, unit_price)
	VALUES ('voice', 'Domestic calling', 0.02);
INSERT INTO overage.sku (product_id, sku_id, title, tags)
	VALUES ('E5', '0001', 'Microsoft 365 E5 with Calling Plan', 'IncludeOverage');
INSERT INTO overage.sku_service VALUES ('E5', '0001', 'voice', 120);
INSERT INTO overage.partner VALUES ('P1', 'Contoso Reseller'), ('P2', 'Fabrikam Reseller');
INSERT INTO overage.customer VALUES ('C1', 'Tailspin', 'US');

CREATE ROLE regress_overage_attacker;
SELECT overage.add_agent('regress_overage_attacker', 'P1', 'global_admin');
CREATE SCHEMA regress_overage_evil AUTHORIZATION regress_overage_attacker;

-- the attacker builds its traps
SET ROLE regress_overage_attacker;
CREATE TABLE regress_overage_evil.marker (what text, by_role name DEFAULT current_user);
GRANT INSERT, SELECT ON regress_overage_evil.marker TO PUBLIC;
GRANT USAGE ON SCHEMA regress_overage_evil TO PUBLIC;

CREATE FUNCTION regress_overage_evil.texteq(text, text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO regress_overage_evil.marker (what) VALUES ('text = text');
	RETURN pg_catalog.texteq($1, $2);
END $$;
CREATE OPERATOR regress_overage_evil.= (
	LEFTARG = text, RIGHTARG = text, FUNCTION = regress_overage_evil.texteq);

CREATE FUNCTION regress_overage_evil.nameeq(name, name) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO regress_overage_evil.marker (what) VALUES ('name = name');
	RETURN pg_catalog.nameeq($1, $2);
END $$;
CREATE OPERATOR regress_overage_evil.= (
	LEFTARG = name, RIGHTARG = name, FUNCTION = regress_overage_evil.nameeq);

CREATE FUNCTION regress_overage_evil.uuideq(uuid, uuid) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO regress_overage_evil.marker (what) VALUES ('uuid = uuid');
	RETURN pg_catalog.uuid_eq($1, $2);
END $$;
CREATE OPERATOR regress_overage_evil.= (
	LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = regress_overage_evil.uuideq);

CREATE FUNCTION regress_overage_evil.now() RETURNS timestamptz
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO regress_overage_evil.marker (what) VALUES ('now()');
	RETURN pg_catalog.now();
END $$;

CREATE FUNCTION regress_overage_evil.gen_random_uuid() RETURNS uuid
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO regress_overage_evil.marker (what) VALUES ('gen_random_uuid()');
	RETURN pg_catalog.gen_random_uuid();
END $$;

CREATE FUNCTION regress_overage_evil.format(text, text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO regress_overage_evil.marker (what) VALUES ('format()');
	RETURN pg_catalog.format($1, $2);
END $$;

-- it cannot put them into the extension's schema
CREATE FUNCTION overage.now() RETURNS timestamptz LANGUAGE sql AS 'SELECT pg_catalog.now()';

-- the traps work: a query on this search_path calls every one of them
SET search_path = regress_overage_evil, pg_catalog;
SELECT 'a'::text = 'a'::text AS t, 'a'::name = 'a'::name AS n,
	   '00000000-0000-0000-0000-000000000000'::uuid = '00000000-0000-0000-0000-000000000000'::uuid AS u,
	   now() IS NOT NULL AS now, gen_random_uuid() IS NOT NULL AS uuid,
	   format('%s', 'x'::text) AS format;
SELECT what FROM regress_overage_evil.marker ORDER BY what;
DELETE FROM regress_overage_evil.marker;

-- the attacker, a global admin of P1, uses the API on that search_path
-- (this test's own predicates spell out OPERATOR(pg_catalog.=): only the
-- extension's code is on trial)
SELECT overage.purchase('P1', 'C1', 'E5', '0001', 10) IS NOT NULL AS bought;
SELECT overage.set_quantity(subscription_id, 12)
  FROM overage.subscription WHERE kind OPERATOR(pg_catalog.=) 'license';
SELECT overage.create_azure_subscription('P1', 'C1') IS NOT NULL AS created;
SELECT service_id, partner_id FROM overage.get_overage('C1');
SELECT overage.assign_overage('P1', 'C1', 'voice', subscription_id)
  FROM overage.subscription
 WHERE kind OPERATOR(pg_catalog.=) 'azure_subscription'
 ORDER BY created_at DESC LIMIT 1;
SELECT overage.release_overage('P1', 'C1', 'voice');
SELECT role_name, partner_id, agent_role FROM overage.current_agent();
SELECT overage.sku_properties('E5', '0001');
SELECT count(*) > 0 AS sees_rows FROM overage.subscription;
SELECT count(*) > 0 AS sees_rows FROM overage.assignment_log;
SELECT month IS NOT NULL AS pooled FROM overage.pool_status('C1', 'voice');
SELECT count(*) AS charge_lines FROM overage.charge;
-- refusals go through the same code
SELECT overage.purchase('P2', 'C1', 'E5', '0001', 1);
SELECT overage.add_agent('regress_overage_attacker', NULL, 'operator');
SELECT * FROM overage.reconciliation('P1', '2026-01-01');
RESET ROLE;

-- the superuser, on the same search_path (the dangerous case: the
-- attacker's code would run as superuser)
SHOW search_path;
SELECT overage.purchase('P2', 'C1', 'E5', '0001', 5) IS NOT NULL AS bought;
SELECT overage.cancel(subscription_id)
  FROM overage.subscription
 WHERE kind OPERATOR(pg_catalog.=) 'license' AND partner_id OPERATOR(pg_catalog.=) 'P2';
SELECT count(*) AS holders FROM overage.get_overage('C1');
-- 1.2: the overage resource, the reseller and the three-party transfer
SELECT overage.put_overage_resource('P1', 'C1',
	jsonb_build_object('type', 'voice', 'overageEnabled', true, 'partnerId', 'P2',
		'azureEntitlementId', (SELECT subscription_id FROM overage.subscription
								WHERE partner_id OPERATOR(pg_catalog.=) 'P1'
								  AND kind OPERATOR(pg_catalog.=) 'overage')))
	-> 'overageEnabled' AS enabled;
SELECT overage.get_overage_resource('C1') -> 'totalCount' AS items;
SELECT overage.purchase('P2', 'C1', 'E5', '0001', 5) IS NOT NULL AS bought_again;
SELECT overage.request_transfer('P2', 'C1', 'voice',
	(SELECT subscription_id FROM overage.subscription
	  WHERE partner_id OPERATOR(pg_catalog.=) 'P2'
		AND kind OPERATOR(pg_catalog.=) 'overage')) AS tr \gset
SELECT overage.consent_transfer(:'tr', 'holder') AS after_holder,
	   overage.consent_transfer(:'tr', 'customer') AS after_customer;
SELECT overage.request_transfer('P1', 'C1', 'voice',
	(SELECT subscription_id FROM overage.subscription
	  WHERE partner_id OPERATOR(pg_catalog.=) 'P1'
		AND kind OPERATOR(pg_catalog.=) 'overage')) AS tr \gset
SELECT overage.decline_transfer(:'tr', 'customer');
SELECT overage.request_transfer('P1', 'C1', 'voice',
	(SELECT subscription_id FROM overage.subscription
	  WHERE partner_id OPERATOR(pg_catalog.=) 'P1'
		AND kind OPERATOR(pg_catalog.=) 'overage')) AS tr \gset
SELECT overage.withdraw_transfer(:'tr');
SELECT status, count(*) FROM overage.transfer GROUP BY status ORDER BY status;
-- 1.2: budgets, and alerts stored as the rating stores them (as the owner)
SELECT overage.set_budget('P1', 'C1', 100);
SELECT overage.set_budget('P1', 'C1', 200, '{80,50}');
SELECT overage.remove_budget('P1', 'C1');
SELECT overage.set_budget('P1', 'C1', 300);
SELECT amount, currency, thresholds FROM overage.budget;
SELECT overage._raise_alerts('2026-01-01', '{pool,budget}', '{P1,P1}', '{C1,C1}',
	'{voice,NULL}', '{80,50}', '{96,150}', '{120,300}',
	'{2026-01-10 00:00+00,2026-01-11 00:00+00}') AS raised;
SELECT kind, partner_id, threshold FROM overage.alert ORDER BY alert_id;
SELECT overage.remove_agent('regress_overage_attacker');
SELECT overage.add_agent('regress_overage_attacker', 'P1', 'sales_agent');
-- metering: ingest (the C trigger), preview, close, the reconciliation file
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
	VALUES ('C1', 'voice', 'u1', '2026-01-15 10:00+00', 600);
SELECT customer_id, partner_id, overage_seconds FROM overage.preview_month('2026-01-01');
SELECT overage.close_month('2026-01-01') AS lines;
SELECT count(*) AS file_lines FROM overage.reconciliation('P1', '2026-01-01');
SELECT * FROM overage.pool_status('C1', 'voice', '2026-01-31');

-- no trap was ever called
SELECT what, by_role FROM regress_overage_evil.marker;

-- and the API did its work
RESET search_path;
SELECT kind, status, quantity FROM overage.subscription ORDER BY partner_id, kind, created_at;
SELECT from_partner_id, to_partner_id, by_role, reason
  FROM overage.assignment_log ORDER BY log_id;

-- every function of the extension pins its search_path, except two C
-- functions that run no SQL (tags_include_overage, _caller)
SELECT p.oid::regprocedure AS function, p.prosecdef, l.lanname
  FROM pg_proc p
  JOIN pg_language l ON l.oid = p.prolang
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'overage'
 WHERE d.deptype = 'e'
   AND (p.proconfig IS NULL OR p.proconfig[1] <> 'search_path=pg_catalog, pg_temp')
 ORDER BY 1::text;
-- and sets nothing else, except where the README says why
SELECT p.oid::regprocedure AS function, p.proconfig[2:] AS other_settings
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'overage'
 WHERE d.deptype = 'e' AND cardinality(p.proconfig) > 1
 ORDER BY 1::text;
SELECT count(*) AS security_definer_functions
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'overage'
 WHERE d.deptype = 'e' AND p.prosecdef;

-- clean up
SET client_min_messages = warning;
DROP SCHEMA regress_overage_evil CASCADE;
DROP EXTENSION overage;
DROP ROLE regress_overage_attacker;
