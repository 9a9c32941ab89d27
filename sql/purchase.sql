--
-- purchase: provisioning once per (partner, customer), licences and their
-- quantity history
--
-- SPEC "Parties and subscriptions": purchase of an SKU with includes_overage
-- provisions, once per (partner, customer), the no-cost Azure plan, its
-- default Azure subscription and the overage subscription.  Repeated
-- purchases do not create duplicates; a SKU without overage provisions
-- nothing.  Quantity changes take effect at the instant they are recorded
-- (overage.license_quantity keeps the history).
--
SET timezone = 'UTC';
CREATE EXTENSION overage;

-- Test helpers, in schema t (dropped at the end).  Subscription ids are
-- random uuids, so the output shows names instead: the name a licence was
-- registered under with t.reg(), or "partner/customer/kind" for the
-- subscriptions that provisioning makes.  t.try() runs a statement and
-- prints "ok" or "SQLSTATE: message" (uuids in the message shown as names).
\i sql/include/holder_fixture.sql

-- A partner's first purchase of an overage SKU for a customer provisions,
-- under that partner, an Azure plan, its default Azure subscription and an
-- overage subscription; then the licence itself.
SELECT t.reg('A.e5', overage.purchase('A', 'c1', 'E5', '0001', 10, '2026-10-01 09:00+00'));
SELECT t.nm(subscription_id) AS subscription, kind, product_id, quantity, status,
	   created_at, t.nm(parent_id) AS parent
  FROM overage.subscription ORDER BY created_at, kind;

-- the default Azure subscription and the overage subscription belong to the plan
SELECT count(*) AS children_of_plan FROM overage.subscription
 WHERE parent_id = t.id('A/c1/azure_plan');

-- Repeated purchases by the same partner for the same customer (another
-- overage SKU, the same SKU again) add licences, but no second plan,
-- default Azure subscription or overage subscription.
SELECT t.reg('A.dom', overage.purchase('A', 'c1', 'DOM', '0001', 5, '2026-10-02 09:00+00'));
SELECT t.reg('A.e5b', overage.purchase('A', 'c1', 'E5', '0001', 3, '2026-10-03 09:00+00'));
SELECT kind, count(*) FROM overage.subscription
 WHERE partner_id = 'A' AND customer_id = 'c1' GROUP BY kind ORDER BY kind;

-- Another partner buying for the same customer gets its own set; so does the
-- first partner for another customer.
SELECT t.reg('B.e5', overage.purchase('B', 'c1', 'E5', '0001', 2, '2026-10-04 09:00+00'));
SELECT t.reg('A.c2.dom', overage.purchase('A', 'c2', 'DOM', '0001', 1, '2026-10-04 10:00+00'));
SELECT partner_id, customer_id, kind, count(*) FROM overage.subscription
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;

-- A SKU without the IncludeOverage tag provisions nothing, even when it
-- includes a calling service, and does not take part in first-in.
SELECT t.reg('C.e3', overage.purchase('C', 'c2', 'E3', '0001', 7, '2026-10-05 09:00+00'));
SELECT t.reg('C.basic', overage.purchase('C', 'c2', 'BASIC', '0001', 1, '2026-10-05 09:30+00'));
SELECT t.nm(subscription_id) AS subscription, kind, product_id, quantity
  FROM overage.subscription WHERE partner_id = 'C' ORDER BY created_at;
SELECT * FROM t.holders('c2');		-- only A's DOM purchase counted

-- A customer who only ever had non-overage licences has no overage rows.
INSERT INTO overage.customer VALUES ('c3', 'Northwind', 'FR');
SELECT t.reg('C.c3.e3', overage.purchase('C', 'c3', 'E3', '0001', 4, '2026-10-05 10:00+00'));
SELECT count(*) AS overage_rows FROM overage.get_overage('c3');
SELECT count(*) AS provisioned FROM overage.subscription
 WHERE customer_id = 'c3' AND kind <> 'license';

-- Quantity history: every licence starts a period at its purchase ...
SELECT t.nm(subscription_id) AS licence, valid_from, valid_to, quantity
  FROM overage.license_quantity ORDER BY valid_from, 1;

