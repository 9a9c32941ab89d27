--
-- first_in: the first partner to buy an overage SKU for a customer gets
-- the overage of each service of that SKU
--
-- SPEC "Overage holder" rule 1: first-in happens only when the (customer,
-- service) has never had a holder.  A purchase never takes the overage from
-- anyone and never re-enables None.
--
SET timezone = 'UTC';
CREATE EXTENSION overage;

-- Test helpers, in schema t (dropped at the end).  Subscription ids are
-- random uuids, so the output shows names instead: the name a licence was
-- registered under with t.reg(), or "partner/customer/kind" for the
-- subscriptions that provisioning makes.  t.try() runs a statement and
-- prints "ok" or "SQLSTATE: message" (uuids in the message shown as names).
\i sql/include/holder_fixture.sql

-- Rule 1, first-in: the first partner that buys an overage SKU for a
-- customer gets the overage of each service of that SKU, on its overage
-- subscription, at the instant of the purchase.  E5 has two services.
SELECT t.reg('A.e5', overage.purchase('A', 'c1', 'E5', '0001', 10, '2026-10-01 09:00+00'));
SELECT * FROM t.holders('c1');
SELECT * FROM t.log('c1');
SELECT * FROM t.periods('c1');

-- A second partner buying the same SKU for the same customer does not take
-- it: the first partner's purchase and assignment are respected.  B is
-- provisioned all the same (its own overage subscription exists).
SELECT t.reg('B.e5', overage.purchase('B', 'c1', 'E5', '0001', 50, '2026-10-02 09:00+00'));
SELECT * FROM t.holders('c1');
SELECT count(*) AS b_overage_subscriptions FROM overage.subscription
 WHERE partner_id = 'B' AND customer_id = 'c1' AND kind = 'overage';
SELECT count(*) AS log_rows FROM overage.assignment_log WHERE customer_id = 'c1';

-- First-in is per service: for customer c2, B buys DOM (domestic calling
-- only) first and gets domestic; A then buys E5 (domestic and
-- international): domestic stays with B, international has never had a
-- holder, so it goes to A.
SELECT t.reg('B.c2.dom', overage.purchase('B', 'c2', 'DOM', '0001', 5, '2026-10-03 09:00+00'));
SELECT * FROM t.holders('c2');
SELECT t.reg('A.c2.e5', overage.purchase('A', 'c2', 'E5', '0001', 5, '2026-10-04 09:00+00'));
SELECT * FROM t.holders('c2');
SELECT * FROM t.log('c2');

-- A purchase never re-enables None: A sets c1's domestic overage to None;
-- neither A's nor B's next purchase brings it back.  International, still
-- held by A, stays with A.
SELECT overage.release_overage('A', 'c1', 'dom', '2026-10-05 09:00+00');
SELECT t.reg('A.e5.more', overage.purchase('A', 'c1', 'E5', '0001', 1, '2026-10-06 09:00+00'));
SELECT t.reg('B.dom', overage.purchase('B', 'c1', 'DOM', '0001', 1, '2026-10-06 10:00+00'));
SELECT * FROM t.holders('c1');

-- Nor does a purchase undo an automatic release: all of B's licences for
-- c2 end, so c2's domestic overage goes to None (licence-ended); B buying
-- again later does not take it back.
SELECT overage.cancel(t.id('B.c2.dom'), '2026-10-07 09:00+00');
SELECT * FROM t.holders('c2');
SELECT t.reg('B.c2.dom2', overage.purchase('B', 'c2', 'DOM', '0001', 5, '2026-10-08 09:00+00'));
SELECT * FROM t.holders('c2');

-- A non-overage SKU never triggers first-in, even for a brand-new customer
-- and a service that has never had a holder; the later overage purchase
-- by another partner is then the first.
INSERT INTO overage.customer VALUES ('c3', 'Northwind', 'FR');
SELECT t.reg('C.c3.e3', overage.purchase('C', 'c3', 'E3', '0001', 9, '2026-10-09 09:00+00'));
SELECT * FROM t.holders('c3');
SELECT t.reg('B.c3.dom', overage.purchase('B', 'c3', 'DOM', '0001', 1, '2026-10-09 10:00+00'));
SELECT * FROM t.holders('c3');

-- The holder history so far: one open period per (customer, service), and
-- one audit row per change.
SELECT customer_id, service_id, count(*) AS periods,
	   count(*) FILTER (WHERE valid_to IS NULL) AS open_periods
  FROM overage.holder_period GROUP BY 1, 2 ORDER BY 1, 2;
SELECT customer_id, service_id, count(*) AS log_rows
  FROM overage.assignment_log GROUP BY 1, 2 ORDER BY 1, 2;

SET client_min_messages = warning;
DROP SCHEMA t CASCADE;
DROP EXTENSION overage;
