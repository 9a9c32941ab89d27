SET timezone = 'UTC';
CREATE EXTENSION overage;

-- Test helpers, in schema t (dropped at the end).  Subscription ids are
-- random uuids, so the output shows names instead: the name a licence was
-- registered under with t.reg(), or "partner/customer/kind" for the
-- subscriptions that provisioning makes.  t.try() runs a statement and
-- prints "ok" or "SQLSTATE: message" (uuids in the message shown as names).
\i sql/include/holder_fixture.sql

-- t.refused(stmt): the error a call fails with, and whether everything the
-- API writes (subscriptions, quantities, holders, periods, audit log) is
-- exactly as it was before the call.
CREATE FUNCTION t.refused(stmt text, OUT result text, OUT unchanged boolean)
	LANGUAGE plpgsql AS $$
DECLARE
	before text := t.state();
BEGIN
	result := t.try(stmt);
	unchanged := t.state() = before;
END $$;

-- The scene: A was first for c1 (E5) and holds both services on its
-- overage subscription; B has E5 for c1 too; A has DOM for c2; C has only
-- E3 (no overage tag) for c1.  A has a cancelled Azure subscription and a
-- cancelled licence; B has an Azure subscription made later in the story.
SELECT t.reg('A.e5', overage.purchase('A', 'c1', 'E5', '0001', 10, '2026-10-01 09:00+00'));
SELECT t.reg('B.e5', overage.purchase('B', 'c1', 'E5', '0001', 10, '2026-10-01 10:00+00'));
SELECT t.reg('A.c2.dom', overage.purchase('A', 'c2', 'DOM', '0001', 1, '2026-10-01 11:00+00'));
SELECT t.reg('C.e3', overage.purchase('C', 'c1', 'E3', '0001', 10, '2026-10-01 12:00+00'));
SELECT t.reg('A.old_azure', overage.create_azure_subscription('A', 'c1', '2026-10-02 09:00+00'));
SELECT overage.cancel(t.id('A.old_azure'), '2026-10-03 09:00+00');
SELECT t.reg('A.old_dom', overage.purchase('A', 'c1', 'DOM', '0001', 1, '2026-10-02 09:00+00'));
SELECT overage.cancel(t.id('A.old_dom'), '2026-10-03 09:00+00');
SELECT overage.set_quantity(t.id('A.e5'), 11, '2026-10-05 09:00+00');
SELECT t.reg('B.late_azure', overage.create_azure_subscription('B', 'c1', '2026-10-20 09:00+00'));
SELECT * FROM t.holders('c1');
SELECT * FROM t.holders('c2');

-- purchase
SELECT v.case, r.*
  FROM (VALUES
	(1, 'unknown partner',			$$SELECT overage.purchase('Z', 'c1', 'E5', '0001', 1, '2026-10-10 09:00+00')$$),
	(2, 'unknown customer',		$$SELECT overage.purchase('A', 'zz', 'E5', '0001', 1, '2026-10-10 09:00+00')$$),
	(3, 'unknown product',			$$SELECT overage.purchase('A', 'c1', 'E7', '0001', 1, '2026-10-10 09:00+00')$$),
	(4, 'unknown sku of product',	$$SELECT overage.purchase('A', 'c1', 'E5', '0002', 1, '2026-10-10 09:00+00')$$),
	(5, 'NULL partner_id',			$$SELECT overage.purchase(NULL, 'c1', 'E5', '0001', 1, '2026-10-10 09:00+00')$$),
	(6, 'NULL customer_id',		$$SELECT overage.purchase('A', NULL, 'E5', '0001', 1, '2026-10-10 09:00+00')$$),
	(7, 'NULL product_id',			$$SELECT overage.purchase('A', 'c1', NULL, '0001', 1, '2026-10-10 09:00+00')$$),
	(8, 'NULL sku_id',				$$SELECT overage.purchase('A', 'c1', 'E5', NULL, 1, '2026-10-10 09:00+00')$$),
	(9, 'NULL quantity',			$$SELECT overage.purchase('A', 'c1', 'E5', '0001', NULL, '2026-10-10 09:00+00')$$),
	(10, 'NULL at',					$$SELECT overage.purchase('A', 'c1', 'E5', '0001', 1, NULL)$$),
	(11, 'quantity 0',				$$SELECT overage.purchase('A', 'c1', 'E5', '0001', 0, '2026-10-10 09:00+00')$$),
	(12, 'quantity -3',				$$SELECT overage.purchase('B', 'c2', 'E5', '0001', -3, '2026-10-10 09:00+00')$$),
	-- (current behaviour, SPEC is silent) a purchase dated before the
	-- partner's overage subscription existed, of a SKU with a service that
	-- never had a holder: first-in cannot give it to a subscription that
	-- did not exist yet, and the purchase is refused as a whole
	(13, 'backdated, first-in',		$$SELECT overage.purchase('A', 'c2', 'E5', '0001', 1, '2026-10-01 10:00+00')$$)
	) AS v(n, "case", stmt), t.refused(v.stmt) r ORDER BY v.n;

