--
-- verify: overage.verify() names every fact the triggers maintain when it
-- is broken
--
-- A superuser can write the tables with the triggers off
-- (session_replication_role = replica), and a restore takes its rows as
-- they are.  verify() is the operator's check afterwards: one row per
-- check, the first offending keys and a count in detail; it reports and
-- never repairs.  Below, a database filled through the API passes every
-- check; then each fact is broken on its own (in a transaction rolled back
-- afterwards) and verify() names it.
--
SET timezone = 'UTC';
CREATE EXTENSION overage;
\i sql/include/holder_fixture.sql

-- The story: A is first for c1 (E5: dom and intl), B also buys E5 for c1;
-- A raises its quantity, moves dom to a new Azure subscription, then hands
-- dom to B (None, then B assigns); calls in October, October closed; a
-- basic licence of C is bought and cancelled.
SELECT t.reg('A.e5', overage.purchase('A', 'c1', 'E5', '0001', 10, '2026-10-01 09:00+00'));
SELECT t.reg('B.e5', overage.purchase('B', 'c1', 'E5', '0001', 5, '2026-10-01 10:00+00'));
SELECT t.reg('C.basic', overage.purchase('C', 'c1', 'BASIC', '0001', 3, '2026-10-01 11:00+00'));
SELECT overage.set_quantity(t.id('A.e5'), 12, '2026-10-05 00:00+00');
SELECT t.reg('A.az2', overage.create_azure_subscription('A', 'c1', '2026-10-06 00:00+00'));
SELECT overage.assign_overage('A', 'c1', 'dom', t.id('A.az2'), '2026-10-07 00:00+00');
SELECT overage.release_overage('A', 'c1', 'dom', '2026-10-20 00:00+00');
SELECT overage.assign_overage('B', 'c1', 'dom', t.id('B/c1/overage'), '2026-10-21 00:00+00');
SELECT overage.cancel(t.id('C.basic'), '2026-10-25 00:00+00');
-- 1.2: B takes intl over from A by transfer (both consents on 10-23), and A
-- asks for dom back in November (pending)
SELECT t.reg('tr.intl', overage.request_transfer('B', 'c1', 'intl', t.id('B/c1/overage'), '2026-10-22 00:00+00'));
SELECT overage.consent_transfer(t.id('tr.intl'), 'holder', '2026-10-23 00:00+00'),
	   overage.consent_transfer(t.id('tr.intl'), 'customer', '2026-10-23 00:00+00');
SELECT t.reg('tr.dom', overage.request_transfer('A', 'c1', 'dom', t.id('A/c1/overage'), '2026-11-01 00:00+00'));
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('c1', 'dom', 'u1', '2026-10-02 09:00+00', 86400),
	('c1', 'dom', 'u2', '2026-10-10 09:00+00', 86400),
	('c1', 'dom', 'u3', '2026-10-22 09:00+00', 3600),
	('c1', 'intl', 'u1', '2026-10-03 09:00+00', 600),
	('c1', 'dom', 'u1', '2026-11-02 09:00+00', 60);
SELECT overage.close_month('2026-10-01') AS lines;

-- Everything written through the API passes.
SELECT * FROM overage.verify();

-- The checks below run as a superuser with the triggers off, each in a
-- transaction that is rolled back: only the one fact is broken.
CREATE FUNCTION t.failed() RETURNS TABLE (check_name text, detail text)
	LANGUAGE plpgsql AS $$
DECLARE m text[];
BEGIN
	FOR check_name, detail IN SELECT v.check_name, v.detail FROM overage.verify() v WHERE NOT v.ok LOOP
		-- subscription ids shown by name (t.nm)
		FOR m IN SELECT regexp_matches(detail, '[0-9a-f]{8}-[0-9a-f-]{27}', 'g') LOOP
			detail := replace(detail, m[1], t.nm(m[1]::uuid));
		END LOOP;
		RETURN NEXT;
	END LOOP;
