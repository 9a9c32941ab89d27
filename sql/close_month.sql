--
-- close_month: writes the month's charge lines and closes it, all or
-- nothing; a closed month is final.
--
CREATE EXTENSION overage;
\set SHOW_CONTEXT never
-- show instants in UTC, the zone of billing months (results do not depend
-- on the session's zone; attribution.sql shows that)
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

INSERT INTO overage.service (service_id, name, unit_price) VALUES
	('CALL', 'Domestic calling', 0.02);
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES
	('E5', '1', 'E5 with calling, 1 minute', 'IncludeOverage');
INSERT INTO overage.sku_service VALUES ('E5', '1', 'CALL', 1);
INSERT INTO overage.partner VALUES ('P1', 'Partner one');
INSERT INTO overage.customer VALUES ('C1', 'Contoso', 'US');
SELECT overage.purchase('P1', 'C1', 'E5', '1', 1, '2026-09-01 00:00Z') IS NOT NULL;

-- October: 60 + 90 s with a pool of 60 s: 90 s overage -> P1,
-- 1.5 min, 0.03
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'CALL', 'u', '2026-10-02 10:00Z', 60),
	('C1', 'CALL', 'u', '2026-10-03 10:00Z', 90);
-- every page all-visible: the close reads the calls from the index alone
-- (as an index-only scan does), not from the table
VACUUM overage.usage;
SELECT relallvisible > 0 AS all_visible FROM pg_class WHERE oid = 'overage.usage'::regclass;

-- close in a transaction that is rolled back: no lines, month still open
BEGIN;
SELECT overage.close_month('2026-10-01');
ROLLBACK;
SELECT count(*) AS lines FROM overage.charge;
SELECT month, closed_at IS NOT NULL AS closed, lines FROM overage.billing_month ORDER BY month;

-- close needs READ COMMITTED (it must see what it waited for): 25000
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT overage.close_month('2026-10-01');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- retry works; any day of the month names it; 1 line
SELECT overage.close_month('2026-10-31');
SELECT month, partner_id, customer_id, service_id, overage_seconds, quantity,
	   unit_price, amount, currency
  FROM overage.charge;
SELECT month, closed_at IS NOT NULL AS closed, closed_by IS NOT NULL AS by_known, lines
  FROM overage.billing_month ORDER BY month;

-- closing twice: OV006
SELECT overage.close_month('2026-10-01');
\echo :LAST_ERROR_SQLSTATE

-- the lines are final: update, delete, truncate, insert all refused
UPDATE overage.charge SET amount = 0;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM overage.charge;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE overage.charge;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO overage.charge SELECT * FROM overage.charge;
\echo :LAST_ERROR_SQLSTATE
-- lines cannot be made up for a month that close_month did not open either
INSERT INTO overage.charge VALUES
	('2027-01-01', NULL, 'C1', 'CALL', NULL, 60, 1, 0.02, 0.02, 'USD');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS lines, sum(amount) AS total FROM overage.charge;

-- late usage dated in the closed month: refused, nothing written (OV006);
-- alone, and mixed with a call of an open month
SELECT count(*) AS calls FROM overage.usage;
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'CALL', 'late', '2026-10-31 23:59:59Z', 30);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'CALL', 'ok', '2026-11-02 10:00Z', 30),
	('C1', 'CALL', 'late', '2026-10-15 10:00Z', 30);
\echo :LAST_ERROR_SQLSTATE
-- the closed month's calls cannot be changed or deleted, nor calls moved in
UPDATE overage.usage SET duration_s = 1 WHERE started_at < '2026-11-01';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM overage.usage WHERE started_at < '2026-11-01';
\echo :LAST_ERROR_SQLSTATE
TRUNCATE overage.usage;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS calls FROM overage.usage;
SELECT month, calls, seconds FROM overage.usage_month ORDER BY month;

-- the next month is open: usage goes in, can be corrected, then closed
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'CALL', 'ok', '2026-11-02 10:00Z', 100),
	('C1', 'CALL', 'ok', '2026-11-03 10:00Z', 10);
UPDATE overage.usage SET started_at = '2026-10-20 10:00Z'
 WHERE started_at = '2026-11-03 10:00Z';		-- into the closed month: OV006
\echo :LAST_ERROR_SQLSTATE
UPDATE overage.usage SET duration_s = 70 WHERE started_at = '2026-11-02 10:00Z';
DELETE FROM overage.usage WHERE started_at = '2026-11-03 10:00Z';
-- the figures follow once rated: November 1 call, 70 s (the insert, the
-- update and the delete are pending; the one call left is rated)
SELECT overage.rate_pending() AS rated;
SELECT month, calls, seconds FROM overage.usage_month ORDER BY month;
-- 70 s, pool 60: 10 s overage
SELECT month, overage_seconds, quantity, amount FROM overage.preview_month('2026-11-01');
SELECT overage.close_month('2026-11-01');
-- a month without usage closes with no lines
SELECT overage.close_month('2026-12-01');
SELECT month, closed_at IS NOT NULL AS closed, lines FROM overage.billing_month ORDER BY month;