-- the refused purchase for c2 provisioned nothing for B (all or nothing)
SELECT count(*) AS b_c2_subscriptions FROM overage.subscription
 WHERE partner_id = 'B' AND customer_id = 'c2';

-- set_quantity
SELECT v.case, r.*
  FROM (VALUES
	(1, 'unknown subscription',	$$SELECT overage.set_quantity('00000000-0000-0000-0000-000000000000', 5, '2026-10-10 09:00+00')$$),
	(2, 'NULL subscription_id',	$$SELECT overage.set_quantity(NULL, 5, '2026-10-10 09:00+00')$$),
	(3, 'NULL quantity',			$$SELECT overage.set_quantity(t.id('A.e5'), NULL, '2026-10-10 09:00+00')$$),
	(4, 'NULL at',					$$SELECT overage.set_quantity(t.id('A.e5'), 5, NULL)$$),
	(5, 'quantity 0',				$$SELECT overage.set_quantity(t.id('A.e5'), 0, '2026-10-10 09:00+00')$$),
	(6, 'quantity -1',				$$SELECT overage.set_quantity(t.id('A.e5'), -1, '2026-10-10 09:00+00')$$),
	(7, 'not a licence',			$$SELECT overage.set_quantity(t.id('A/c1/overage'), 5, '2026-10-10 09:00+00')$$),
	(8, 'cancelled licence',		$$SELECT overage.set_quantity(t.id('A.old_dom'), 5, '2026-10-10 09:00+00')$$),
	(9, 'at before last change',	$$SELECT overage.set_quantity(t.id('A.e5'), 5, '2026-10-04 09:00+00')$$)
	) AS v(n, "case", stmt), t.refused(v.stmt) r ORDER BY v.n;

-- the same instant as the last change is not "earlier": allowed
SELECT overage.set_quantity(t.id('A.e5'), 12, '2026-10-05 09:00+00');

-- cancel
SELECT v.case, r.*
  FROM (VALUES
	(1, 'unknown subscription',	$$SELECT overage.cancel('00000000-0000-0000-0000-000000000000', '2026-10-10 09:00+00')$$),
	(2, 'NULL subscription_id',	$$SELECT overage.cancel(NULL, '2026-10-10 09:00+00')$$),
	(3, 'NULL at',					$$SELECT overage.cancel(t.id('A.e5'), NULL)$$),
	(4, 'cancel twice',			$$SELECT overage.cancel(t.id('A.old_dom'), '2026-10-10 09:00+00')$$),
	(5, 'at before last change',	$$SELECT overage.cancel(t.id('A.e5'), '2026-10-04 09:00+00')$$),
	(6, 'at before creation',		$$SELECT overage.cancel(t.id('B.late_azure'), '2026-10-10 09:00+00')$$),
	(7, 'subscription holds overage', $$SELECT overage.cancel(t.id('A/c1/overage'), '2026-10-10 09:00+00')$$)
	) AS v(n, "case", stmt), t.refused(v.stmt) r ORDER BY v.n;

