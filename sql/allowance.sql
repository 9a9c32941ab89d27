--
-- allowance: overage never uses up allowance (SPEC 1.2, "Attributing a
-- call").  Only the included seconds of earlier calls consume the pool:
--
--     included = clamp(pool(t) - included_before, 0, d),  overage = d - included
--
-- Version 1.1 subtracted every earlier second (used_before), the ones
-- already billed as overage too, so a customer whose pool grew after some
-- overage paid those minutes twice: once as overage, once as lost
-- allowance.  The figures below are worked out by hand in the comments,
-- with the 1.1 figure beside each that differs.
--
CREATE EXTENSION overage;
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

-- 0.60 a minute is 0.01 a second: a line's amount is its seconds / 100
INSERT INTO overage.service (service_id, name, unit_price) VALUES
	('CALL', 'Domestic calling', 0.60);
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES
	('E5', '1', 'E5 with calling, 10 minutes', 'IncludeOverage');
INSERT INTO overage.sku_service VALUES ('E5', '1', 'CALL', 10);	-- 600 s a licence
INSERT INTO overage.partner VALUES ('P1', 'Partner one');
INSERT INTO overage.customer VALUES ('C1', 'Contoso', 'US'), ('C2', 'Fabrikam', 'SE');

------------------------------------------------------------------------------
-- C1: calls before the first purchase, then a mid-month quantity increase
--
--   03-01 02:00  call 300 s   pool 0, nobody holds it      overage 300 unassigned
--   03-01 05:00  call 300 s   pool 0                       overage 300 unassigned
--   03-01 08:00  P1 buys 1 licence: pool 600 s, P1 holds the overage (first-in)
--   03-02 10:00  call 600 s   included_before 0            included 600
--                             (1.1: used_before 600, so included 0, overage 600 to P1)
--   03-10 10:00  call 300 s   included_before 600          overage 300 to P1
--   03-15 00:00  P1 raises to 3 licences: pool 1800 s
--   03-16 10:00  call 900 s   included_before 600          included 900
--                             (1.1: used_before 1500, included 300, overage 600 to P1)
--
-- C1's month: used 2400 s, included 1500 s, overage 900 s (600 unassigned,
-- 300 to P1); remaining at the end 1800 - 1500 = 300 s.
-- (1.1: overage 1800 s: 600 unassigned, 1200 to P1; remaining 0.)
------------------------------------------------------------------------------
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'CALL', 'u1', '2026-03-01 02:00Z', 300),
	('C1', 'CALL', 'u2', '2026-03-01 05:00Z', 300);
SELECT overage.purchase('P1', 'C1', 'E5', '1', 1, '2026-03-01 08:00Z') AS c1_e5 \gset
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'CALL', 'u1', '2026-03-02 10:00Z', 600),
	('C1', 'CALL', 'u2', '2026-03-10 10:00Z', 300);
SELECT overage.set_quantity(:'c1_e5', 3, '2026-03-15 00:00Z');
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'CALL', 'u3', '2026-03-16 10:00Z', 900);

-- the allowance that arrived at 08:00 is whole: after the 600 s call on
-- 03-02, 10 of 10 minutes were used and nothing of it went to the two
-- unassigned calls before the purchase
SELECT * FROM overage.pool_status('C1', 'CALL', '2026-03-01 09:00Z');
SELECT * FROM overage.pool_status('C1', 'CALL', '2026-03-02 11:00Z');
-- after the call of 03-10 the pool is spent and that call is overage
SELECT * FROM overage.pool_status('C1', 'CALL', '2026-03-14 00:00Z');
-- the increase of 03-15 gives 20 new minutes, all of them available
SELECT * FROM overage.pool_status('C1', 'CALL', '2026-03-15 00:00Z');
-- the 900 s call fits in them: no new overage, 5 minutes remain
SELECT * FROM overage.pool_status('C1', 'CALL', '2026-03-31 23:59Z');

------------------------------------------------------------------------------
-- C2: a pool that does not change during the month gives the lines 1.1
-- gave (included_before and used_before differ only once the pool is
-- spent, and then every later call is all overage under both rules)
--
--   02-20  P1 buys 1 licence: pool 600 s all of March
--   03-05  call 400 s   included 400
--   03-06  call 400 s   included 200, overage 200
--   03-07  call 400 s   included 0,   overage 400      P1: 600 s = 6.00
------------------------------------------------------------------------------
SELECT overage.purchase('P1', 'C2', 'E5', '1', 1, '2026-02-20 00:00Z') IS NOT NULL AS c2_e5;
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C2', 'CALL', 'v1', '2026-03-05 10:00Z', 400),
	('C2', 'CALL', 'v1', '2026-03-06 10:00Z', 400),
	('C2', 'CALL', 'v1', '2026-03-07 10:00Z', 400);
SELECT * FROM overage.pool_status('C2', 'CALL', '2026-03-31 23:59Z');

-- March's lines: C1 600 s unassigned (6.00), 300 s to P1 (3.00);
-- C2 600 s to P1 (6.00).  (1.1 billed C1's P1 line 1200 s = 12.00.)
SELECT customer_id, partner_id, overage_seconds, quantity, unit_price, amount
  FROM overage.preview_month('2026-03-01');
SELECT overage.close_month('2026-03-01') AS lines;
SELECT customer_id, partner_id, subscription_id IS NOT NULL AS billed,
	   overage_seconds, quantity, amount
  FROM overage.charge WHERE month = '2026-03-01'
 ORDER BY customer_id, partner_id NULLS FIRST;
-- the closed month's lines are what the preview said
SELECT count(*) AS differing FROM (
	(SELECT * FROM overage.charge WHERE month = '2026-03-01'
	 EXCEPT ALL SELECT * FROM overage.preview_month('2026-03-01'))
	UNION ALL
	(SELECT * FROM overage.preview_month('2026-03-01')
	 EXCEPT ALL SELECT * FROM overage.charge WHERE month = '2026-03-01')) d;

DROP EXTENSION overage;
