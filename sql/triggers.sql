--
-- triggers: the C triggers enforce the rules whatever writes the tables
--
-- A DBA who writes overage.holder or overage.subscription directly meets
-- the same rules as the API (OV001, OV002, OV003, OV005, no deletes), and
-- gets the same history and audit rows.  The history tables
-- (license_quantity, holder_period, assignment_log) are written only by the
-- extension: direct writes are refused with OV008.
--
SET timezone = 'UTC';
CREATE EXTENSION overage;

-- Test helpers, in schema t (dropped at the end).  Subscription ids are
-- random uuids, so the output shows names instead: the name a licence was
-- registered under with t.reg(), or "partner/customer/kind" for the
-- subscriptions that provisioning makes.  t.try() runs a statement and
-- prints "ok" or "SQLSTATE: message" (uuids in the message shown as names).
\i sql/include/holder_fixture.sql

-- The scene: A was first for c1 (E5: domestic and international) and
-- holds both; B has E5 for c1 too; C has only E3 (no overage) for c1.
SELECT t.reg('A.e5', overage.purchase('A', 'c1', 'E5', '0001', 10, '2026-10-01 09:00+00'));
SELECT t.reg('B.e5', overage.purchase('B', 'c1', 'E5', '0001', 10, '2026-10-01 10:00+00'));
SELECT t.reg('C.e3', overage.purchase('C', 'c1', 'E3', '0001', 10, '2026-10-01 11:00+00'));
SELECT * FROM t.holders('c1');

-- A DBA writes overage.holder directly (no API function involved): the
-- C triggers apply the same rules as assign_overage.

-- another partner while A holds it: OV002
SELECT t.try($$UPDATE overage.holder SET partner_id = 'B', subscription_id = t.id('B/c1/overage'),
					  since = '2026-10-02 09:00+00', reason = 'assign'
				WHERE customer_id = 'c1' AND service_id = 'dom'$$);
-- a partner without an overage-enabled licence: OV001
SELECT t.try($$UPDATE overage.holder SET partner_id = 'C', subscription_id = t.id('A/c1/overage'),
					  since = '2026-10-02 09:00+00'
				WHERE customer_id = 'c1' AND service_id = 'dom'$$);
-- the holder's own licence subscription as target: OV003
SELECT t.try($$UPDATE overage.holder SET subscription_id = t.id('A.e5'), since = '2026-10-02 09:00+00'
				WHERE customer_id = 'c1' AND service_id = 'dom'$$);
-- another partner's subscription as target: OV003
SELECT t.try($$UPDATE overage.holder SET subscription_id = t.id('B/c1/overage'), since = '2026-10-02 09:00+00'
				WHERE customer_id = 'c1' AND service_id = 'dom'$$);
-- a partner without a subscription (half a None): refused
SELECT t.try($$UPDATE overage.holder SET partner_id = NULL, since = '2026-10-02 09:00+00'
				WHERE customer_id = 'c1' AND service_id = 'dom'$$);
-- since going backwards: OV005
SELECT t.try($$UPDATE overage.holder SET partner_id = NULL, subscription_id = NULL,
					  since = '2026-09-01 09:00+00', reason = 'release'
				WHERE customer_id = 'c1' AND service_id = 'dom'$$);
-- moving the row to another customer or service: refused
SELECT t.try($$UPDATE overage.holder SET service_id = 'intl' WHERE customer_id = 'c1' AND service_id = 'dom'$$);
-- deleting or truncating the holder: OV008
SELECT t.try($$DELETE FROM overage.holder WHERE customer_id = 'c1'$$);
SELECT t.try($$TRUNCATE overage.holder CASCADE$$);
-- a second row for the same (customer, service): the primary key
SELECT t.try($$INSERT INTO overage.holder VALUES ('c1', 'dom', 'B', t.id('B/c1/overage'), '2026-10-02 09:00+00', 'assign')$$);
-- nothing of that changed anything
SELECT * FROM t.holders('c1');
SELECT count(*) AS log_rows FROM overage.assignment_log;