END $$;

-- holder_open_period: the holder row no longer equals its open period
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE overage.holder SET partner_id = NULL, subscription_id = NULL
 WHERE customer_id = 'c1' AND service_id = 'intl';
SELECT * FROM t.failed();
ROLLBACK;

-- holder_period_overlap: a closed period runs past the start of the next
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE overage.holder_period SET valid_to = valid_to + interval '1 hour'
 WHERE customer_id = 'c1' AND service_id = 'dom' AND valid_from = '2026-10-07 00:00+00';
SELECT * FROM t.failed();
ROLLBACK;

-- holder_period_gap: a closed period ends an hour before the next begins
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE overage.holder_period SET valid_to = valid_to - interval '1 hour'
 WHERE customer_id = 'c1' AND service_id = 'dom' AND valid_from = '2026-10-07 00:00+00';
SELECT * FROM t.failed();
ROLLBACK;

-- assignment_log: an audit row is gone (the period it began is unexplained
-- and the next row's "from" no longer follows)
BEGIN;
SET LOCAL session_replication_role = replica;
DELETE FROM overage.assignment_log
 WHERE customer_id = 'c1' AND service_id = 'dom' AND at = '2026-10-20 00:00+00';
SELECT * FROM t.failed();
ROLLBACK;

-- holder_eligible: C (only a BASIC licence, cancelled) made the first-in
-- holder of intl (until the transfer to B), consistently in history, log
-- and transfer (and A's intl line of the closed month no longer matches
-- the history: charge_lines says so too)
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE overage.holder_period SET partner_id = 'C', subscription_id = t.id('A/c1/overage')
 WHERE customer_id = 'c1' AND service_id = 'intl' AND partner_id = 'A';
UPDATE overage.assignment_log SET to_partner_id = 'C', to_subscription_id = t.id('A/c1/overage')
 WHERE customer_id = 'c1' AND service_id = 'intl' AND to_partner_id = 'A';
UPDATE overage.assignment_log SET from_partner_id = 'C', from_subscription_id = t.id('A/c1/overage')
 WHERE customer_id = 'c1' AND service_id = 'intl' AND from_partner_id = 'A';
UPDATE overage.transfer SET from_partner_id = 'C'
 WHERE customer_id = 'c1' AND service_id = 'intl';
SELECT * FROM t.failed();
ROLLBACK;

-- license_quantity: the quantity of a licence changed without its history;
-- and a licence whose history lost its first period
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE overage.subscription SET quantity = 99 WHERE subscription_id = t.id('B.e5');
SELECT * FROM t.failed();
ROLLBACK;
BEGIN;
SET LOCAL session_replication_role = replica;
DELETE FROM overage.license_quantity
 WHERE subscription_id = t.id('A.e5') AND valid_from = '2026-10-01 09:00+00';
SELECT * FROM t.failed();
ROLLBACK;

-- usage_month: a call deleted behind the running figures' back
BEGIN;
SET LOCAL session_replication_role = replica;
DELETE FROM overage.usage WHERE user_id = 'u3';
SELECT * FROM t.failed();
ROLLBACK;

-- usage_parties: a customer with calls deleted (its delete guard and the
-- foreign keys of its rows off), and a call of a service that is not in
-- the catalog
BEGIN;
SET LOCAL session_replication_role = replica;
DELETE FROM overage.customer WHERE customer_id = 'c1';
UPDATE overage.usage SET service_id = 'fax' WHERE user_id = 'u3';
SELECT * FROM t.failed() WHERE check_name = 'usage_parties';
ROLLBACK;

-- charge_lines: a line of the closed month deleted, another one's amount
-- changed, and a line in the open month
BEGIN;
SET LOCAL session_replication_role = replica;
DELETE FROM overage.charge WHERE partner_id = 'B';
UPDATE overage.charge SET amount = amount + 1 WHERE partner_id = 'A';
INSERT INTO overage.charge SELECT '2026-11-01', partner_id, customer_id, service_id,
	subscription_id, overage_seconds, quantity, unit_price, amount, currency
  FROM overage.charge WHERE partner_id IS NULL;
SELECT * FROM t.failed();
ROLLBACK;

-- transfers: the completed transfer's instant moved, and the pending one's
-- holder released to None behind its back (the superseding update skipped)
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE overage.transfer SET closed_at = closed_at + interval '1 hour' WHERE status = 'completed';
UPDATE overage.holder SET partner_id = NULL, subscription_id = NULL, since = '2026-11-02 00:00+00'
 WHERE customer_id = 'c1' AND service_id = 'dom';
SELECT * FROM t.failed() WHERE check_name = 'transfers';
ROLLBACK;

-- rated_state: the rated state of November (rate_pending) no longer
-- gives what rating November afresh gives.  First two long calls, rated:
-- the check passes, then one rated line and its group claim a minute more
-- of overage.
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('c1', 'dom', 'u4', '2026-11-03 09:00+00', 86400),
	('c1', 'dom', 'u5', '2026-11-04 09:00+00', 86400);
SELECT overage.rate_pending() AS rated_calls;
SELECT customer_id, service_id, partner_id, overage_s FROM overage.rated_line
 WHERE month = '2026-11-01' ORDER BY 1, 2, 3;
SELECT * FROM overage.verify() WHERE check_name = 'rated_state';
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE overage.rated_line SET overage_s = overage_s + 60
 WHERE month = '2026-11-01' AND customer_id = 'c1' AND service_id = 'dom';
UPDATE overage.rated_group SET overage_s = overage_s + 60
 WHERE month = '2026-11-01' AND customer_id = 'c1' AND service_id = 'dom';
SELECT * FROM t.failed();
ROLLBACK;
-- and a group with figures but no rated state, nothing pending and no mark
-- (its state deleted past the guard): a close after the rating would take
-- November's lines from the states and leave this group's out
BEGIN;
SET LOCAL session_replication_role = replica;
DELETE FROM overage.rated_line
 WHERE month = '2026-11-01' AND customer_id = 'c1' AND service_id = 'dom';
DELETE FROM overage.rated_group
 WHERE month = '2026-11-01' AND customer_id = 'c1' AND service_id = 'dom';
SELECT * FROM t.failed();
ROLLBACK;

-- sequences: the audit log's identity sequence set back (as a restore that
-- lost its setval would leave it); setval is not undone by a rollback, so
-- it is set forward again by hand
SELECT setval('overage.assignment_log_log_id_seq', 1) IS NOT NULL AS set_back;
SELECT * FROM t.failed();
SELECT setval('overage.assignment_log_log_id_seq', max(log_id)) IS NOT NULL AS set_forward
  FROM overage.assignment_log;

-- and after all that, nothing was repaired or left behind
SELECT count(*) FILTER (WHERE ok) AS passed, count(*) AS checks FROM overage.verify();

-- Operator only: an agent gets 42501 and learns nothing; a non-superuser
-- operator runs it (it reads every table, whatever its own grants).
CREATE ROLE regress_verify_ga;
CREATE ROLE regress_verify_ops;
SELECT overage.add_agent('regress_verify_ga', 'A', 'global_admin');
SELECT overage.add_agent('regress_verify_ops', NULL, 'operator');
GRANT USAGE ON SCHEMA t TO PUBLIC;
SET ROLE regress_verify_ga;
SELECT t.try($$SELECT * FROM overage.verify()$$);
SET ROLE regress_verify_ops;
SELECT count(*) FILTER (WHERE ok) AS passed, count(*) AS checks FROM overage.verify();
RESET ROLE;
SELECT overage.remove_agent('regress_verify_ga');
SELECT overage.remove_agent('regress_verify_ops');
DROP ROLE regress_verify_ga;
DROP ROLE regress_verify_ops;

DROP SCHEMA t CASCADE;
DROP EXTENSION overage;