-- ... set_quantity closes the open period and opens the next one at `at`,
-- the subscription row shows the current quantity ...
SELECT overage.set_quantity(t.id('A.e5'), 12, '2026-10-10 09:00+00');
SELECT overage.set_quantity(t.id('A.e5'), 8, '2026-10-20 09:00+00');
-- ... a second change at the same instant replaces that period's quantity
-- instead of leaving an empty period ...
SELECT overage.set_quantity(t.id('A.e5'), 9, '2026-10-20 09:00+00');
-- ... and cancel ends the open period.
SELECT overage.cancel(t.id('A.e5'), '2026-10-25 09:00+00');
SELECT valid_from, valid_to, quantity FROM overage.license_quantity
 WHERE subscription_id = t.id('A.e5') ORDER BY valid_from;
SELECT quantity, status, ended_at, changed_at FROM overage.subscription
 WHERE subscription_id = t.id('A.e5');

-- A licence cancelled at the very instant of its last quantity change keeps
-- no empty period.
SELECT overage.set_quantity(t.id('A.e5b'), 4, '2026-10-26 09:00+00');
SELECT overage.cancel(t.id('A.e5b'), '2026-10-26 09:00+00');
SELECT valid_from, valid_to, quantity FROM overage.license_quantity
 WHERE subscription_id = t.id('A.e5b') ORDER BY valid_from;

-- Quantity periods never overlap and never leave gaps within a licence.
SELECT count(*) AS overlapping_or_gapped
  FROM overage.license_quantity a
  JOIN overage.license_quantity b
    ON a.subscription_id = b.subscription_id AND a.valid_from < b.valid_from
 WHERE NOT EXISTS (SELECT 1 FROM overage.license_quantity m
					WHERE m.subscription_id = a.subscription_id
					  AND m.valid_from > a.valid_from AND m.valid_from < b.valid_from)
   AND a.valid_to IS DISTINCT FROM b.valid_from;

-- Provisioning again after the overage subscription was given up: a partner
-- whose overage subscription is cancelled gets a new one on its next
-- overage purchase (still only one active at a time).
-- It holds c2's domestic overage (first-in), so it cannot simply be
-- cancelled; after A sets the overage to None it can.
SELECT t.try($$SELECT overage.cancel(t.id('A/c2/overage'), '2026-10-27 09:00+00')$$);
SELECT overage.release_overage('A', 'c2', 'dom', '2026-10-27 09:00+00');
SELECT overage.cancel(t.id('A/c2/overage'), '2026-10-27 09:00+00');
SELECT t.reg('A.c2.old_overage', subscription_id) FROM overage.subscription
 WHERE partner_id = 'A' AND customer_id = 'c2' AND kind = 'overage';
SELECT t.reg('A.c2.dom2', overage.purchase('A', 'c2', 'DOM', '0001', 1, '2026-10-28 09:00+00'));
SELECT t.nm(subscription_id) AS subscription, kind, status, created_at, ended_at
  FROM overage.subscription
 WHERE partner_id = 'A' AND customer_id = 'c2' ORDER BY created_at, kind;
-- the new purchase does not re-enable the None
SELECT * FROM t.holders('c2');

-- Cancelling the Azure plan itself (SPEC is silent; current behaviour): it
-- is allowed while its Azure and overage subscriptions stay active; no
-- further Azure subscription can be made under it, and the next overage
-- purchase provisions a new plan with a new default Azure subscription but
-- keeps the active overage subscription.
SELECT t.reg('B.old_plan', t.id('B/c1/azure_plan'));
SELECT t.reg('B.old_azure', t.id('B/c1/azure_subscription'));
SELECT overage.cancel(t.id('B.old_plan'), '2026-10-29 09:00+00');
SELECT t.try($$SELECT overage.create_azure_subscription('B', 'c1', '2026-10-29 10:00+00')$$);
SELECT t.reg('B.e5.2', overage.purchase('B', 'c1', 'E5', '0001', 1, '2026-10-30 09:00+00'));
SELECT t.nm(subscription_id) AS subscription, kind, status, created_at, t.nm(parent_id) AS parent
  FROM overage.subscription
 WHERE partner_id = 'B' AND customer_id = 'c1' AND kind <> 'license'
 ORDER BY created_at, kind;

SET client_min_messages = warning;
DROP SCHEMA t CASCADE;
DROP EXTENSION overage;
