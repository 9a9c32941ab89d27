--
-- pool: the pool of a (customer, service) follows the licence quantity
-- history instant by instant, and pool_status reports it live.
--
-- Pool(t) = 60 * sum of quantity * minutes_per_license over the customer's
-- licences active at t, of every partner, with or without IncludeOverage.
-- A change takes effect at exactly its instant.
--
CREATE EXTENSION overage;
\set SHOW_CONTEXT never
-- show instants in UTC, the zone of billing months (results do not depend
-- on the session's zone; attribution.sql shows that)
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

INSERT INTO overage.service (service_id, name, unit_price) VALUES
	('CALL', 'Domestic calling', 0.02),
	('PSTN', 'Pay-as-you-go calling', 0.05);
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES
	('E5', '1', 'E5 with calling, 1 minute', 'IncludeOverage'),
	('E3', '1', 'E3 with calling, 2 minutes, no overage', 'Telco'),
	('PAYG', '1', 'Pay-as-you-go calling', 'IncludeOverage');
INSERT INTO overage.sku_service VALUES
	('E5', '1', 'CALL', 1),		-- 60 s per licence
	('E3', '1', 'CALL', 2),		-- 120 s per licence
	('PAYG', '1', 'PSTN', 0);	-- pure pay-as-you-go
INSERT INTO overage.partner VALUES ('P1', 'Partner one'), ('P2', 'Partner two');
INSERT INTO overage.customer VALUES ('C1', 'Contoso', 'US');

-- licence history of C1 for CALL:
--   2026-09-15  P1 buys 2 x E5             pool 120 s = 2 min
--   2026-10-10  P1 raises E5 to 3          pool 180 s = 3 min
--   2026-10-20  P2 buys 1 x E3 (no tag)    pool 300 s = 5 min
--   2026-10-25  P1 cancels E5              pool 120 s = 2 min, holder None
SELECT overage.purchase('P1', 'C1', 'E5', '1', 2, '2026-09-15 00:00Z') AS e5 \gset
SELECT overage.purchase('P1', 'C1', 'PAYG', '1', 5, '2026-09-15 00:00Z') IS NOT NULL AS payg;
SELECT overage.set_quantity(:'e5', 3, '2026-10-10 00:00Z');
SELECT overage.purchase('P2', 'C1', 'E3', '1', 1, '2026-10-20 00:00Z') IS NOT NULL AS e3;
SELECT overage.cancel(:'e5', '2026-10-25 00:00Z');

-- the pool at instants, no usage yet
SELECT t AS at, s.month, s.pool_minutes, s.used_minutes, s.remaining_minutes
  FROM (VALUES
		('2026-09-01 00:00Z'::timestamptz),	-- before any licence: 0
		('2026-10-05 00:00Z'),				-- 2 x E5: 2
		('2026-10-09 23:59:59.999999Z'),	-- last instant before the change: 2
		('2026-10-10 00:00Z'),				-- the change instant itself: 3
		('2026-10-20 00:00Z'),				-- + E3 without the tag: 5
		('2026-10-25 00:00Z'),				-- E5 cancelled at this instant: 2
		('2026-11-05 00:00Z')				-- next month, E3 only: 2
	   ) AS v(t),
	   LATERAL overage.pool_status('C1', 'CALL', t) s
 ORDER BY t;

-- calls of C1 on CALL in October (pool in seconds at the call, the
-- included seconds of the earlier calls; overage never uses up the pool):
--   A 10-05 10:00  100 s  pool 120, before   0: included 100, overage  0
--   B 10-06 10:00   50 s  pool 120, before 100: included  20, overage 30 -> P1
--   C 10-10 00:00   60 s  pool 180, before 120: included  60, overage  0
--                         (exactly at the quantity change: the new pool;
--                         1.1 counted B's overage as used: included 30)
--   D 10-21 10:00   60 s  pool 300, before 180: included  60, overage  0
--   E 10-26 10:00   40 s  pool 120, before 240: included   0, overage 40 -> None
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'CALL', 'alice', '2026-10-05 10:00Z', 100),
	('C1', 'CALL', 'bob',   '2026-10-06 10:00Z', 50),
	('C1', 'CALL', 'alice', '2026-10-10 00:00Z', 60),
	('C1', 'CALL', 'carol', '2026-10-21 10:00Z', 60),
	('C1', 'CALL', 'bob',   '2026-10-26 10:00Z', 40);
-- pure pay-as-you-go: every second is overage, 90 s -> P1
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'PSTN', 'alice', '2026-10-03 09:00Z', 90);

-- figures, once rated: 5 calls, 310 s; 1 call, 90 s
SELECT overage.rate_pending() AS rated;
SELECT customer_id, service_id, month, calls, seconds, first_at, last_at
  FROM overage.usage_month ORDER BY 1, 2, 3;

SELECT t AS at, s.*
  FROM (VALUES
		-- before call A: nothing used; pool 2
		('2026-10-05 10:00Z'::timestamptz),
		-- exactly at call C (not counted: started before at only):
		-- used A+B = 150 s = 2.5; pool 3; included 120 s, remaining 1;
		-- overage 30 s = 0.5
		('2026-10-10 00:00Z'),
		-- after D: used 270 s = 4.5; pool 5; included 240 s, remaining 1;
		-- overage 30 s = 0.5
		('2026-10-22 00:00Z'),
		-- after E: used 310 s = 5.166667; pool 2; remaining 0;
		-- overage 70 s = 1.166667, of which unassigned 40 s = 0.666667
		('2026-10-31 23:59:59Z'),
		-- November: fresh month, nothing used, pool 2 (E3)
		('2026-11-01 00:00Z')
	   ) AS v(t),
	   LATERAL overage.pool_status('C1', 'CALL', t) s
 ORDER BY t;

-- PSTN: pool 0, used 1.5, remaining 0, overage 1.5, unassigned 0
SELECT * FROM overage.pool_status('C1', 'PSTN', '2026-10-31 00:00Z');

-- the October lines:
--   C1 CALL P1 overage sub: 30 s = 0.5 min, 30 * 0.02 / 60 = 0.01
--   C1 CALL unassigned:     40 s = 0.666667 min, 0.013333 -> 0.01
--   C1 PSTN P1 overage sub: 90 s = 1.5 min, 90 * 0.05 / 60 = 0.075 -> 0.08
SELECT month, partner_id, customer_id, service_id,
	   subscription_id = (SELECT subscription_id FROM overage.subscription
						   WHERE partner_id = 'P1' AND kind = 'overage') AS p1_overage_sub,
	   overage_seconds, quantity, unit_price, amount, currency
  FROM overage.preview_month('2026-10-17');

-- bad arguments
SELECT * FROM overage.pool_status('nobody', 'CALL', '2026-10-01');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM overage.pool_status('C1', 'nothing', '2026-10-01');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM overage.pool_status('C1', 'CALL', NULL);
\echo :LAST_ERROR_SQLSTATE

DROP EXTENSION overage;