-- the running figures are written by the triggers only (OV008)
UPDATE overage.usage_month SET seconds = 0;
\echo :LAST_ERROR_SQLSTATE

-- A closed month's history is final too.  A licence or holder change dated
-- inside it never touches its lines, but it would change what pool_status
-- and preview_month say of the month, so that the month no longer reads as
-- it was billed: refused (OV006), by whatever path, and nothing changes.
SELECT subscription_id AS lic FROM overage.subscription WHERE kind = 'license' \gset
SELECT subscription_id AS ovs FROM overage.subscription WHERE kind = 'overage' \gset
SELECT subscription_id AS azs FROM overage.subscription WHERE kind = 'azure_subscription' \gset
-- October as billed: pool 1 licence x 1 min = 1 min; 60 + 90 s = 2.5 min
-- used; 1.5 min overage, held by P1 (90 s, 1.5 min, 0.03)
SELECT * FROM overage.pool_status('C1', 'CALL', '2026-10-31 23:59:59Z');
SELECT month, partner_id, overage_seconds, quantity, amount
  FROM overage.preview_month('2026-10-01');
-- the API, dated in October, November and December (all closed)
SELECT overage.purchase('P1', 'C1', 'E5', '1', 5, '2026-10-15 00:00Z');
\echo :LAST_ERROR_SQLSTATE
SELECT overage.release_overage('P1', 'C1', 'CALL', '2026-10-20 00:00Z');
\echo :LAST_ERROR_SQLSTATE
-- the rest name a subscription by its (random) uuid: message only
\set VERBOSITY terse
SELECT overage.set_quantity(:'lic', 3, '2026-10-20 00:00Z');
\echo :LAST_ERROR_SQLSTATE
SELECT overage.cancel(:'lic', '2026-11-30 23:59:59Z');
\echo :LAST_ERROR_SQLSTATE
SELECT overage.create_azure_subscription('P1', 'C1', '2026-12-01 00:00Z');
\echo :LAST_ERROR_SQLSTATE
-- P1 moving its overage to its Azure subscription (a real change of holder)
SELECT overage.assign_overage('P1', 'C1', 'CALL', :'azs', '2026-10-20 00:00Z');
\echo :LAST_ERROR_SQLSTATE
-- direct writes: the last microsecond of December is still December
UPDATE overage.subscription SET quantity = 4, changed_at = '2026-12-31 23:59:59.999999Z'
 WHERE subscription_id = :'lic';
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
UPDATE overage.holder SET partner_id = NULL, subscription_id = NULL,
	   since = '2026-10-20 00:00Z'
 WHERE customer_id = 'C1' AND service_id = 'CALL';
\echo :LAST_ERROR_SQLSTATE
-- nothing changed: P1's 4 subscriptions as bought on 2026-09-01 (plan,
-- Azure, licence of 1, overage), P1 still holds with its overage
-- subscription, and October reads as billed
SELECT kind, quantity, status, created_at, changed_at FROM overage.subscription
 ORDER BY created_at, kind;
SELECT partner_id, subscription_id = :'ovs' AS overage_sub, since, reason
  FROM overage.holder;
SELECT * FROM overage.pool_status('C1', 'CALL', '2026-10-31 23:59:59Z');
SELECT month, partner_id, overage_seconds, quantity, amount
  FROM overage.preview_month('2026-10-01');

-- the same changes dated at or after the end of December (January is
-- open) go through
SELECT overage.purchase('P1', 'C1', 'E5', '1', 2, '2027-01-01 00:00Z') IS NOT NULL AS bought;
SELECT overage.set_quantity(:'lic', 3, '2027-01-02 00:00Z');
SELECT overage.create_azure_subscription('P1', 'C1', '2027-01-03 00:00Z') IS NOT NULL AS created;
SELECT overage.assign_overage('P1', 'C1', 'CALL', :'azs', '2027-01-04 00:00Z');
SELECT overage.release_overage('P1', 'C1', 'CALL', '2027-01-05 00:00Z');
SELECT overage.cancel(:'lic', '2027-01-06 00:00Z');
-- January at 01-06 12:00: the first licence ended at 01-06 00:00, the new
-- one (2 x 1 min) remains: pool 2 min, nothing used
SELECT * FROM overage.pool_status('C1', 'CALL', '2027-01-06 12:00Z');
SELECT partner_id, subscription_id IS NULL AS none, since, reason FROM overage.holder;
-- and October still reads as billed (pool 1, used 2.5, overage 1.5)
SELECT * FROM overage.pool_status('C1', 'CALL', '2026-10-31 23:59:59Z');
SELECT month, partner_id, overage_seconds, quantity, amount
  FROM overage.preview_month('2026-10-01');
SELECT month, partner_id, overage_seconds, quantity, amount FROM overage.charge
 WHERE month = '2026-10-01';

DROP EXTENSION overage;