-- create_azure_subscription
SELECT v.case, r.*
  FROM (VALUES
	(1, 'unknown partner',			$$SELECT overage.create_azure_subscription('Z', 'c1', '2026-10-10 09:00+00')$$),
	(2, 'unknown customer',		$$SELECT overage.create_azure_subscription('A', 'zz', '2026-10-10 09:00+00')$$),
	(3, 'NULL partner_id',			$$SELECT overage.create_azure_subscription(NULL, 'c1', '2026-10-10 09:00+00')$$),
	(4, 'NULL customer_id',		$$SELECT overage.create_azure_subscription('A', NULL, '2026-10-10 09:00+00')$$),
	(5, 'NULL at',					$$SELECT overage.create_azure_subscription('A', 'c1', NULL)$$),
	(6, 'no Azure plan',			$$SELECT overage.create_azure_subscription('C', 'c1', '2026-10-10 09:00+00')$$)
	) AS v(n, "case", stmt), t.refused(v.stmt) r ORDER BY v.n;

-- get_overage and sku_properties
SELECT v.case, r.*
  FROM (VALUES
	(1, 'get_overage NULL',		$$SELECT overage.get_overage(NULL)$$),
	(2, 'get_overage unknown',		$$SELECT overage.get_overage('zz')$$),
	(3, 'sku_properties unknown',	$$SELECT overage.sku_properties('E5', '0002')$$)
	) AS v(n, "case", stmt), t.refused(v.stmt) r ORDER BY v.n;
-- sku_properties is STRICT: NULL in, NULL out
SELECT overage.sku_properties(NULL, '0001') IS NULL AS strict_null;

-- assign_overage.  A holds c1's overage; A is the caller where the target
-- is what is wrong, so that the other rules are satisfied.
SELECT v.case, r.*
  FROM (VALUES
	(1, 'NULL partner_id',			$$SELECT overage.assign_overage(NULL, 'c1', 'dom', t.id('A/c1/azure_subscription'), '2026-10-10 09:00+00')$$),
	(2, 'NULL customer_id',		$$SELECT overage.assign_overage('A', NULL, 'dom', t.id('A/c1/azure_subscription'), '2026-10-10 09:00+00')$$),
	(3, 'NULL service_id',			$$SELECT overage.assign_overage('A', 'c1', NULL, t.id('A/c1/azure_subscription'), '2026-10-10 09:00+00')$$),
	(4, 'NULL subscription_id',	$$SELECT overage.assign_overage('A', 'c1', 'dom', NULL, '2026-10-10 09:00+00')$$),
	(5, 'NULL at',					$$SELECT overage.assign_overage('A', 'c1', 'dom', t.id('A/c1/azure_subscription'), NULL)$$),
	(6, 'unknown partner',			$$SELECT overage.assign_overage('Z', 'c1', 'dom', t.id('A/c1/azure_subscription'), '2026-10-10 09:00+00')$$),
	(7, 'unknown customer',		$$SELECT overage.assign_overage('A', 'zz', 'dom', t.id('A/c1/azure_subscription'), '2026-10-10 09:00+00')$$),
	(8, 'unknown service',			$$SELECT overage.assign_overage('A', 'c1', 'fax', t.id('A/c1/azure_subscription'), '2026-10-10 09:00+00')$$),
	(9, 'unknown subscription',	$$SELECT overage.assign_overage('A', 'c1', 'dom', '00000000-0000-0000-0000-000000000000', '2026-10-10 09:00+00')$$),
	(10, 'no licence at all',		$$SELECT overage.assign_overage('C', 'c2', 'dom', t.id('A/c2/overage'), '2026-10-10 09:00+00')$$),
	(11, 'licence without overage', $$SELECT overage.assign_overage('C', 'c1', 'dom', t.id('A/c1/overage'), '2026-10-10 09:00+00')$$),
	(12, 'SKU without the service', $$SELECT overage.assign_overage('A', 'c2', 'intl', t.id('A/c2/overage'), '2026-10-10 09:00+00')$$),
	(13, 'another partner''s sub',	$$SELECT overage.assign_overage('A', 'c1', 'dom', t.id('B/c1/overage'), '2026-10-10 09:00+00')$$),
	(14, 'another customer''s sub', $$SELECT overage.assign_overage('A', 'c1', 'dom', t.id('A/c2/overage'), '2026-10-10 09:00+00')$$),
	(15, 'cancelled sub',			$$SELECT overage.assign_overage('A', 'c1', 'dom', t.id('A.old_azure'), '2026-10-10 09:00+00')$$),
	(16, 'sub not yet created',		$$SELECT overage.assign_overage('B', 'c1', 'dom', t.id('B.late_azure'), '2026-10-10 09:00+00')$$),
	(17, 'licence subscription',	$$SELECT overage.assign_overage('A', 'c1', 'dom', t.id('A.e5'), '2026-10-10 09:00+00')$$),
	(18, 'azure_plan',				$$SELECT overage.assign_overage('A', 'c1', 'dom', t.id('A/c1/azure_plan'), '2026-10-10 09:00+00')$$),
	(19, 'another partner holds it', $$SELECT overage.assign_overage('B', 'c1', 'dom', t.id('B/c1/overage'), '2026-10-10 09:00+00')$$),
	(20, 'at before last change',	$$SELECT overage.assign_overage('A', 'c1', 'dom', t.id('A/c1/azure_subscription'), '2026-09-30 09:00+00')$$)
	) AS v(n, "case", stmt), t.refused(v.stmt) r ORDER BY v.n;

