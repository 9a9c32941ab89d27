--
-- auto_release: when the holder loses its last active overage-enabled
-- licence for a (customer, service), the overage goes to None
--
-- SPEC "Overage holder" rule 1: the holder changes by assign_overage,
-- release_overage, or the holder losing its last active overage-enabled
-- licence for that customer and service (automatic release to None).
--
SET timezone = 'UTC';
CREATE EXTENSION overage;

-- Test helpers, in schema t (dropped at the end).  Subscription ids are
-- random uuids, so the output shows names instead: the name a licence was
-- registered under with t.reg(), or "partner/customer/kind" for the
-- subscriptions that provisioning makes.  t.try() runs a statement and
-- prints "ok" or "SQLSTATE: message" (uuids in the message shown as names).
\i sql/include/holder_fixture.sql

-- A holds c1's overage (first-in with E5: domestic and international) and
-- has a second licence, DOM, that enables domestic only.  B has E5 too.
SELECT t.reg('A.e5', overage.purchase('A', 'c1', 'E5', '0001', 10, '2026-10-01 09:00+00'));
SELECT t.reg('A.dom', overage.purchase('A', 'c1', 'DOM', '0001', 5, '2026-10-01 10:00+00'));
SELECT t.reg('B.e5', overage.purchase('B', 'c1', 'E5', '0001', 20, '2026-10-01 11:00+00'));
SELECT * FROM t.holders('c1');

-- set_quantity never releases, whatever the quantity.
SELECT overage.set_quantity(t.id('A.e5'), 1, '2026-10-02 09:00+00');
SELECT overage.set_quantity(t.id('A.dom'), 1, '2026-10-02 09:00+00');
SELECT * FROM t.holders('c1');

-- Cancelling a licence of a partner that does not hold the overage changes
-- nothing: B's E5 ends, A keeps both services, no audit row.
SELECT count(*) AS log_rows_before FROM overage.assignment_log;
SELECT overage.cancel(t.id('B.e5'), '2026-10-03 09:00+00');
SELECT * FROM t.holders('c1');
SELECT count(*) AS log_rows_after FROM overage.assignment_log;

-- A cancels E5.  International: E5 was A's last licence enabling it, so it
-- goes to None automatically, at the cancellation instant, reason
-- licence-ended.  Domestic: A still has DOM, an active licence enabling
-- domestic overage, so A keeps it.
SELECT overage.cancel(t.id('A.e5'), '2026-10-04 09:00+00');
SELECT * FROM t.holders('c1');
SELECT * FROM t.log('c1');

-- A cancels DOM, its last licence for domestic: None as well.
SELECT overage.cancel(t.id('A.dom'), '2026-10-05 09:00+00');
SELECT * FROM t.holders('c1');
SELECT * FROM t.log('c1') WHERE reason = 'licence-ended';
SELECT * FROM t.periods('c1');

-- The release is automatic wherever the holder's overage sits: customer c2,
-- A holds domestic on an Azure subscription of its own; its only licence
-- ends; None.
SELECT t.reg('A.c2.dom', overage.purchase('A', 'c2', 'DOM', '0001', 3, '2026-10-06 09:00+00'));
SELECT t.reg('A.c2.azure2', overage.create_azure_subscription('A', 'c2', '2026-10-06 10:00+00'));
SELECT overage.assign_overage('A', 'c2', 'dom', t.id('A.c2.azure2'), '2026-10-06 11:00+00');
SELECT * FROM t.holders('c2');
SELECT overage.cancel(t.id('A.c2.dom'), '2026-10-07 09:00+00');
SELECT * FROM t.holders('c2');

-- A licence of another partner does not keep the holder's overage: in c2,
-- B buys DOM (not first: None is not re-enabled), assigns domestic to its
-- overage subscription; C buys DOM too.  When B's licence ends the
-- overage goes to None although C's licence remains.
SELECT t.reg('B.c2.dom', overage.purchase('B', 'c2', 'DOM', '0001', 3, '2026-10-08 09:00+00'));
SELECT t.reg('C.c2.dom', overage.purchase('C', 'c2', 'DOM', '0001', 3, '2026-10-08 10:00+00'));
SELECT * FROM t.holders('c2');
SELECT overage.assign_overage('B', 'c2', 'dom', t.id('B/c2/overage'), '2026-10-08 11:00+00');
SELECT overage.cancel(t.id('B.c2.dom'), '2026-10-09 09:00+00');
SELECT * FROM t.holders('c2');
-- ... and then C, still eligible, may take it.
SELECT overage.assign_overage('C', 'c2', 'dom', t.id('C/c2/overage'), '2026-10-09 10:00+00');
SELECT * FROM t.holders('c2');

-- A licence of a SKU without overage does not count for eligibility: C has
-- E3 (domestic, no IncludeOverage tag) as well; when its DOM ends, None.
SELECT t.reg('C.c2.e3', overage.purchase('C', 'c2', 'E3', '0001', 50, '2026-10-10 09:00+00'));
SELECT overage.cancel(t.id('C.c2.dom'), '2026-10-11 09:00+00');
SELECT * FROM t.holders('c2');
SELECT service_id, from_partner, from_sub, to_partner, at, reason FROM t.log('c2');

-- The subscription that receives the overage cannot be cancelled under the
-- holder's feet (55000); the licences can, and that releases.
SELECT t.reg('B.c1.dom', overage.purchase('B', 'c1', 'DOM', '0001', 1, '2026-10-12 09:00+00'));
SELECT overage.assign_overage('B', 'c1', 'dom', t.id('B/c1/overage'), '2026-10-12 10:00+00');
SELECT t.try($$SELECT overage.cancel(t.id('B/c1/overage'), '2026-10-13 09:00+00')$$);
SELECT * FROM t.holders('c1');

-- A cancellation dated before the holder's last change would release the
-- overage in the past: refused with OV005, and nothing changes (B's
-- licence stays active, B keeps the overage).
SELECT t.try($$SELECT overage.cancel(t.id('B.c1.dom'), '2026-10-12 09:30+00')$$);
SELECT status FROM overage.subscription WHERE subscription_id = t.id('B.c1.dom');
SELECT * FROM t.holders('c1');
-- Cancelled at or after that instant, the licence ends and releases.
SELECT overage.cancel(t.id('B.c1.dom'), '2026-10-13 09:00+00');
SELECT * FROM t.holders('c1');

-- Holder history stays consistent through automatic releases: no overlaps,
-- one open period per (customer, service), one audit row per period.
SELECT count(*) AS overlapping_periods
  FROM overage.holder_period a
  JOIN overage.holder_period b
	ON a.customer_id = b.customer_id AND a.service_id = b.service_id
   AND a.valid_from < b.valid_from
 WHERE a.valid_to IS NULL OR a.valid_to > b.valid_from;
SELECT p.customer_id, p.service_id, count(*) AS periods,
	   count(*) FILTER (WHERE valid_to IS NULL) AS open_periods,
	   (SELECT count(*) FROM overage.assignment_log l
		 WHERE l.customer_id = p.customer_id AND l.service_id = p.service_id) AS log_rows
  FROM overage.holder_period p GROUP BY 1, 2 ORDER BY 1, 2;

SET client_min_messages = warning;
DROP SCHEMA t CASCADE;
DROP EXTENSION overage;
