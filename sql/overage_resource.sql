--
-- overage_resource: the overage as Partner Center's REST resource
--
-- get_overage_resource(customer) is the GET body, put_overage_resource
-- (partner, customer, body) the PUT: a front end passes JSON straight
-- through.  The PUT validates its body strictly; each refusal is 22023
-- naming the key (22004 for a NULL body) and changes nothing.
--
SET timezone = 'UTC';
CREATE EXTENSION overage;
\set SHOW_CONTEXT never
\i sql/include/holder_fixture.sql
CREATE FUNCTION t.refused(stmt text, OUT result text, OUT unchanged boolean)
	LANGUAGE plpgsql AS $$
DECLARE
	before text := t.state();
BEGIN
	result := t.try(stmt);
	unchanged := t.state() = before;
END $$;
-- the resource with subscription ids shown as names
CREATE FUNCTION t.show(j jsonb) RETURNS jsonb LANGUAGE sql AS $$
	SELECT CASE WHEN j ? 'items' THEN
		jsonb_set(j, '{items}', coalesce((SELECT jsonb_agg(t.show(i) ORDER BY o)
			FROM jsonb_array_elements(j -> 'items') WITH ORDINALITY AS x(i, o)), '[]'))
	ELSE
		CASE WHEN j ->> 'azureEntitlementId' IS NULL THEN j
			 ELSE jsonb_set(j, '{azureEntitlementId}', to_jsonb(t.nm((j ->> 'azureEntitlementId')::uuid))) END
	END $$;
INSERT INTO overage.partner VALUES ('R', 'Rho Indirect Reseller');

-- a customer with no overage yet: an empty collection
SELECT overage.get_overage_resource('c1');

-- A buys E5 for c1 (first-in on dom and intl); B buys E5 too
SELECT t.reg('A.e5', overage.purchase('A', 'c1', 'E5', '0001', 10, '2026-10-01 09:00+00'));
SELECT t.reg('B.e5', overage.purchase('B', 'c1', 'E5', '0001', 10, '2026-10-01 10:00+00'));
SELECT jsonb_pretty(t.show(overage.get_overage_resource('c1')));

-- PUT: A moves dom to its Azure subscription for indirect reseller R
SELECT t.show(overage.put_overage_resource('A', 'c1',
	jsonb_build_object('type', 'dom', 'overageEnabled', true,
					   'azureEntitlementId', t.id('A/c1/azure_subscription'),
					   'partnerId', 'R'),
	'2026-10-02 00:00+00'));
-- PUT: A disables intl (None)
SELECT t.show(overage.put_overage_resource('A', 'c1',
	'{"type": "intl", "overageEnabled": false}', '2026-10-03 00:00+00'));
-- PUT: B enables intl (null for the reseller is allowed, as GET shows it)
SELECT t.show(overage.put_overage_resource('B', 'c1',
	jsonb_build_object('type', 'intl', 'overageEnabled', true,
					   'azureEntitlementId', t.id('B/c1/overage'), 'partnerId', NULL),
	'2026-10-04 00:00+00'));
SELECT jsonb_pretty(t.show(overage.get_overage_resource('c1')));
SELECT * FROM t.holders('c1');