-- release_overage
SELECT v.case, r.*
  FROM (VALUES
	(1, 'NULL partner_id',			$$SELECT overage.release_overage(NULL, 'c1', 'dom', '2026-10-10 09:00+00')$$),
	(2, 'NULL customer_id',		$$SELECT overage.release_overage('A', NULL, 'dom', '2026-10-10 09:00+00')$$),
	(3, 'NULL service_id',			$$SELECT overage.release_overage('A', 'c1', NULL, '2026-10-10 09:00+00')$$),
	(4, 'NULL at',					$$SELECT overage.release_overage('A', 'c1', 'dom', NULL)$$),
	(5, 'unknown partner',			$$SELECT overage.release_overage('Z', 'c1', 'dom', '2026-10-10 09:00+00')$$),
	(6, 'unknown customer',		$$SELECT overage.release_overage('A', 'zz', 'dom', '2026-10-10 09:00+00')$$),
	(7, 'unknown service',			$$SELECT overage.release_overage('A', 'c1', 'fax', '2026-10-10 09:00+00')$$),
	(8, 'by a non-holder',			$$SELECT overage.release_overage('B', 'c1', 'dom', '2026-10-10 09:00+00')$$),
	(9, 'at before last change',	$$SELECT overage.release_overage('A', 'c1', 'dom', '2026-09-30 09:00+00')$$)
	) AS v(n, "case", stmt), t.refused(v.stmt) r ORDER BY v.n;

-- After all of that the scene is as it was (A's quantity change at the
-- same instant aside): A still holds both services, no audit row beyond
-- the three first-in rows.
SELECT * FROM t.holders('c1');
SELECT * FROM t.holders('c2');
SELECT count(*) AS log_rows FROM overage.assignment_log;
SELECT t.nm(subscription_id) AS subscription, status, quantity
  FROM overage.subscription WHERE kind = 'license' ORDER BY created_at;

-- One full error report, to show the DETAIL and HINT that come with the
-- SQLSTATE (no uuids in this one).
\set VERBOSITY default
SELECT overage.set_quantity(t.id('A.e5'), 0, '2026-10-10 09:00+00');

SET client_min_messages = warning;
DROP SCHEMA t CASCADE;
DROP EXTENSION overage;
