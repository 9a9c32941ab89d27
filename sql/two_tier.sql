--
-- two_tier: indirect providers and their resellers (SPEC 1.2)
--
-- An indirect provider holds the overage on behalf of an indirect reseller:
-- assign_overage's last parameter reseller_id.  The holder, its history and
-- the audit log record the reseller; a charge line is per (holder
-- subscription, reseller, customer, service, unit price) and carries it;
-- the reconciliation file shows it as Tier2MpnId.  A reseller is never a
-- holder by itself and is not the target of first-in.
--
SET timezone = 'UTC';
CREATE EXTENSION overage;
\set SHOW_CONTEXT never
\i sql/include/holder_fixture.sql
INSERT INTO overage.partner VALUES ('R1', 'Rho One Reseller'), ('R2', 'Rho Two Reseller');

-- A (an indirect provider) buys for c1: first-in, no reseller
SELECT t.reg('A.e5', overage.purchase('A', 'c1', 'E5', '0001', 1, '2026-10-01 00:00+00'));
SELECT service_id, partner_id, reseller_id, reason FROM overage.holder ORDER BY 1;

-- intl (no allowance: every second is overage) for R1 from 10-10, for R2
-- from 10-20 on the same subscription, direct again from 10-25
SELECT overage.assign_overage('A', 'c1', 'intl', t.id('A/c1/overage'), '2026-10-10 00:00+00', 'R1');
SELECT overage.assign_overage('A', 'c1', 'intl', t.id('A/c1/overage'), '2026-10-20 00:00+00', 'R2');
SELECT overage.assign_overage('A', 'c1', 'intl', t.id('A/c1/overage'), '2026-10-25 00:00+00');
-- the same again is no change: nothing logged
SELECT overage.assign_overage('A', 'c1', 'intl', t.id('A/c1/overage'), '2026-10-26 00:00+00');
SELECT service_id, partner_id, t.nm(subscription_id), reseller_id, since, reason
  FROM overage.holder WHERE service_id = 'intl';
SELECT partner_id, t.nm(subscription_id), reseller_id, valid_from, valid_to
  FROM overage.holder_period WHERE service_id = 'intl' ORDER BY valid_from;
SELECT from_partner_id, from_reseller_id, to_partner_id, to_reseller_id, at, reason
  FROM overage.assignment_log WHERE service_id = 'intl' ORDER BY log_id;

-- refused: an unknown reseller (23503), the partner itself (22023)
SELECT t.try($$SELECT overage.assign_overage('A', 'c1', 'intl', t.id('A/c1/overage'), '2026-10-27 00:00+00', 'Z')$$);
SELECT t.try($$SELECT overage.assign_overage('A', 'c1', 'intl', t.id('A/c1/overage'), '2026-10-27 00:00+00', 'A')$$);
-- None clears the reseller, also on a direct write that leaves it
SELECT overage.assign_overage('A', 'c1', 'dom', t.id('A/c1/overage'), '2026-10-27 00:00+00', 'R1');
UPDATE overage.holder SET partner_id = NULL, subscription_id = NULL, since = '2026-10-28 00:00+00'
 WHERE customer_id = 'c1' AND service_id = 'dom';
SELECT service_id, partner_id, reseller_id, reason FROM overage.holder
 WHERE customer_id = 'c1' AND service_id = 'dom';
-- a direct write cannot make a reseller the holder by itself (CHECK
-- holder_reseller: a reseller only with a holder, never the holder itself)
SELECT t.try($$UPDATE overage.holder SET reseller_id = 'A' WHERE customer_id = 'c1' AND service_id = 'intl'$$);

-- calls of intl:
--   10-05 60 s  -> A direct (first-in)
--   10-12 120 s -> A for R1
--   10-21 180 s -> A for R2
--   10-22 60 s  -> A for R2
--   10-30 240 s -> A direct
-- lines (0.10 a minute): A direct 300 s (5 min, 0.50), A/R1 120 s (2 min,
-- 0.20), A/R2 240 s (4 min, 0.40): one line per (subscription, reseller)
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('c1', 'intl', 'u', '2026-10-05 00:00+00', 60),
	('c1', 'intl', 'u', '2026-10-12 00:00+00', 120),
	('c1', 'intl', 'u', '2026-10-21 00:00+00', 180),
	('c1', 'intl', 'u', '2026-10-22 00:00+00', 60),
	('c1', 'intl', 'u', '2026-10-30 00:00+00', 240);
SELECT overage.close_month('2026-10-01');
SELECT partner_id, t.nm(subscription_id), reseller_id, overage_seconds, quantity, amount
  FROM overage.charge ORDER BY reseller_id NULLS FIRST;
SELECT "PartnerId", "CustomerId", "MpnId", "Tier2MpnId", "MeterId", "Quantity", "BillingPreTaxTotal"
  FROM overage.reconciliation('A', '2026-10-01');
-- a reseller is billed nothing itself: its own file is empty
SELECT count(*) AS r1_lines FROM overage.reconciliation('R1', '2026-10-01');
SELECT check_name, ok FROM overage.verify() WHERE NOT ok;

SET client_min_messages = warning;
DROP SCHEMA t CASCADE;
DROP EXTENSION overage;