-- An UPDATE that leaves the holder as it is (only the reason, or "since"
-- forward) is no change: no audit row, no period, the row stays as it was.
UPDATE overage.holder SET reason = 'assign', since = '2026-10-02 09:00+00'
 WHERE customer_id = 'c1' AND service_id = 'dom';
SELECT * FROM t.holders('c1');
SELECT count(*) AS log_rows FROM overage.assignment_log;

-- Direct UPDATE to None, then to another partner: both allowed, both
-- logged, holder history as through the API.
UPDATE overage.holder SET partner_id = NULL, subscription_id = NULL,
	   since = '2026-10-03 09:00+00', reason = 'release'
 WHERE customer_id = 'c1' AND service_id = 'dom';
UPDATE overage.holder SET partner_id = 'B', subscription_id = t.id('B/c1/azure_subscription'),
	   since = '2026-10-04 09:00+00', reason = 'assign'
 WHERE customer_id = 'c1' AND service_id = 'dom';
SELECT * FROM t.holders('c1');
SELECT * FROM t.log('c1');
SELECT * FROM t.periods('c1');
-- by_role is the role that made the change
SELECT count(*) FILTER (WHERE by_role = current_user) AS by_current_user, count(*) AS all_rows
  FROM overage.assignment_log;

-- A direct INSERT for a (customer, service) that never had a holder goes
-- through the same checks: in c2, A and B have only E3 licences (no
-- overage tag), so nobody may hold c2's overage: OV001.
SELECT t.reg('B.c2.e3', overage.purchase('B', 'c2', 'E3', '0001', 1, '2026-10-05 09:00+00'));
SELECT t.reg('A.c2.e3', overage.purchase('A', 'c2', 'E3', '0001', 1, '2026-10-05 09:00+00'));
SELECT t.try($$INSERT INTO overage.holder VALUES ('c2', 'dom', 'A', t.id('A/c1/overage'), '2026-10-05 10:00+00', 'assign')$$);
SELECT * FROM t.holders('c2');

-- overage.subscription, written directly.

-- subscriptions are never deleted or truncated (OV008), their identity
-- never changes, a cancelled one is never reactivated, changed_at never
-- goes backwards, and the subscription that receives overage cannot end.
SELECT t.try($$DELETE FROM overage.subscription WHERE subscription_id = t.id('C.e3')$$);
SELECT t.try($$TRUNCATE overage.subscription CASCADE$$);
SELECT t.try($$UPDATE overage.subscription SET partner_id = 'B' WHERE subscription_id = t.id('C.e3')$$);
SELECT t.try($$UPDATE overage.subscription SET kind = 'overage', product_id = NULL, sku_id = NULL, quantity = NULL
				WHERE subscription_id = t.id('C.e3')$$);
SELECT t.try($$UPDATE overage.subscription SET quantity = 3, changed_at = '2026-09-01 09:00+00'
				WHERE subscription_id = t.id('C.e3')$$);
SELECT t.try($$UPDATE overage.subscription SET status = 'cancelled', ended_at = '2026-10-06 09:00+00',
					  changed_at = '2026-10-06 09:00+00'
				WHERE subscription_id = t.id('B/c1/azure_subscription')$$);

-- A direct quantity change is recorded in the quantity history like
-- set_quantity's.
UPDATE overage.subscription SET quantity = 4, changed_at = '2026-10-06 09:00+00'
 WHERE subscription_id = t.id('C.e3');
SELECT valid_from, valid_to, quantity FROM overage.license_quantity
 WHERE subscription_id = t.id('C.e3') ORDER BY valid_from;

-- A direct cancellation of the holder's last overage-enabled licence
-- releases the overage like cancel() does (reason licence-ended) ...
UPDATE overage.subscription SET status = 'cancelled', ended_at = '2026-10-07 09:00+00',
	   changed_at = '2026-10-07 09:00+00'
 WHERE subscription_id = t.id('B.e5');