-- the body, strictly: each refusal names the key and writes nothing
SELECT * FROM t.refused($$SELECT overage.put_overage_resource('A', 'c1', '[]', '2026-10-05')$$);	-- not an object
SELECT * FROM t.refused($$SELECT overage.put_overage_resource('A', 'c1', '"dom"', '2026-10-05')$$);	-- not an object
SELECT * FROM t.refused($$SELECT overage.put_overage_resource('A', 'c1', NULL, '2026-10-05')$$);	-- 22004
SELECT * FROM t.refused($$SELECT overage.put_overage_resource('A', 'c1', '{"overageEnabled": false}', '2026-10-05')$$);	-- missing type
SELECT * FROM t.refused($$SELECT overage.put_overage_resource('A', 'c1', '{"type": "dom"}', '2026-10-05')$$);	-- missing overageEnabled
SELECT * FROM t.refused($$SELECT overage.put_overage_resource('A', 'c1', '{"type": 7, "overageEnabled": false}', '2026-10-05')$$);	-- wrong type
SELECT * FROM t.refused($$SELECT overage.put_overage_resource('A', 'c1', '{"type": "dom", "overageEnabled": "false"}', '2026-10-05')$$);	-- wrong type
SELECT * FROM t.refused($$SELECT overage.put_overage_resource('A', 'c1', '{"type": "dom", "overageEnabled": true, "azureEntitlementId": 12}', '2026-10-05')$$);	-- wrong type
SELECT * FROM t.refused($$SELECT overage.put_overage_resource('A', 'c1', '{"type": "dom", "overageEnabled": true, "azureEntitlementId": "x", "partnerId": ["R"]}', '2026-10-05')$$);	-- wrong type
SELECT * FROM t.refused($$SELECT overage.put_overage_resource('A', 'c1', '{"type": "dom", "overageEnabled": false, "attributes": {"objectType": "Overage"}}', '2026-10-05')$$);	-- unknown key
SELECT * FROM t.refused($$SELECT overage.put_overage_resource('A', 'c1', '{"type": "dom", "overageenabled": false}', '2026-10-05')$$);	-- unknown key (case)
SELECT * FROM t.refused($$SELECT overage.put_overage_resource('A', 'c1', '{"type": "dom", "overageEnabled": true, "azureEntitlementId": "not-a-uuid"}', '2026-10-05')$$);	-- bad uuid
SELECT * FROM t.refused($$SELECT overage.put_overage_resource('A', 'c1', '{"type": "dom", "overageEnabled": true}', '2026-10-05')$$);	-- enabled without a subscription
SELECT * FROM t.refused($$SELECT overage.put_overage_resource('A', 'c1', '{"type": "dom", "overageEnabled": true, "azureEntitlementId": null}', '2026-10-05')$$);	-- enabled without a subscription
SELECT * FROM t.refused(format($$SELECT overage.put_overage_resource('A', 'c1', '{"type": "dom", "overageEnabled": false, "azureEntitlementId": "%s"}', '2026-10-05')$$, t.id('A/c1/overage')));	-- None has no subscription
-- and the rules of assign and release, with their own SQLSTATEs
SELECT * FROM t.refused(format($$SELECT overage.put_overage_resource('A', 'c1', '{"type": "intl", "overageEnabled": true, "azureEntitlementId": "%s"}', '2026-10-05')$$, t.id('A/c1/overage')));	-- OV002
SELECT * FROM t.refused($$SELECT overage.put_overage_resource('A', 'c1', '{"type": "intl", "overageEnabled": false}', '2026-10-05')$$);	-- OV004
SELECT * FROM t.refused(format($$SELECT overage.put_overage_resource('A', 'c1', '{"type": "dom", "overageEnabled": true, "azureEntitlementId": "%s", "partnerId": "Z"}', '2026-10-05')$$, t.id('A/c1/overage')));	-- 23503 reseller
SELECT * FROM t.refused(format($$SELECT overage.put_overage_resource('A', 'c1', '{"type": "dom", "overageEnabled": true, "azureEntitlementId": "%s", "partnerId": "A"}', '2026-10-05')$$, t.id('A/c1/overage')));	-- 22023 own reseller
SELECT * FROM t.refused(format($$SELECT overage.put_overage_resource('A', 'c1', '{"type": "fax", "overageEnabled": true, "azureEntitlementId": "%s"}', '2026-10-05')$$, t.id('A/c1/overage')));	-- 23503 service

-- releasing a service that never had a holder answers None, writing nothing
INSERT INTO overage.service (service_id, name, unit_price) VALUES ('fax', 'Fax', 0.01);
SELECT overage.put_overage_resource('A', 'c1', '{"type": "fax", "overageEnabled": false}', '2026-10-05');

-- an agent of B sees A's holding without A's subscription or reseller, as
-- get_overage shows it
CREATE ROLE regress_overage_res_b;
SELECT overage.add_agent('regress_overage_res_b', 'B', 'global_admin');
SET ROLE regress_overage_res_b;
SELECT jsonb_pretty(overage.get_overage_resource('c1') #- '{items,1,azureEntitlementId}');
SELECT (overage.get_overage_resource('c1') #>> '{items,1,azureEntitlementId}') IS NOT NULL AS own_subscription_shown;
RESET ROLE;

-- built with the JSON functions: every value is a proper JSON scalar,
-- whatever the ids hold
INSERT INTO overage.customer VALUES (E'c"3\\\n', 'Quote "and" backslash', NULL);
SELECT t.reg('A.c3', overage.purchase('A', E'c"3\\\n', 'DOM', '0001', 1, '2026-10-01 09:00+00'));
SELECT overage.get_overage_resource(E'c"3\\\n') -> 'totalCount' AS total,
	   overage.get_overage_resource(E'c"3\\\n') #>> '{items,0,type}' AS type;

SET client_min_messages = warning;
DROP SCHEMA t CASCADE;
DROP EXTENSION overage;
DROP ROLE regress_overage_res_b;
