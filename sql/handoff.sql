--
-- handoff: the holder sets the overage to None, then another partner may
-- assign it; a partner moves it between its own subscriptions
--
-- SPEC "None-release handoff" and "Overage holder" rules 2-4: another
-- partner may assign only after the holder set the overage to None;
-- release by a non-holder is an error, release when None a no-op; every
-- change is audited and the holder history has no overlapping periods.
--
SET timezone = 'UTC';
CREATE EXTENSION overage;

-- Test helpers, in schema t (dropped at the end).  Subscription ids are
-- random uuids, so the output shows names instead: the name a licence was
-- registered under with t.reg(), or "partner/customer/kind" for the
-- subscriptions that provisioning makes.  t.try() runs a statement and
-- prints "ok" or "SQLSTATE: message" (uuids in the message shown as names).
\i sql/include/holder_fixture.sql

-- A and B both sell E5 to c1; A was first and holds both services.
SELECT t.reg('A.e5', overage.purchase('A', 'c1', 'E5', '0001', 10, '2026-10-01 09:00+00'));
SELECT t.reg('B.e5', overage.purchase('B', 'c1', 'E5', '0001', 10, '2026-10-02 09:00+00'));
SELECT * FROM t.holders('c1');

-- The changes below are made by an admin agent's database role, which the
-- audit log records.
CREATE ROLE regress_overage_agent;
GRANT USAGE ON SCHEMA overage, t TO regress_overage_agent;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA overage, t TO regress_overage_agent;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA overage TO regress_overage_agent;
SELECT overage.add_agent('regress_overage_agent', NULL, 'operator');
SET ROLE regress_overage_agent;

-- While A holds it, B cannot assign it (OV002) ...
SELECT t.try($$SELECT overage.assign_overage('B', 'c1', 'dom', t.id('B/c1/overage'), '2026-10-03 09:00+00')$$);
-- ... and B cannot release it either (OV004).
SELECT t.try($$SELECT overage.release_overage('B', 'c1', 'dom', '2026-10-03 09:00+00')$$);
SELECT * FROM t.holders('c1');

-- A partner may move the overage between its own subscriptions: A moves
-- domestic to its default Azure subscription, then to a new Azure
-- subscription, then back to its overage subscription.
SELECT overage.assign_overage('A', 'c1', 'dom', t.id('A/c1/azure_subscription'), '2026-10-04 09:00+00');
SELECT t.reg('A.azure2', overage.create_azure_subscription('A', 'c1', '2026-10-05 09:00+00'));
SELECT overage.assign_overage('A', 'c1', 'dom', t.id('A.azure2'), '2026-10-06 09:00+00');
SELECT overage.assign_overage('A', 'c1', 'dom', t.id('A/c1/overage'), '2026-10-07 09:00+00');
SELECT * FROM t.holders('c1');

-- Assigning to the subscription that already holds it is no change: no
-- audit row, no new period.
SELECT overage.assign_overage('A', 'c1', 'dom', t.id('A/c1/overage'), '2026-10-07 12:00+00');

-- None-release handoff: A sets domestic to None ...
SELECT overage.release_overage('A', 'c1', 'dom', '2026-10-08 09:00+00');
SELECT * FROM t.holders('c1');
-- ... releasing again while it is None is a no-op (by anybody) ...
SELECT overage.release_overage('A', 'c1', 'dom', '2026-10-08 10:00+00');
SELECT overage.release_overage('B', 'c1', 'dom', '2026-10-08 11:00+00');
SELECT * FROM t.holders('c1');
-- ... and only now may B assign it to one of its own subscriptions.
SELECT overage.assign_overage('B', 'c1', 'dom', t.id('B/c1/azure_subscription'), '2026-10-09 09:00+00');
SELECT * FROM t.holders('c1');
-- Now A is the one that must wait: OV002 for assign, OV004 for release.
SELECT t.try($$SELECT overage.assign_overage('A', 'c1', 'dom', t.id('A/c1/overage'), '2026-10-10 09:00+00')$$);
SELECT t.try($$SELECT overage.release_overage('A', 'c1', 'dom', '2026-10-10 09:00+00')$$);

-- International was never touched: still A's since first-in.
SELECT * FROM t.holders('c1');

RESET ROLE;

-- The audit log: one row per change of holder, with from, to, the instant,
-- the acting role and the reason.  The no-op assign and the no-op releases
-- wrote nothing.  The first-in rows were written by the purchase, made by
-- the superuser that runs this test.
SELECT l.service_id, l.from_partner, l.from_sub, l.to_partner, l.to_sub, l.at,
	   CASE WHEN a.by_role = current_user THEN '(test superuser)'
			ELSE a.by_role::text END AS by_role, l.reason
  FROM t.log('c1') l
  JOIN overage.assignment_log a
	ON a.customer_id = 'c1' AND a.service_id = l.service_id AND a.at = l.at
 ORDER BY a.log_id;

-- The holder history: consecutive periods, each starting where the previous
-- one ended, the None period included; exactly one open period.
SELECT * FROM t.periods('c1');

-- No two periods of a (customer, service) overlap.
SELECT count(*) AS overlapping_periods
  FROM overage.holder_period a
  JOIN overage.holder_period b
	ON a.customer_id = b.customer_id AND a.service_id = b.service_id
   AND a.valid_from < b.valid_from
 WHERE a.valid_to IS NULL OR a.valid_to > b.valid_from;

-- Two changes at the same instant: the empty period in between is not kept
-- (B releases and A assigns at the very same instant).
SELECT overage.release_overage('B', 'c1', 'dom', '2026-10-11 09:00+00');
SELECT overage.assign_overage('A', 'c1', 'dom', t.id('A.azure2'), '2026-10-11 09:00+00');
SELECT * FROM t.periods('c1') WHERE valid_from >= '2026-10-09';
SELECT from_partner, to_partner, to_sub, at, reason FROM t.log('c1')
 WHERE at >= '2026-10-11';

-- Releasing what is already None is a no-op even with an instant earlier
-- than the last change (current behaviour: nothing changes, so there is
-- nothing to order); so is releasing a service that never had a holder.
SELECT overage.release_overage('A', 'c1', 'intl', '2026-10-12 09:00+00');
SELECT t.try($$SELECT overage.release_overage('A', 'c1', 'intl', '2026-10-01 09:00+00')$$);
SELECT t.try($$SELECT overage.release_overage('B', 'c2', 'dom', '2026-10-01 09:00+00')$$);
SELECT * FROM t.holders('c1');
SELECT * FROM t.holders('c2');
SELECT count(*) AS log_rows FROM overage.assignment_log;

SET client_min_messages = warning;
DROP OWNED BY regress_overage_agent;
DROP ROLE regress_overage_agent;
RESET client_min_messages;

SET client_min_messages = warning;
DROP SCHEMA t CASCADE;
DROP EXTENSION overage;