SELECT * FROM t.holders('c1');
SELECT service_id, from_partner, to_partner, at, reason FROM t.log('c1') WHERE at = '2026-10-07 09:00+00';
-- ... and a cancelled subscription cannot be reactivated nor changed.
SELECT t.try($$UPDATE overage.subscription SET status = 'active', ended_at = NULL, changed_at = '2026-10-08 09:00+00'
				WHERE subscription_id = t.id('B.e5')$$);
SELECT t.try($$UPDATE overage.subscription SET quantity = 99, changed_at = '2026-10-08 09:00+00'
				WHERE subscription_id = t.id('B.e5')$$);

-- A directly inserted licence gets its first quantity period.
INSERT INTO overage.subscription (subscription_id, partner_id, customer_id, kind, product_id, sku_id,
								  quantity, created_at, changed_at)
VALUES ('00000000-0000-0000-0000-0000000000a1', 'C', 'c2', 'license', 'BASIC', '0001', 2,
		'2026-10-08 09:00+00', '2026-10-08 09:00+00');
SELECT t.reg('C.c2.basic', '00000000-0000-0000-0000-0000000000a1');
SELECT t.nm(subscription_id), valid_from, valid_to, quantity FROM overage.license_quantity
 WHERE subscription_id = t.id('C.c2.basic');

-- The history tables are written only by the extension's triggers: any
-- direct INSERT, UPDATE, DELETE or TRUNCATE is refused with OV008.
SELECT v.stmt AS statement, t.try(v.stmt) AS result
  FROM (VALUES
	(1, $$INSERT INTO overage.license_quantity VALUES (t.id('C.e3'), '2026-11-01', NULL, 1)$$),
	(2, $$UPDATE overage.license_quantity SET quantity = 1$$),
	(3, $$DELETE FROM overage.license_quantity$$),
	(4, $$TRUNCATE overage.license_quantity$$),
	(5, $$INSERT INTO overage.holder_period VALUES ('c1', 'intl', 'B', t.id('B/c1/overage'), '2026-11-01', NULL)$$),
	(6, $$UPDATE overage.holder_period SET valid_to = NULL$$),
	(7, $$DELETE FROM overage.holder_period$$),
	(8, $$TRUNCATE overage.holder_period$$),
	(9, $$INSERT INTO overage.assignment_log (customer_id, service_id, at, by_role, reason)
		  VALUES ('c1', 'dom', '2026-11-01', current_user, 'forged')$$),
	(10, $$UPDATE overage.assignment_log SET reason = 'forged'$$),
	(11, $$DELETE FROM overage.assignment_log$$),
	(12, $$TRUNCATE overage.assignment_log$$)
	) AS v(n, stmt) ORDER BY v.n;

-- The full error, with its detail and hint.
DELETE FROM overage.assignment_log;

-- A direct UPDATE that changes the holder without naming a reason: the
-- audit row does not repeat the previous change's reason (first-in,
-- licence-ended) but says what happened: release for None, assign for a
-- new holder.
UPDATE overage.holder SET partner_id = NULL, subscription_id = NULL, since = '2026-10-09 09:00+00'
 WHERE customer_id = 'c1' AND service_id = 'intl';
UPDATE overage.holder SET partner_id = 'A', subscription_id = t.id('A/c1/azure_subscription'),
	   since = '2026-10-09 09:00+00'
 WHERE customer_id = 'c1' AND service_id = 'dom';
SELECT * FROM t.log('c1') WHERE at >= '2026-10-09';
SELECT service_id, reason FROM overage.holder WHERE customer_id = 'c1' ORDER BY 1;

-- After all of that: the history is still consistent.
SELECT count(*) AS overlapping_periods
  FROM overage.holder_period a
  JOIN overage.holder_period b
	ON a.customer_id = b.customer_id AND a.service_id = b.service_id
   AND a.valid_from < b.valid_from
 WHERE a.valid_to IS NULL OR a.valid_to > b.valid_from;
SELECT (SELECT count(*) FROM overage.holder_period) AS periods,
	   (SELECT count(*) FROM overage.assignment_log) AS log_rows;

SET client_min_messages = warning;
DROP SCHEMA t CASCADE;
DROP EXTENSION overage;
